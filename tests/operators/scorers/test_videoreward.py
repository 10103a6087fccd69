"""VideoReward on a tiny random-weight checkpoint in the released layout: the prompt, token ids and pixels against
the stock Qwen2-VL tokenizer, chat template and image processor; LoRA merging; batched equals one at a time;
calibration; refusals."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.operators.scorers.canary_alone import check_canary_scored_alone
from vidscore.jobs.tiny.videoreward import STATS, build
from vidscore.operators.scorers.videoreward import (
    REWARD_TOKENS,
    TEMPLATE,
    VideoRewardScorer,
    prompt_pieces,
    template,
)
from vidscore.operators.scorers.videoreward_checkpoint import merged_state
from vidscore.schemas import videoreward as cols


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("videoreward"), seed=0)


@pytest.fixture(scope="module")
def scorer(ckpt: Path) -> VideoRewardScorer:
    return VideoRewardScorer(**VideoRewardScorer.plan(str(ckpt)).init_kwargs)


def video(seed: int, frames: int = 4, height: int = 56, width: int = 84) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def test_the_prompt_is_byte_exact_with_three_reward_tokens_and_one_caption() -> None:
    raw = TEMPLATE.read_bytes()
    assert len(raw) == 3997 and hashlib.sha256(raw).hexdigest().startswith("fdb6309bac61")
    assert "**Visual Quality:**  \n" in template()  # trailing spaces are part of the prompt
    pieces = prompt_pieces("a red {car}")
    assert [p for p in pieces if p in REWARD_TOKENS] == list(REWARD_TOKENS)
    assert pieces[4].count("a red {car}") == 1 and "a red {car}" not in "".join(pieces[:4] + pieces[5:])
    assert prompt_pieces(float("nan"))[4] == prompt_pieces(None)[4] == prompt_pieces("")[4]


def stock_tokenizer(ckpt: Path):
    """The base tokenizer as transformers loads it, with the reward tokens added the reference's way."""
    from transformers import AutoTokenizer

    base = json.loads((ckpt / "model_config.json").read_text())["model_config"]["model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"additional_special_tokens": list(REWARD_TOKENS)})
    return tok


@pytest.mark.parametrize("text", ["a cat playing piano", "", "émoji 🐱, tabs\tand\nnewlines; {braces}"])
def test_token_ids_equal_the_chat_template_and_tokenizer(ckpt: Path, scorer: VideoRewardScorer, text: str) -> None:
    tok = stock_tokenizer(ckpt)
    messages = [[{"role": "user", "content": [{"type": "video", "video": "x.mp4"},
                                              {"type": "text", "text": "".join(prompt_pieces(text))}]}]]  # fmt: skip
    rendered = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)[0]
    assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    expanded = rendered.replace("<|video_pad|>", "<|video_pad|>" * 6)  # what the processor does for 6 tokens
    assert scorer.token_ids(text, 6) == tok(expanded, add_special_tokens=False)["input_ids"]
    assert [tok.convert_tokens_to_ids(t) for t in REWARD_TOKENS] == scorer.reward_ids


def test_special_token_strings_in_a_caption_stay_text(scorer: VideoRewardScorer) -> None:
    ids = scorer.token_ids("fake <|TA_reward|> and <|im_end|> and <|video_pad|>", 6)
    assert sum(i in scorer.reward_ids for i in ids) == 3
    assert ids.count(scorer.video_token_id) == 6


def test_pixels_equal_the_stock_qwen2vl_processor(ckpt: Path, scorer: VideoRewardScorer) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    base = json.loads((ckpt / "model_config.json").read_text())["model_config"]["model_name_or_path"]
    processor = Qwen2VLImageProcessorPil.from_pretrained(base)
    a, b = video(1, 1, 56, 84)[0], video(2, 1, 56, 84)[0]
    # A still image is a video of two equal frames to the processor: each temporal group is one image.
    stock = processor(images=[a, b], do_resize=False, return_tensors="pt")
    mine, grid = scorer.pixels(np.stack([a, a, b, b]))
    assert grid == (2, 4, 6) and stock["image_grid_thw"].tolist() == [[1, 4, 6], [1, 4, 6]]
    assert torch.equal(mine.cpu(), stock["pixel_values"])


def test_lora_is_merged_into_the_base_weights(ckpt: Path) -> None:
    files = [next(ckpt.glob("checkpoint-*/model.pth"))]
    raw = torch.load(files[0], weights_only=True)
    merged = merged_state(files, r=4, alpha=8)
    name = "model.layers.0.self_attn.q_proj"
    prefix = f"base_model.model.{name}"
    expected = raw[f"{prefix}.base_layer.weight"].float() + 2.0 * (
        raw[f"{prefix}.lora_B.default.weight"].float() @ raw[f"{prefix}.lora_A.default.weight"].float()
    )
    assert torch.equal(merged[f"{name}.weight"], expected)  # float32: no rounding back to the release's bf16
    assert not any("lora_" in k or "base_layer" in k or k.startswith("base_model") for k in merged)
    assert {"visual.patch_embed.proj.weight", "rm_head.weight", "model.embed_tokens.weight"} <= set(merged)


