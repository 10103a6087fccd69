"""The one reader and compaction on an object store: the same view as on a local folder."""

from pathlib import Path

from polars.testing import assert_frame_equal

from tests.jobs.scoretable import upload
from tests.jobs.test_compact import history
from vidscore.jobs.compact import compact
from vidscore.pipeline.table import latest


def test_latest_and_compaction_on_s3(s3, tmp_path: Path) -> None:
    history(tmp_path / "local")
    local = latest(str(tmp_path / "local")).collect().sort("video_id")
    bucket = s3.bucket()
    url = upload(s3.client, tmp_path / "local", bucket, "scores")
    remote = latest(url, endpoint_url=s3.url).collect().sort("video_id")
    assert_frame_equal(remote, local, check_column_order=False)
    compact(url, keep_history=True, endpoint_url=s3.url)
    keys = s3.keys(bucket, "scores/")
    assert sum(k.endswith(".parquet") and "/_vidscore/" not in k for k in keys) == 1
    assert sum("/_vidscore/history/" in k for k in keys) == 3 and not any("/lock/" in k for k in keys)
    assert_frame_equal(latest(url, endpoint_url=s3.url).collect().sort("video_id"), local, check_column_order=False)
