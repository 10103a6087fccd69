"""Conform: frames dropped, NaN metadata as nulls, exact schema types, pass-through kept, uris redacted."""

import numpy as np
import pyarrow as pa

from vidscore.operators.conform import conform
from vidscore.schemas.scores import score_schema
from vidscore.schemas.technical import FIELDS


def test_conform_to_score_schema() -> None:
    schema = score_schema(FIELDS, [pa.field("tags", pa.list_(pa.string())), pa.field("seed", pa.int64())])
    batch = {
        "video_id": np.array(["a", "b"], dtype=object),
        "uri": np.array(["/a.mp4", "https://h/b.mp4?X-Amz-Signature=secret&X-Amz-Credential=AKIA"], dtype=object),
        "status": np.array(["ok", "decode_error"], dtype=object),
        "error": np.array([None, "boom"], dtype=object),
        "num_frames": np.array([30.0, np.nan]),
        "width": np.array([64.0, np.nan]),
        "technical_motion": np.array([0.5, np.nan], np.float32),
        "technical_static": np.array([False, None], dtype=object),
        "technical_checkpoint": np.array(["builtin", None], dtype=object),
        "tags": np.array([np.array(["x", "y"]), np.array([], dtype=object)], dtype=object),
        "seed": np.array([1, 2]),
        "frames__16_arange": np.array([np.zeros((1, 2, 2, 3), np.uint8)] * 2, dtype=object),
    }
    table = conform(batch, schema, "run-1", ["technical"])
    assert table.schema == schema and "frames__16_arange" not in table.column_names
    rows = table.to_pylist()
    assert (rows[0]["num_frames"], rows[1]["num_frames"], rows[0]["width"]) == (30, None, 64)
    assert (rows[0]["technical_motion"], rows[1]["technical_motion"]) == (0.5, None)
    assert rows[0]["tags"] == ["x", "y"] and rows[1]["seed"] == 2 and rows[0]["prompt"] is None
    assert {r["run_id"] for r in rows} == {"run-1"} and all(r["scored_at"] is not None for r in rows)
    # A scorer's values carry the run that computed them, only where it ran (readers keep earlier values).
    assert [r["technical_run_id"] for r in rows] == ["run-1", None]
    assert rows[1]["uri"] == "https://h/b.mp4"  # presigned query strings never reach the table


def test_pass_through_columns_of_any_arrow_type() -> None:
    """Embeddings arrive from Ray as a 2-D tensor; lists, structs and dictionaries as objects."""
    types = {
        "emb": pa.list_(pa.float32(), 3),
        "tags": pa.list_(pa.string()),
        "meta": pa.struct([("a", pa.int64())]),
        "kind": pa.dictionary(pa.int32(), pa.string()),
    }
    schema = score_schema(FIELDS, [pa.field(k, t) for k, t in types.items()])
    batch = {
        "video_id": np.array(["a", "b"], dtype=object),
        "uri": np.array(["/a", "/b"], dtype=object),
        "status": np.array(["ok", "ok"], dtype=object),
        "error": np.array([None, None], dtype=object),
        "emb": np.arange(6, dtype=np.float32).reshape(2, 3),
        "tags": np.array([["x"], ["y", "z"]], dtype=object),
        "meta": np.array([{"a": 1}, {"a": 2}], dtype=object),
        "kind": np.array(["u", "v"], dtype=object),
    }
    rows = conform(batch, schema, "run-1", ["technical"]).to_pylist()
    assert rows[1]["emb"] == [3.0, 4.0, 5.0] and rows[1]["tags"] == ["y", "z"]
    assert rows[0]["meta"] == {"a": 1} and rows[1]["kind"] == "v"
