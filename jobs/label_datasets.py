"""Label sets stored in the Hugging Face `datasets` layouts, read into the rows `jobs/labels.py` gives for files.

- `Dataset.save_to_disk` (state.json + dataset_info.json + .arrow files), local or on S3;
- `DatasetDict.save_to_disk` (dataset_dict.json + one folder per split): one split is read;
- a local hub-style dataset repo (data files such as data/test-*.parquet, optionally a README.md); loading
  scripts are never run.
"""

import json
import logging
import posixpath
import tempfile
from typing import Any

from vidscore.jobs.table import JobError
from vidscore.operators.storage import filesystem, is_local, join, storage_options
from vidscore.operators.urls import redact

log = logging.getLogger("vidscore")

DATA_EXTS = (".parquet", ".jsonl", ".json", ".csv", ".arrow")  # what load_dataset infers a builder from


def pick_split(location: str, splits: list[str], split: str | None) -> str:
    """`split` if the folder has it; by default `test`, else the only split."""
    if split is None and "test" in splits:
        return "test"
    if split is None and len(splits) == 1:
        return splits[0]
    if split in splits:
        return split
    wanted = f"has no split {split!r}" if split else "has several splits and none is `test`"
    raise JobError(f"--labels {redact(location)} {wanted}: pick one with --split (one of {sorted(splits)})")


def open_dataset(location: str, endpoint_url: str | None, split: str | None) -> tuple[Any, str | None]:
    """(the `datasets.Dataset` that folder `location` holds, its split name), per the module docstring's layouts."""
    import datasets

    fs, path = filesystem(location, endpoint_url)
    names = {posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)}
    options = storage_options(location, endpoint_url)
    if {"state.json", "dataset_info.json"} <= names:  # Dataset.save_to_disk
        ds = datasets.load_from_disk(location, storage_options=options)
        name = None if ds.split is None else str(ds.split)
        if split is not None and split != name:
            raise JobError(f"--labels {redact(location)} is a single Dataset (split: {name}); drop --split {split}")
        return ds, name
    if "dataset_dict.json" in names:  # DatasetDict.save_to_disk: load the chosen split's folder only
        splits = json.loads(fs.cat_file(posixpath.join(path, "dataset_dict.json")))["splits"]
        chosen = pick_split(location, splits, split)
        return datasets.load_from_disk(join(location, chosen), storage_options=options), chosen
    if not is_local(fs) or not any(n.endswith(DATA_EXTS) for n in fs.find(path)):
        hub = (
            ", or a hub-style dataset folder with data files (.parquet, .jsonl, .json, .csv)"
            if is_local(fs)
            else "; hub-style dataset folders are read locally only (download it, or save_to_disk it here)"
        )
        raise JobError(
            f"--labels {redact(location)} is a folder but not a `datasets` one: expected the output of "
            f"save_to_disk (state.json + dataset_info.json, or dataset_dict.json + split folders){hub}"
        )
    if any(n.endswith(".py") for n in names):  # older `datasets` would run a loading script: never run its code
        raise JobError(f"--labels {redact(location)} has a loading script (.py); scripts are never run: move it out")
    # A throwaway cache: the labels are read once, and nothing is left in the user's HF cache.
    with tempfile.TemporaryDirectory(prefix="vidscore-labels-") as cache:
        chosen = pick_split(location, datasets.get_dataset_split_names(path, cache_dir=cache), split)
        return datasets.load_dataset(path, split=chosen, cache_dir=cache, keep_in_memory=True), chosen


def read_dataset(
    location: str, endpoint_url: str | None = None, limit: int | None = None, split: str | None = None
) -> list[dict[str, Any]]:
    """Rows of a `datasets` folder, as the file readers give them. ClassLabel columns become their names (the
    index is not the label); media columns (Video/Image: {bytes, path}) become their path, bytes left unread
    (save_to_disk keeps only the file name of the files it embeds: such labels match by file name)."""
    import datasets
    import pyarrow.compute as pc
    import pyarrow.types as pat

    try:
        ds, name = open_dataset(location, endpoint_url, split)
    except JobError:
        raise
    except (OSError, ValueError, LookupError) as exc:  # a damaged or foreign folder (or a datasets bug)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise JobError(f"--labels {redact(location)} is not readable as a `datasets` folder: {first}") from exc
    if len(ds) == 0:
        raise JobError(f"--labels {redact(location)} has no rows")
    table = ds.select(range(min(limit or len(ds), len(ds)))).with_format("arrow")[:]
    for i, col in enumerate(table.column_names):
        kind = table.schema.field(col).type
        if pat.is_struct(kind) and {f.name for f in kind} == {"bytes", "path"}:
            table = table.set_column(i, col, pc.struct_field(table[col], "path"))
    rows = table.to_pylist()
    for col, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            for r in rows:
                r[col] = None if r[col] is None or r[col] < 0 else feature.int2str(r[col])
    log.info("labels: %d rows from %s (split %s)", len(rows), redact(location), name)
    return rows
