"""A corrupt or foreign file in the table: named, counted, skipped where that is safe; never a raw traceback."""

import json
import socket
from pathlib import Path

import pytest

from tests.pipeline.runs import TECH, tech, write_run
from vidscore.jobs import compact, filter, report
from vidscore.pipeline.resume import load_previous


@pytest.fixture
def table(tmp_path: Path) -> Path:
    root = tmp_path / "scores"
    write_run(root, "20260101T000000-aaaaaa", [{"video_id": "a", **tech(1.0)}, {"video_id": "b", **tech(2.0)}])
    (root / "run_date=2026-01-02").mkdir()
    (root / "run_date=2026-01-02" / "part-foreign.parquet").write_bytes(b"NOT A PARQUET FILE AT ALL")
    return root


def test_readers_name_the_file_and_keep_working(table: Path, tmp_path: Path, capsys) -> None:
    assert filter.main([str(table), "-o", str(tmp_path / "kept.jsonl"), "--where", "technical_sharpness > 1"]) == 0
    err = capsys.readouterr().err
    assert "part-foreign.parquet" in err and "move it out of the table folder" in err and "Traceback" not in err
    assert [json.loads(x)["video_id"] for x in (tmp_path / "kept.jsonl").read_text().splitlines()] == ["b"]
    assert report.main([str(table), "-o", str(tmp_path / "report")]) == 0
    assert "part-foreign.parquet" in capsys.readouterr().err


def test_score_counts_it_and_compaction_refuses(table: Path, capsys) -> None:
    previous = load_previous(str(table), [TECH])
    assert len(previous.unreadable) == 1 and "part-foreign.parquet" in previous.unreadable[0]
    assert previous.rows.height == 2  # the readable history still counts: nothing is rescored for it
    assert compact.main([str(table)]) == 2  # compaction deletes history: never past a file it could not read
    err = capsys.readouterr().err
    assert "part-foreign.parquet" in err and "move them out first" in err
    assert (table / "run_date=2026-01-02" / "part-foreign.parquet").exists()


@pytest.mark.timeout(90)
def test_an_endpoint_that_never_answers_fails_the_preflight_fast(tmp_path: Path, capsys, monkeypatch) -> None:
    from vidscore.jobs.score import main

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIAFAKE"),
        ("AWS_SECRET_ACCESS_KEY", "fake"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)  # signed requests reach the endpoint (no credential error first)

    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert main(["s3://bucket/in/", "-o", str(tmp_path / "out"), "--endpoint-url", endpoint]) == 2
    err = capsys.readouterr().err
    assert "unreachable" in err and "Timeout" in err, err
