"""The sink's commit: a file is visible whole or not at all, whatever fails between writing and committing."""

from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from vidscore.pipeline.output import commit_file, table_files


class Crashing(LocalFileSystem):
    """Writes half of every file, then fails (a crash or a full disk mid-write)."""

    def pipe_file(self, path, value, **kwargs):  # noqa: ANN001 - fsspec's signature
        Path(path).write_bytes(value[: len(value) // 2])
        raise OSError("no space left on device")


class FailingRename(LocalFileSystem):
    def mv(self, *args, **kwargs):  # noqa: ANN002, ANN003
        raise OSError("killed before the rename")


@pytest.mark.parametrize("fs", [Crashing(skip_instance_cache=True), FailingRename(skip_instance_cache=True)])
def test_a_failed_commit_leaves_no_visible_file(tmp_path: Path, fs: LocalFileSystem) -> None:
    target = str(tmp_path / "run_date=2026-01-01" / "part-x-000000.parquet")
    with pytest.raises(OSError):
        commit_file(fs, target, b"PAR1" + b"x" * 100)
    assert table_files(str(tmp_path)) == [] and not Path(target).exists()


def test_a_commit_is_complete(tmp_path: Path) -> None:
    target = tmp_path / "run_date=2026-01-01" / "part-x-000000.parquet"
    commit_file(LocalFileSystem(), str(target), b"PAR1data")
    assert target.read_bytes() == b"PAR1data" and table_files(str(tmp_path)) == [str(target)]
