"""`vidscore evaluate` with labels saved by `datasets` on S3: the same metrics as the same labels in a local file."""

import json
from pathlib import Path

from tests.jobs.test_evaluate import _vf_rows, _videoscore_table, evaluate


def test_datasets_dict_labels_on_s3(s3, tmp_path: Path) -> None:
    import datasets

    scores, _ = _videoscore_table(tmp_path)
    rows = _vf_rows()
    (tmp_path / "vf.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    bucket = s3.bucket("labels")
    options = {"client_kwargs": {"endpoint_url": s3.url}}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:3]), "test": datasets.Dataset.from_list(rows)})
    dd.save_to_disk(f"s3://{bucket}/vf", storage_options=options)
    datasets.Dataset.from_list(rows).save_to_disk(f"s3://{bucket}/one", storage_options=options)
    ref = evaluate(tmp_path, str(scores), "--labels", str(tmp_path / "vf.jsonl"))
    for labels in (f"s3://{bucket}/vf", f"s3://{bucket}/one"):  # DatasetDict (split `test` by default), Dataset
        got = evaluate(tmp_path, str(scores), "--labels", labels, "--endpoint-url", s3.url)
        assert got["matching"] == ref["matching"] and got["metrics"] == ref["metrics"]
    train = evaluate(
        tmp_path, str(scores), "--labels", f"s3://{bucket}/vf", "--split", "train", "--endpoint-url", s3.url
    )
    assert train["matching"]["labels"] == 3


def test_s3_folder_that_is_not_a_dataset(s3, tmp_path: Path, capsys) -> None:
    from vidscore.jobs.evaluate import main

    scores, _ = _videoscore_table(tmp_path)
    bucket = s3.bucket("labels")
    s3.client.put_object(Bucket=bucket, Key="repo/data/test-00000-of-00001.parquet", Body=b"x")
    assert main([str(scores), "--labels", f"s3://{bucket}/repo", "--endpoint-url", s3.url]) == 2
    assert "hub-style dataset folders are read locally only" in capsys.readouterr().err
