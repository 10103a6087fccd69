"""Input reading: manifest formats, videofolder metadata, stable ids, and errors before any work."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from vidscore.operators.read import InputError, read_input, video_id_for


def write_manifest(path: Path, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":
        pcsv.write_csv(table, path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [
    {"uri": "a.mp4", "prompt": "a cat", "generator": "g1", "seed": 1},
    {"uri": "/abs/b.mp4", "prompt": "a dog", "generator": "g2", "seed": 2},
    {"uri": "s3://bucket/c.mp4", "prompt": None, "generator": "g1", "seed": 3},
]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_manifest_formats(tmp_path: Path, suffix: str) -> None:
    table = read_input(str(write_manifest(tmp_path / f"m{suffix}", ROWS)))
    assert table.column_names[:4] == ["video_id", "uri", "prompt", "generator"]
    assert table.column("uri").to_pylist() == [str(tmp_path / "a.mp4"), "/abs/b.mp4", "s3://bucket/c.mp4"]
    assert table.column("seed").to_pylist() == [1, 2, 3]  # unknown columns pass through
    assert table.column("video_id").to_pylist() == [video_id_for(u) for u in table.column("uri").to_pylist()]


def test_given_ids_are_kept_and_derived_ids_are_stable(tmp_path: Path) -> None:
    rows = [{"uri": "x.mp4", "video_id": 17}, {"uri": "y.mp4", "video_id": None}]
    table = read_input(str(write_manifest(tmp_path / "m.jsonl", rows)))
    assert table.column("video_id").to_pylist() == ["17", video_id_for(str(tmp_path / "y.mp4"))]
    assert video_id_for("s3://b/k.mp4") == video_id_for("s3://b/k.mp4") != video_id_for("s3://b/k2.mp4")


def test_manifest_folder_concatenates_files(tmp_path: Path) -> None:
    write_manifest(tmp_path / "part1.parquet", ROWS[:2])
    write_manifest(tmp_path / "part2.parquet", ROWS[2:])
    assert len(read_input(str(tmp_path))) == 3


def test_limit(tmp_path: Path) -> None:
    assert len(read_input(str(write_manifest(tmp_path / "m.jsonl", ROWS)), limit=2)) == 2


def test_prompt_alias_caption(tmp_path: Path) -> None:
    table = read_input(str(write_manifest(tmp_path / "m.jsonl", [{"uri": "a.mp4", "caption": "hi"}])))
    assert table.column("prompt").to_pylist() == ["hi"] and "caption" in table.column_names


def test_video_folder_with_metadata(tmp_path: Path) -> None:
    for name in ("gen_a/1.mp4", "gen_a/2.mp4", "gen_b/3.webm", "loose.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a video")
    meta = [
        {"file_name": "gen_a/1.mp4", "prompt": "one", "rating": 5},
        {"file_name": "gen_b/3.webm", "prompt": "three", "rating": 3},
        {"file_name": "gen_b/missing.mp4", "prompt": "gone", "rating": 1},
    ]
    write_manifest(tmp_path / "metadata.jsonl", meta)
    table = read_input(str(tmp_path))
    by_uri = {r["uri"]: r for r in table.to_pylist()}
    assert sorted(Path(u).relative_to(tmp_path).as_posix() for u in by_uri) == [
        "gen_a/1.mp4",
        "gen_a/2.mp4",
        "gen_b/3.webm",
        "gen_b/missing.mp4",
        "loose.mp4",
    ]
    one = by_uri[str(tmp_path / "gen_a/1.mp4")]
    assert (one["prompt"], one["rating"], one["generator"]) == ("one", 5, "gen_a")
    assert by_uri[str(tmp_path / "gen_a/2.mp4")]["prompt"] is None
    assert by_uri[str(tmp_path / "loose.mp4")]["generator"] is None
    # A metadata row whose video is missing is kept: it will become a fetch_error row, not vanish.
    assert by_uri[str(tmp_path / "gen_b/missing.mp4")]["prompt"] == "gone"


def test_video_folder_with_metadata_csv(tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "metadata.csv").write_text('file_name,prompt\nv.mp4,"a, quoted prompt"\n')
    assert read_input(str(tmp_path)).column("prompt").to_pylist() == ["a, quoted prompt"]


def test_missing_uri_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no `uri` column"):
        read_input(str(write_manifest(tmp_path / "m.jsonl", [{"path": "a.mp4"}])))


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = [{"uri": "a.mp4", "video_id": "x"}, {"uri": "b.mp4", "video_id": "x"}]
    with pytest.raises(InputError, match=r"occur more than once.*'x'"):
        read_input(str(write_manifest(tmp_path / "m.jsonl", rows)))
    with pytest.raises(InputError, match="more than once"):
        read_input(str(write_manifest(tmp_path / "m2.jsonl", [{"uri": "a.mp4"}, {"uri": "a.mp4"}])))


def test_empty_uri(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty `uri`"):
        read_input(str(write_manifest(tmp_path / "m.jsonl", [{"uri": "a.mp4"}, {"uri": ""}])))


def test_reserved_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="reserved"):
        read_input(str(write_manifest(tmp_path / "m.jsonl", [{"uri": "a.mp4", "status": "x"}])))


def test_unreadable_locations(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_input(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no videos"):
        read_input(str(tmp_path / "empty"))
    (tmp_path / "list.txt").write_text("a.mp4\n")
    with pytest.raises(InputError, match="must be .parquet, .jsonl or .csv"):
        read_input(str(tmp_path / "list.txt"))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="JSON Lines"):
        read_input(str(tmp_path / "bad.jsonl"))


def test_file_url(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.jsonl", ROWS[:1])
    assert read_input(f"file://{path}").column("uri").to_pylist() == [str(tmp_path / "a.mp4")]


def test_jsonl_streams_in_blocks_and_types_widen_across_them(tmp_path: Path, monkeypatch) -> None:
    import vidscore.operators.read as read

    monkeypatch.setattr(read, "JSON_BLOCK_BYTES", 256)
    rows = [{"uri": f"v{i:03d}.mp4", "note": None if i < 40 else f"n{i}", "seed": i} for i in range(60)]
    chunks = list(read.iter_input(str(write_manifest(tmp_path / "m.jsonl", rows))))
    assert len(chunks) > 5 and all(c.keys is None for c in chunks)
    assert chunks[0].table.schema.field("note").type == pa.null()  # each block is typed on its own
    table = read_input(str(tmp_path / "m.jsonl"))
    assert table.column("uri").to_pylist() == [str(tmp_path / r["uri"]) for r in rows]
    assert table.schema.field("note").type == pa.string() and table.column("note").to_pylist()[40] == "n40"
    assert len(read_input(str(tmp_path / "m.jsonl"), limit=17)) == 17


def test_parquet_streams_by_row_batches(tmp_path: Path, monkeypatch) -> None:
    import vidscore.operators.read as read

    monkeypatch.setattr(read, "CHUNK_ROWS", 7)
    rows = [{"uri": f"v{i}.mp4", "seed": i} for i in range(30)]
    chunks = list(read.iter_input(str(write_manifest(tmp_path / "m.parquet", rows))))
    assert [len(c.table) for c in chunks] == [7, 7, 7, 7, 2]
    assert [s for c in chunks for s in c.table.column("seed").to_pylist()] == list(range(30))


def test_duplicates_in_different_chunks_are_named(tmp_path: Path, monkeypatch) -> None:
    import vidscore.operators.read as read

    monkeypatch.setattr(read, "CHUNK_ROWS", 4)
    rows = [{"uri": f"v{i}.mp4", "video_id": f"id{i}"} for i in range(10)] + [{"uri": "w.mp4", "video_id": "id2"}]
    with pytest.raises(InputError, match=r"1 video_id values occur more than once \(e.g. \['id2'\]\)"):
        list(read.iter_input(str(write_manifest(tmp_path / "m.parquet", rows))))


def test_folder_listing_chunks_carry_the_content_keys_the_decoder_computes(tmp_path: Path, monkeypatch) -> None:
    import vidscore.operators.read as read
    from vidscore.operators.storage import content_key, filesystem

    monkeypatch.setattr(read, "CHUNK_ROWS", 3)
    for i in range(7):
        (tmp_path / f"g{i % 2}").mkdir(exist_ok=True)
        (tmp_path / f"g{i % 2}" / f"{i}.mp4").write_bytes(b"x" * i)
    chunks = list(read.iter_input(str(tmp_path)))
    assert [len(c.table) for c in chunks] == [3, 3, 1]
    uris = [u for c in chunks for u in c.table.column("uri").to_pylist()]
    assert uris == sorted(uris) and len(uris) == 7
    fs, _ = filesystem(str(tmp_path))
    keys = [k for c in chunks for k in c.keys]
    assert keys == [content_key(fs.info(u)) for u in uris] and all(keys)


def test_a_hash_collision_is_not_a_duplicate(tmp_path: Path, monkeypatch) -> None:
    import numpy as np

    import vidscore.operators.read as read

    monkeypatch.setattr(read._UniqueIds, "hashes", staticmethod(lambda ids: np.zeros(len(ids), "<u8")))
    rows = [{"uri": f"v{i}.mp4"} for i in range(5)]
    assert len(read_input(str(write_manifest(tmp_path / "m.jsonl", rows)))) == 5  # every id collides, none repeats
    twice = [*rows, {"uri": "a.mp4", "video_id": "x"}, {"uri": "b.mp4", "video_id": "x"}]
    with pytest.raises(InputError, match=r"1 video_id values occur more than once \(e.g. \['x'\]\)"):
        read_input(str(write_manifest(tmp_path / "d.jsonl", twice)))


def test_csv_manifest_values_round_trip_exactly(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("video_id,uri,generator,clip_hash,seed,score\n007,a.mp4,0042,00ff,7,0.50\n010,b.mp4,1e3,0e1,8,1\n")
    table = read_input(str(path))
    assert table.column("video_id").to_pylist() == ["007", "010"]
    assert table.column("generator").to_pylist() == ["0042", "1e3"]  # a generator name, not a number
    assert table.column("clip_hash").to_pylist() == ["00ff", "0e1"]
    assert table.column("seed").to_pylist() == [7, 8]  # other columns keep their inferred types


def test_missing_prompts_are_null_never_the_text_nan(tmp_path: Path) -> None:
    pq.write_table(pa.table({"uri": ["a.mp4", "b.mp4"], "prompt": [float("nan"), None]}), tmp_path / "m.parquet")
    assert read_input(str(tmp_path / "m.parquet")).column("prompt").to_pylist() == [None, None]
    (tmp_path / "m.jsonl").write_text('{"uri": "a.mp4", "prompt": null}\n{"uri": "b.mp4", "prompt": "a cat"}\n')
    assert read_input(str(tmp_path / "m.jsonl")).column("prompt").to_pylist() == [None, "a cat"]
