"""VideoScore scorer on a tiny real-architecture checkpoint: recipe fidelity, batching, strictness, failures."""

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.operators.scorers.canary_alone import check_canary_scored_alone
from vidscore.jobs.tiny.videoscore import build
from vidscore.operators.frames import FrameSpec, resize_frame, sample_indices, target_size
from vidscore.operators.scorers.runtime import stage_frames
from vidscore.operators.scorers.videoscore import TEMPLATE, VideoScoreScorer, build_prompt, template
from vidscore.schemas import videoscore as cols
from vidscore.schemas.scores import DECODE_ERROR, OK, SCORE_ERROR

NAMES = [f"videoscore_{a}" for a in cols.ASPECTS]
# Scores of the seed-0 tiny checkpoint on `_golden_frames()` (fp32 CPU); a change means the numerics moved.
GOLDEN = [0.5735224485397339, 2.737623691558838, 3.1280837059020996, 2.8725411891937256, 3.8775596618652344]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("videoscore") / "tiny-videoscore", seed=0)


@pytest.fixture(scope="module")
def scorer(ckpt: Path) -> VideoScoreScorer:
    import torch

    torch.set_num_threads(2)
    plan = VideoScoreScorer.plan(str(ckpt), device="cpu", batch_size=8)
    return plan.cls(**plan.init_kwargs)


