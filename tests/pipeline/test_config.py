"""Job configuration: YAML + flags, and errors that name the fix."""

from pathlib import Path

import pytest

from pipeline.config import ConfigError, ScorerConfig, load_yaml, merge, parse_scorer


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
