"""Job configuration: YAML + flags, and errors that name the fix."""

from pathlib import Path

import pytest

from vidscore.pipeline.config import ConfigError, ScorerConfig, load_yaml, merge, parse_scorer


def test_parse_scorer() -> None:
    assert parse_scorer("technical") == ScorerConfig("technical")
    assert parse_scorer("videoscore=/ckpt/dir") == ScorerConfig("videoscore", "/ckpt/dir")
    with pytest.raises(ConfigError, match="NAME=CHECKPOINT"):
        parse_scorer("=x")


def test_yaml_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "input: s3://b/in/\noutput: s3://b/out/\nlimit: 5\n"
        "scorers:\n  - technical\n  - name: videoscore\n    checkpoint: TIGER-Lab/VideoScore-v1.1\n    batch_size: 2\n"
    )
    cfg = merge(load_yaml(str(path)), {"limit": 7, "output": None})
    assert (cfg.input, cfg.output, cfg.limit) == ("s3://b/in/", "s3://b/out/", 7)
    assert cfg.scorers[1] == ScorerConfig("videoscore", "TIGER-Lab/VideoScore-v1.1", {"batch_size": 2})


def test_bad_configs(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("input: x\noutptu: y\n")
    with pytest.raises(ConfigError, match=r"unknown keys \['outptu'\].*valid keys"):
        load_yaml(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(str(tmp_path / "b.yaml"))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="missing output"):
        merge({}, {"input": "x"})
    with pytest.raises(ConfigError, match="listed twice"):
        merge({}, {"input": "x", "output": "y", "scorers": [ScorerConfig("technical")] * 2})
    with pytest.raises(ConfigError, match="limit must be a whole number >= 1"):
        merge({}, {"input": "x", "output": "y", "limit": 0})


def test_scorer_flags_keep_the_files_options_for_that_scorer(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "input: i\noutput: o\nscorers:\n  - technical\n"
        "  - {name: videoscore, checkpoint: TIGER-Lab/VideoScore-v1.1, batch_size: 2, device: gpu, max_actors: 3}\n"
        "  - {name: mjvideo, batch_size: 5}\n"
    )
    flags = [parse_scorer("videoscore=/ckpt/vs"), parse_scorer("mjvideo"), parse_scorer("technical")]
    cfg = merge(load_yaml(str(path)), {"scorers": flags})
    # The flags choose the scorers and their order; a flagged checkpoint replaces the file's, options stay.
    assert cfg.scorers == [
        ScorerConfig("videoscore", "/ckpt/vs", {"batch_size": 2}, device="gpu", max_actors=3),
        ScorerConfig("mjvideo", None, {"batch_size": 5}),
        ScorerConfig("technical"),
    ]
    only = merge(load_yaml(str(path)), {"scorers": [parse_scorer("mjvideo=/ckpt/mj")]})
    assert only.scorers == [ScorerConfig("mjvideo", "/ckpt/mj", {"batch_size": 5})]
    kept = merge(load_yaml(str(path)), {"scorers": [parse_scorer("videoscore")]})
    assert kept.scorers[0].checkpoint == "TIGER-Lab/VideoScore-v1.1"
    # --device applies to every scorer, over the file's per-scorer device.
    assert {s.device for s in merge(load_yaml(str(path)), {"device": "cpu"}).scorers} == {None}
    assert merge(load_yaml(str(path)), {"device": "cpu"}).device == "cpu"


def test_placement_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="device must be auto, gpu or cpu, got 'tpu'"):
        merge({}, {"input": "x", "output": "y", "device": "tpu"})
    with pytest.raises(ConfigError, match="videoscore: device must be auto, gpu or cpu"):
        merge({"scorers": [ScorerConfig("videoscore", device="GPU")]}, {"input": "x", "output": "y"})
    with pytest.raises(ConfigError, match="videoscore: max_actors must be a whole number >= 1, got 0"):
        merge({"scorers": [ScorerConfig("videoscore", max_actors=0)]}, {"input": "x", "output": "y"})
    with pytest.raises(ConfigError, match="gpu_wait_s must be a number > 0"):
        merge({}, {"input": "x", "output": "y", "gpu_wait_s": -1})
    with pytest.raises(ConfigError, match="ray_address must be an address"):
        merge({}, {"input": "x", "output": "y", "ray_address": 6379})


def test_node_labels_are_checked_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "input: i\noutput: o\ndecode_labels: {vidscore/pool: decode}\n"
        "scorers: [{name: videoscore, labels: {vidscore/pool: gpu}, batch_size: 2}]\n"
    )
    cfg = merge(load_yaml(str(path)), {"scorers": [parse_scorer("videoscore=/ckpt")]})
    assert cfg.decode_labels == {"vidscore/pool": "decode"}
    assert cfg.scorers == [ScorerConfig("videoscore", "/ckpt", {"batch_size": 2}, labels={"vidscore/pool": "gpu"})]
    with pytest.raises(ConfigError, match="decode_labels must map node label names to values"):
        merge({}, {"input": "x", "output": "y", "decode_labels": ["decode"]})
    with pytest.raises(ConfigError, match="videoscore: labels must map"):
        merge({"scorers": [ScorerConfig("videoscore", labels={"pool": 1})]}, {"input": "x", "output": "y"})