def _video(frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Random frames already resized by the decode stage's rule."""
    spec = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
    raw = np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    return np.stack([resize_frame(spec, f) for f in raw])


def _batch(scorer: VideoScoreScorer, videos: list[np.ndarray], prompts: list) -> dict[str, np.ndarray]:
    frames = np.empty(len(videos), dtype=object)
    frames[:] = videos
    return {
        "video_id": np.array([f"v{i}" for i in range(len(videos))], dtype=object),
        "prompt": np.array(prompts, dtype=object),
        "status": np.array([OK] * len(videos), dtype=object),
        "error": np.array([None] * len(videos), dtype=object),
        scorer.spec.column: frames,
    }


def _scores(batch: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([batch[n] for n in NAMES], axis=1)


def _golden_frames() -> np.ndarray:
    t, y, x, c = np.meshgrid(np.arange(8), np.arange(378), np.arange(420), np.arange(3), indexing="ij")
    return ((x * 3 + y * 5 + t * 17 + c * 50) % 256).astype(np.uint8)


def test_tiny_checkpoint_is_deterministic(ckpt: Path, tmp_path: Path) -> None:
    again = build(tmp_path / "again", seed=0)
    files = sorted(p.name for p in ckpt.iterdir())
    assert files == sorted(p.name for p in again.iterdir()) and len(list(ckpt.glob("*.safetensors"))) >= 2
    assert all((ckpt / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = build(tmp_path / "other", seed=1)
    assert (other / "tokenizer.json").read_bytes() == (ckpt / "tokenizer.json").read_bytes()
    shard = "model-00001-of-00002.safetensors"
    assert (other / shard).read_bytes() != (ckpt / shard).read_bytes()


def test_template_is_byte_exact() -> None:
    raw = TEMPLATE.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == "49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0"
    text = template()
    assert len(text) == 1163 and text.startswith("\nSuppose") and text.endswith("are as follows:\n")


@pytest.mark.parametrize(
    ("checkpoint", "frames"),
    [
        ("TIGER-Lab/VideoScore", 16),
        ("TIGER-Lab/VideoScore-anno-only", 16),
        ("TIGER-Lab/MantisScore", 16),
        ("TIGER-Lab/MantisScore-anno-only", 16),
        ("TIGER-Lab/VideoScore-v1.1", 48),
        (None, 16),
    ],
)
def test_plan_hub_frame_counts(checkpoint: str | None, frames: int) -> None:
    plan = VideoScoreScorer.plan(checkpoint)
    assert plan.frame_spec == FrameSpec.uniform(frames, "arange", "idefics2", (378, 980))
    assert plan.init_kwargs["num_frames"] == frames and plan.name == "videoscore"
    assert 17 < plan.gpu_memory_gb < 40
    assert [f.name for f in plan.fields][:5] == NAMES


def test_plan_local_rules(ckpt: Path, tmp_path: Path) -> None:
    assert VideoScoreScorer.plan(str(ckpt)).frame_spec.sampler.num_frames == 16
    v11 = shutil.copytree(ckpt, tmp_path / "my-VideoScore-v1.1")
    assert VideoScoreScorer.plan(str(v11)).frame_spec.sampler.num_frames == 48
    hinted = shutil.copytree(ckpt, tmp_path / "hinted")
    config = json.loads((hinted / "config.json").read_text())
    (hinted / "config.json").write_text(json.dumps(dict(config, vidscore_num_frames=32)))
    pre = json.loads((hinted / "preprocessor_config.json").read_text())
    pre["size"] = {"shortest_edge": 224, "longest_edge": 896}
    (hinted / "preprocessor_config.json").write_text(json.dumps(pre))
    plan = VideoScoreScorer.plan(str(hinted))
    assert plan.frame_spec == FrameSpec.uniform(32, "arange", "idefics2", (224, 896))
    assert VideoScoreScorer.plan(str(hinted), num_frames=8).frame_spec.sampler.num_frames == 8
    assert VideoScoreScorer.plan("TIGER-Lab/VideoScore-v1.1", num_frames=16).frame_spec.sampler.num_frames == 16


def test_plan_rejects_bad_configuration(ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        VideoScoreScorer.plan(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="no config.json"):
        VideoScoreScorer.plan(str(tmp_path))
    pickled = shutil.copytree(ckpt, tmp_path / "pickled")
    for f in [*pickled.glob("*.safetensors"), pickled / "model.safetensors.index.json"]:
        f.unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="no \\*.safetensors"):
        VideoScoreScorer.plan(str(pickled))
    lost = shutil.copytree(ckpt, tmp_path / "lost-shard")
    (lost / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ValueError, match="missing"):
        VideoScoreScorer.plan(str(lost))
    with pytest.raises(ValueError, match="valid: num_frames, batch_size, device, revision, cache_dir"):
        VideoScoreScorer.plan("TIGER-Lab/VideoScore", frames=16)
    with pytest.raises(ValueError, match="num_frames must be a whole number >= 1, got 0"):
        VideoScoreScorer.plan("TIGER-Lab/VideoScore", num_frames=0)
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1, got 2.5"):
        VideoScoreScorer.plan("TIGER-Lab/VideoScore", batch_size=2.5)
    with pytest.raises(ValueError, match="Qwen2-VL"):
        VideoScoreScorer.plan("TIGER-Lab/VideoScore-Qwen2-VL")


def _rewrite(ckpt: Path, dest: Path, edit) -> Path:
    """Copy the checkpoint and edit the tensors of its last shard."""
    from safetensors.torch import load_file, save_file

    out = shutil.copytree(ckpt, dest)
    shard = out / "model-00002-of-00002.safetensors"
    tensors = load_file(str(shard))
    edit(tensors)
    save_file(tensors, str(shard), metadata={"format": "pt"})
    return out


@pytest.mark.parametrize(("edit", "message"), [("drop", "1 missing keys"), ("extra", "1 unexpected keys")])
def test_loading_is_strict(ckpt: Path, tmp_path: Path, edit: str, message: str) -> None:
    import torch

    def change(tensors: dict) -> None:
        if edit == "drop":
            tensors.pop(sorted(tensors)[0])
        else:
            tensors["lm_head.weight"] = torch.zeros(2, 2)

    bad = _rewrite(ckpt, tmp_path / "bad", change)
    with pytest.raises(ValueError, match=message):
        VideoScoreScorer(str(bad), num_frames=16, device="cpu")


def test_inputs_equal_idefics2_processor(scorer: VideoScoreScorer, ckpt: Path) -> None:
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(ckpt)
    assert processor.image_seq_len == scorer.image_seq_len == 64
    rng = np.random.default_rng(1)
    raw = [
        rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
        for n, h, w in [(2, 320, 512), (3, 720, 1280), (1, 16, 16), (4, 900, 500)]
    ]
    prompts = ['a "quoted" {brace} prompt\nwith lines', None, "x" * 300, "trailing space "]
    videos = [np.stack([resize_frame(scorer.spec, f) for f in v]) for v in raw]
    ours = scorer.inputs(prompts, videos)
    texts = [build_prompt(p, len(v)) for p, v in zip(prompts, raw)]
    theirs = processor(
        text=texts, images=[[Image.fromarray(f) for f in v] for v in raw], padding=True, return_tensors="np"
    )
    np.testing.assert_array_equal(ours["input_ids"].numpy(), theirs["input_ids"])
    np.testing.assert_array_equal(ours["attention_mask"].numpy(), theirs["attention_mask"])
    # Ours carries only real frames: the processor's rows for frames that exist, in order.
    real = [(b, t) for b, v in enumerate(raw) for t in range(len(v))]
    pixels = scorer.pixels(stage_frames(videos, "cpu"), videos).numpy()
    np.testing.assert_array_equal(pixels, np.stack([theirs["pixel_values"][b, t] for b, t in real]))
    # Idefics2Model's own patch rule on the processor's pixel mask: real where a patch is wholly covered.
    pixel_mask = torch.from_numpy(np.stack([theirs["pixel_attention_mask"][b, t] for b, t in real]))
    covered = pixel_mask.unfold(1, 14, 14).unfold(2, 14, 14).sum(dim=(-1, -2)) == 14 * 14
    np.testing.assert_array_equal(ours["patch_mask"].numpy(), covered.numpy())
    assert not ours["patch_mask"].all() and ours["patch_mask"].any(-1).any(-1).all()  # padded, never empty
    tok = processor.tokenizer
    image_id, fake_id = tok.convert_tokens_to_ids("<image>"), tok.convert_tokens_to_ids("<fake_token_around_image>")
    for row, video in enumerate(videos):
        ids = ours["input_ids"][row].tolist()
        assert ids[0] == tok.bos_token_id
        assert ids.count(image_id) == 64 * len(video) and ids.count(fake_id) == 2 * len(video)
        first = ids.index(fake_id)
        assert ids[first : first + 66] == [fake_id] + [image_id] * 64 + [fake_id]


def test_legacy_tokenizer_json_is_used_as_is(scorer: VideoScoreScorer, ckpt: Path, monkeypatch) -> None:
    """A legacy Mistral tokenizer.json (prefix-space normalizer) tokenizes as the file says, as it did at
    training time; transformers 5's LlamaTokenizer would rebuild its pre-tokenizer and drop a space token."""
    from tokenizers import Tokenizer, normalizers
    from transformers import AutoTokenizer

    legacy = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    legacy.pre_tokenizer = None
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    monkeypatch.setattr(scorer, "tokenizer", legacy)
    video = _video(3, 378, 378, 0)
    ids = scorer.inputs(["a cat"], [video])["input_ids"][0].tolist()
    expanded = build_prompt("a cat", 3).replace(
        "<image>", "<fake_token_around_image>" + "<image>" * 64 + "<fake_token_around_image>"
    )
    assert ids == legacy.encode(expanded).ids
    assert len(ids) == len(AutoTokenizer.from_pretrained(ckpt)(expanded)["input_ids"]) + 3


def test_matches_reference_style_forward(scorer: VideoScoreScorer, ckpt: Path) -> None:
    """Independent path: stock processor on raw frames, transformers' own loader, the reference's pooling."""
    import torch
    from PIL import Image
    from safetensors import safe_open
    from transformers import AutoProcessor, Idefics2Model

    processor = AutoProcessor.from_pretrained(ckpt)
    model = Idefics2Model.from_pretrained(ckpt, dtype=torch.float32).eval()
    shards = json.loads((ckpt / "model.safetensors.index.json").read_text())["weight_map"]
    head = {}
    for key in ("score.weight", "score.bias"):
        with safe_open(str(ckpt / shards[key]), framework="pt") as handle:
            head[key] = handle.get_tensor(key).float()
    rng = np.random.default_rng(7)
    raw = [rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8) for n, h, w in [(3, 240, 426), (5, 720, 1280)]]
    prompts = ["a boat on a lake", "fireworks over a bridge"]
    inputs = processor(
        text=[build_prompt(p, len(v)) for p, v in zip(prompts, raw)],
        images=[[Image.fromarray(f) for f in v] for v in raw],
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        hidden = model(**inputs, use_cache=False).last_hidden_state
    logits = hidden @ head["score.weight"].T + head["score.bias"]
    ids = inputs["input_ids"]
    last = (torch.eq(ids, processor.tokenizer.pad_token_id).int().argmax(-1) - 1) % ids.shape[-1]
    reference = logits[torch.arange(len(raw)), last].numpy()
    videos = [np.stack([resize_frame(scorer.spec, f) for f in v]) for v in raw]
    np.testing.assert_allclose(scorer.score(prompts, videos), reference, atol=1e-5)


def test_batched_equals_one_at_a_time(scorer: VideoScoreScorer) -> None:
    shapes = [(3, 300, 600), (16, 200, 200), (7, 500, 300), (11, 378, 420), (5, 200, 300)]  # h x w, both ways
    videos = [_video(n, h, w, seed) for seed, (n, h, w) in enumerate(shapes)]
    prompts = ["a dog surfing", "", None, "two cats {dancing}", "timelapse of a city at night"]
    batch = scorer(_batch(scorer, videos, prompts))
    together = _scores(batch)
    alone = np.concatenate([scorer.score([p], [v]) for p, v in zip(prompts, videos)])
    assert np.isfinite(together).all() and list(batch["status"]) == [OK] * 5
    assert np.abs(together - alone).max() < 1e-4
    assert together.std(axis=0).min() > 1e-3  # the tiny model reacts to its input: the check can fail
    assert list(batch["videoscore_frames"]) == ["16_arange_idefics2_378x980"] * 5
    assert batch["videoscore_revision"][0].startswith("sha256:")


def _arange_reference(total: int, n: int) -> list[int]:
    if total <= n:
        return list(range(total))
    step = total / n
    return [int(i * step) for i in range(math.ceil(total / step))]


@pytest.mark.parametrize("n", [16, 48])
def test_frame_indices_follow_reference(n: int) -> None:
    spec = FrameSpec.uniform(n, "arange", "idefics2", (378, 980))
    for total in [1, 2, 5, n - 1, n, n + 1, 2 * n + 1, 97, 100, 121, 240, 1000, 7919]:
        indices = sample_indices(spec, total).tolist()
        assert indices == _arange_reference(total, n)
        assert len(indices) == min(total, n) and indices[0] == 0 and indices[-1] < total


def test_resize_follows_processor_rule() -> None:
    from transformers.image_utils import SizeDict
    from transformers.models.idefics2.image_processing_pil_idefics2 import get_resize_output_image_size

    spec = FrameSpec.uniform(16, "arange", "idefics2", (378, 980))
    examples = {
        (320, 512): (378, 512),
        (720, 1280): (551, 980),
        (1280, 720): (980, 551),
        (16, 16): (378, 378),
        (1080, 1920): (551, 980),
        (480, 480): (480, 480),
        (2000, 500): (980, 378),
    }
    for (h, w), want in examples.items():
        assert target_size(spec, h, w) == want
        assert resize_frame(spec, np.zeros((h, w, 3), dtype=np.uint8)).shape == (*want, 3)
    size = SizeDict(shortest_edge=378, longest_edge=980)
    for h in range(100, 2400, 37):
        for w in range(100, 2400, 41):
            assert target_size(spec, h, w) == get_resize_output_image_size(np.broadcast_to(0, (3, h, w)), size)


def test_prompt_edge_cases_keep_template(scorer: VideoScoreScorer) -> None:
    head, tail = template().split("{text_prompt}")
    prompts = [
        "say \"hi\" and 'bye'",
        "{text_prompt} {0} {} }{",
        "line1\nline2\r\n\ttab",
        ("a long prompt " * 800)[:10_000],
        "an <image> of <<image>image> and <fake_token_around_image>",
    ]
    for text in prompts:
        built = build_prompt(text, 4)
        assert built.startswith(head) and built.endswith(tail + "<image> " * 4)
        assert built.count("<image>") == 4 and "<fake_token_around_image>" not in built
    assert build_prompt(prompts[1], 1) == head + prompts[1] + tail + "<image> "
    videos = [_video(2, 378, 378, i) for i in range(len(prompts))]
    batch = scorer(_batch(scorer, videos, prompts))
    assert np.isfinite(_scores(batch)).all() and list(batch["status"]) == [OK] * len(prompts)


def test_failed_decode_row_gets_nan_and_keeps_status(scorer: VideoScoreScorer) -> None:
    videos = [_video(3, 378, 378, 0), np.zeros((0,), dtype=np.uint8)]
    batch = _batch(scorer, videos, ["a", "b"])
    batch["status"][1], batch["error"][1] = DECODE_ERROR, "decode_error: broken"
    batch = scorer(batch)
    scores = _scores(batch)
    assert np.isfinite(scores[0]).all() and np.isnan(scores[1]).all()
    assert list(batch["status"]) == [OK, DECODE_ERROR] and batch["error"][1] == "decode_error: broken"
    assert batch["videoscore_checkpoint"][1] == scorer.checkpoint


def test_one_failing_video_is_recorded_alone(scorer: VideoScoreScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    videos = [_video(n, 378, 420, n) for n in (3, 5, 4, 6)] + [np.zeros((2, 378, 378, 4), dtype=np.uint8)]
    prompts = ["p0", "p1", "p2", "p3", "p4"]
    alone = [scorer.score([p], [v])[0] for p, v in zip(prompts[:4], videos[:4])]
    forward = scorer.forward

    def failing(inputs, pixels):
        real_frames = (inputs["input_ids"] == scorer.image_token_id).sum(-1) // scorer.image_seq_len
        if (real_frames == 5).any():
            raise RuntimeError("synthetic failure")
        return forward(inputs, pixels)

    monkeypatch.setattr(scorer, "forward", failing)
    batch = scorer(_batch(scorer, videos, prompts))
    scores = _scores(batch)
    assert list(batch["status"]) == [OK, SCORE_ERROR, OK, OK, SCORE_ERROR]
    assert "videoscore: RuntimeError: synthetic failure" in batch["error"][1]
    assert "uint8 (T, H, W, 3)" in batch["error"][4]
    assert np.isnan(scores[[1, 4]]).all()
    np.testing.assert_allclose(scores[[0, 2, 3]], np.array(alone)[[0, 2, 3]], atol=1e-4)


def test_golden_scores(scorer: VideoScoreScorer) -> None:
    scores = scorer.score(["a red panda eating bamboo in the snow"], [_golden_frames()])[0]
    np.testing.assert_allclose(scores, GOLDEN, atol=1e-4)


def test_special_token_strings_in_a_prompt_are_text(scorer: VideoScoreScorer) -> None:
    video = _video(2, 378, 378, 0)
    tok = scorer.tokenizer
    specials = ["</s>", "<s>", "<end_of_utterance>", "<unk>"]
    ids = scorer.inputs([f"a cat {' '.join(specials)} sitting"], [video])["input_ids"][0].tolist()
    plain = scorer.inputs(["a cat sitting"], [video])["input_ids"][0].tolist()
    for token in specials:
        assert ids.count(tok.token_to_id(token)) == plain.count(tok.token_to_id(token)), token
    assert len(ids) > len(plain)  # the strings are there, as ordinary text pieces


def test_a_canary_row_is_scored_alone(scorer: VideoScoreScorer) -> None:
    videos = [np.random.default_rng(40 + i).integers(0, 256, (16, 48, 64, 3), dtype=np.uint8) for i in range(4)]
    batch = _batch(scorer, videos, ["a", "b", "c", "d"])
    check_canary_scored_alone(scorer, batch, scorer.spec.column, lambda args: args[1])
