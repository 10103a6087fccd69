"""Human label files for `vidscore evaluate`, and the rule that matches a label's video to a score row.

Layouts (JSON list, JSONL, CSV or Parquet; keys are compared snake_cased, so "visual quality" = visual_quality):
- videofeedback / evalcrafter: one row per video: `video` (path; or `video_id`) and human scores per aspect,
  named like VideoScore's outputs: visual_quality, temporal_consistency, dynamic_degree, text_to_video_alignment,
  factual_consistency (evalcrafter uses the first, second and fourth).
- pairwise: one row per pair: `video_0`, `video_1` (paths or video_ids), `preference` in {0, 1, tie}.
- mjbench: MJ-BENCH-VIDEO's test.json as published (caption, video_0_path, video_1_path, video_{0,1}_label with
  28 criteria, video_{0,1}_overall_score with 5 aspects, overall_preference).

Any of these may also come as a Hugging Face `datasets` folder (`jobs/label_datasets.py`): the output of
`save_to_disk` (a Dataset, or a DatasetDict: one split is read), local or on S3, or a local hub-style dataset
repo (data files such as data/test-*.parquet, optionally a README.md).

Matching: a label's video reference matches the score row whose `video_id` equals it; otherwise the row whose
`uri` equals it or ends with "/" + it (whole path components: "test/0_0.mp4" matches ".../mjb/test/0_0.mp4",
never ".../xtest/0_0.mp4"). No match, or several, means the label is reported as unmatched / ambiguous.
"""

import json
import logging
import posixpath
import re
from typing import Any

import polars as pl

from vidscore.jobs.table import JobError
from vidscore.operators.storage import filesystem
from vidscore.operators.urls import redact

log = logging.getLogger("vidscore")

FORMATS = ("videofeedback", "evalcrafter", "pairwise", "mjbench")
PATH_KEYS = ("video", "video_path", "video_link", "path", "uri")
PREFERENCES = {"0": "0", "1": "1", "tie": "tie", "video_0": "0", "video_1": "1"}


def snake(name: str) -> str:
    """'De-focused Blurred' -> 'de_focused_blurred'; how label keys meet score column names."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def read_rows(
    location: str, endpoint_url: str | None = None, limit: int | None = None, split: str | None = None
) -> list[dict[str, Any]]:
    """Label rows as dicts (label sets are small): .json (a list), .jsonl, .csv, .parquet or a `datasets` folder."""
    ext = posixpath.splitext(location)[1].lower()
    if ext not in (".json", ".jsonl", ".csv", ".parquet"):
        fs, path = filesystem(location, endpoint_url)
        if not fs.isdir(path):
            raise JobError(
                f"--labels {redact(location)}: expected a .json, .jsonl, .csv or .parquet file, or a folder "
                "written by datasets' save_to_disk (or a local hub-style dataset folder)"
            )
        from vidscore.jobs.label_datasets import read_dataset

        return read_dataset(location, endpoint_url, limit, split)
    if split is not None:
        raise JobError(f"--split {split}: --labels {redact(location)} is a file; --split picks a `datasets` split")
    fs, path = filesystem(location, endpoint_url)
    try:
        with fs.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise JobError(f"--labels {redact(location)} does not exist") from exc
    try:
        if ext == ".json":
            rows = json.loads(data)
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise JobError(f"--labels {redact(location)}: a .json label file must be a list of objects")
        else:
            reader = {".jsonl": pl.read_ndjson, ".csv": pl.read_csv, ".parquet": pl.read_parquet}[ext]
            rows = reader(data).to_dicts()
    except (ValueError, pl.exceptions.PolarsError) as exc:
        if isinstance(exc, JobError):
            raise
        raise JobError(f"--labels {redact(location)} is not readable as {ext}: {str(exc).splitlines()[0]}") from exc
    if not rows:
        raise JobError(f"--labels {redact(location)} has no rows")
    return rows[:limit] if limit else rows


def detect_format(rows: list[dict[str, Any]]) -> str:
    """The layout of `rows` from their keys (--format overrides)."""
    keys = {snake(k) for k in rows[0]}
    if {"video_0_path", "video_1_path", "video_0_label"} <= keys:
        return "mjbench"
    if {"video_0", "video_1", "preference"} <= keys:
        return "pairwise"
    return "videofeedback"


def normalize_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level keys snake_cased (nested dicts keep their keys: mjbench criteria are mapped separately)."""
    return [{snake(k): v for k, v in r.items()} for r in rows]


def video_ref(row: dict[str, Any]) -> str | None:
    """A videofeedback row's reference: video_id when given, else its path column."""
    for key in ("video_id", *PATH_KEYS):
        if row.get(key) not in (None, ""):
            return str(row[key])
    return None


def preference(value: Any) -> str | None:
    """A pairwise preference as "0", "1" or "tie"; None when it is none of those."""
    return PREFERENCES.get(snake(value) if isinstance(value, str) else str(value))


def winner(overall_preference: Any) -> int | None:
    """MJ-BENCH-VIDEO overall_preference -> 0 / 1 for "Video 1 better" / "Video 2 better" (any case), else None."""
    text = str(overall_preference).strip().lower()
    return {"video 1 better": 0, "video 2 better": 1}.get(text)


class Matcher:
    """Looks up score rows by video_id, else by uri suffix on path-component boundaries (see module docstring)."""

    def __init__(self, video_ids: list[str], uris: list[str]) -> None:
        self.ids = {v: i for i, v in enumerate(video_ids)}
        self.uris = uris
        self.suffixes: dict[int, dict[str, list[int]]] = {}  # built lazily per path depth
        self.unmatched: list[str] = []
        self.ambiguous: list[str] = []

    def _index(self, depth: int) -> dict[str, list[int]]:
        if depth not in self.suffixes:
            index: dict[str, list[int]] = {}
            for i, uri in enumerate(self.uris):
                parts = uri.rstrip("/").split("/")
                if len(parts) >= depth:
                    index.setdefault("/".join(parts[-depth:]), []).append(i)
            self.suffixes[depth] = index
        return self.suffixes[depth]

    def find(self, ref: str | None) -> int | None:
        """Row index for `ref`, or None (recorded as unmatched or ambiguous)."""
        if ref is None:
            self.unmatched.append("<missing>")
            return None
        if ref in self.ids:
            return self.ids[ref]
        rel = re.sub(r"^(\./)+", "", ref).strip("/")
        hits = self._index(rel.count("/") + 1).get(rel, []) if rel else []
        if len(hits) == 1:
            return hits[0]
        (self.ambiguous if hits else self.unmatched).append(ref)
        return None

    def report(self) -> dict[str, Any]:
        return {
            "unmatched": len(self.unmatched),
            "ambiguous": len(self.ambiguous),
            "unmatched_examples": self.unmatched[:5],
            "ambiguous_examples": self.ambiguous[:5],
        }