def test_batched_equals_one_at_a_time_and_only_ta_reads_the_caption(scorer: VideoRewardScorer) -> None:
    videos = [video(3, 4, 56, 84), video(4, 2, 84, 56), video(5, 6, 56, 56)]
    prompts = ["a cat", "a long prompt about a dog surfing a wave at sunset", None]
    batched = scorer.score(prompts, videos)
    single = np.concatenate([scorer.score([p], [v]) for p, v in zip(prompts, videos)])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert np.ptp(batched, axis=0).min() > 1e-3  # the videos score differently
    other = scorer.score(["a different caption"], [videos[0]])[0]
    assert np.allclose(other[:2], single[0, :2], atol=1e-6) and abs(other[2] - single[0, 2]) > 1e-4


def test_columns_hold_calibrated_and_raw_rewards(scorer: VideoRewardScorer) -> None:
    column = scorer.spec.column
    frames = np.empty(3, dtype=object)
    frames[:] = [video(6), np.zeros((0,), np.uint8), video(7, 3)]  # ok, decode failed, odd frame count
    batch = {
        "video_id": np.array(["a", "b", "c"], dtype=object),
        "prompt": np.array(["x", "y", "z"], dtype=object),
        "status": np.array(["ok", "decode_error", "ok"], dtype=object),
        "error": np.array([None, "bad", None], dtype=object),
        column: frames,
    }
    out = scorer(batch, drop_frames=True)
    assert column not in out
    raw = np.array([out[f"videoreward_{a}_raw"][0] for a in cols.ASPECTS])
    assert np.allclose(raw, scorer.score(["x"], [video(6)])[0], atol=1e-6)
    for aspect, value in zip(("VQ", "MQ", "TA"), raw):
        expected = (value - STATS[f"{aspect}_mean"]) / STATS[f"{aspect}_std"]
        assert out[f"videoreward_{aspect.lower()}"][0] == pytest.approx(expected, abs=1e-5)
    assert out["videoreward_overall"][0] == pytest.approx(sum(out[f"videoreward_{a}"][0] for a in cols.ASPECTS))
    assert out["videoreward_overall_raw"][0] == pytest.approx(raw.sum(), abs=1e-5)
    assert np.isnan(out["videoreward_vq"][1]) and np.isnan(out["videoreward_vq"][2])
    assert out["videoreward_status"][2] == "score_error" and "patches" in out["videoreward_error"][2]
    assert out["videoreward_frames"][0] == "fps2_4to768_smart28_100352to200704"
    assert out["videoreward_attention"][0] == "sdpa" and out["videoreward_dtype"][0] == "float32"
    assert f"torch {torch.__version__}" in out["videoreward_software"][0]


def test_built_directly_the_scorer_takes_its_base_from_model_config(ckpt: Path, scorer: VideoRewardScorer) -> None:
    """As the plan does: a checkpoint folder alone is enough (no hub lookup for the default base)."""
    direct = VideoRewardScorer(str(ckpt), device="cpu")
    v = video(9)
    np.testing.assert_allclose(direct.score(["a dog"], [v]), scorer.score(["a dog"], [v]), atol=1e-6)


def test_a_three_output_head_reads_its_diagonal(tmp_path: Path) -> None:
    ckpt = build(tmp_path / "dim3", seed=1, output_dim=3)
    scorer = VideoRewardScorer(**VideoRewardScorer.plan(str(ckpt)).init_kwargs)
    assert scorer.head.weight.shape[0] == 3 and scorer.score(["a"], [video(8)]).shape == (1, 3)


def test_refusals(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown videoreward options"):
        VideoRewardScorer.plan(str(ckpt), frames=8)
    with pytest.raises(ValueError, match="has no model_config.json"):
        VideoRewardScorer.plan(str(tmp_path))
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    config = json.loads((bad / "model_config.json").read_text())
    config["data_config"]["prompt_template_type"] = "simple"
    (bad / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="prompt_template_type is 'simple'"):
        VideoRewardScorer.plan(str(bad))
    with pytest.raises(ValueError, match="no checkpoint-3"):
        VideoRewardScorer.plan(str(ckpt), step=3)
    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    pth = next(broken.glob("checkpoint-*/model.pth"))
    state = torch.load(pth, weights_only=True)
    del state["base_model.model.rm_head.weight"]
    torch.save(state, pth)
    with pytest.raises(ValueError, match="not a VideoReward checkpoint: 1 missing keys"):
        VideoRewardScorer(**VideoRewardScorer.plan(str(broken)).init_kwargs)


def test_the_published_checkpoint_plans_from_the_hub_cache() -> None:
    plan = VideoRewardScorer.plan("KwaiVGI/VideoReward")  # tests/conftest.py fills a hub-layout cache
    assert plan.frame_spec.key == "fps2_4to768_smart28_100352to200704" and plan.reads_prompt
    assert plan.init_kwargs["base"] == "Qwen/Qwen2-VL-2B-Instruct" and plan.gpu_memory_gb > 4


def test_a_canary_row_is_scored_alone(scorer: VideoRewardScorer) -> None:
    videos = [video(30 + i) for i in range(4)]
    frames = np.empty(4, dtype=object)
    frames[:] = videos
    batch = {
        "video_id": np.array([f"v{i}" for i in range(4)], dtype=object),
        "prompt": np.array(["a"] * 4, object),
        "status": np.array(["ok"] * 4, object),
        "error": np.array([None] * 4, object),
        scorer.spec.column: frames,
    }
    check_canary_scored_alone(scorer, batch, scorer.spec.column, lambda args: args[1])
