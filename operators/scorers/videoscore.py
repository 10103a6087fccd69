"""`videoscore`: TIGER-Lab's VideoScore, a regression reward model that rates a text-to-video clip on five aspects.

An Idefics2 model (SigLIP vision tower, perceiver resampler, Mistral-7B) plus `score = Linear(4096, 5)` read at
the last real token; trained with MSE on human labels 1-4, so outputs are roughly 0.5-4.5 and are used raw.
Scores only mean something if inference repeats the training recipe, so this file reproduces it exactly:
`arange` frame sampling and the Idefics2 resize (done by the decode stage from `FrameSpec`), rescale/normalize
from the checkpoint's preprocessor config, the byte-exact regression template (package data, sha256-checked)
formatted with the text prompt followed by `"<image> " * frames`, each `<image>` expanded to
`<fake_token_around_image>` + 64 image tokens + `<fake_token_around_image>` as Idefics2Processor does.
Batches are right-padded (text), carry only real frames (the padding frames Idefics2Model would drop are never
made) zero-padded to the largest frame, and are pooled at `attention_mask.sum(-1) - 1`: equal to one at a time.
Weights come from safetensors only, strictly.
"""

import functools
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan, whole
from vidscore.operators.scorers.rows import canary, finish, float_columns, record_failure, scorable, stamp
from vidscore.operators.scorers.runtime import (
    attention_implementation,
    check_hub,
    device_dtype,
    empty_model,
    fetch,
    is_local,
    length_buckets,
    pick_device,
    pinned_commit,
    run_isolated,
    stage_frames,
    weights_hash,
)
from vidscore.schemas import videoscore as cols

# The paper's model (16 frames, 3x cheaper than v1.1); prefer TIGER-Lab/VideoScore-v1.1 when text-to-video
# alignment matters (v1 barely reacts to the prompt).
DEFAULT_CHECKPOINT = "TIGER-Lab/VideoScore"
CHECKPOINT_FRAMES = {
    "tiger-lab/videoscore": 16,
    "tiger-lab/videoscore-anno-only": 16,
    "tiger-lab/mantisscore": 16,
    "tiger-lab/mantisscore-anno-only": 16,
    "tiger-lab/videoscore-v1.1": 48,
}
UNSUPPORTED = {
    "tiger-lab/videoscore-qwen2-vl": "a Qwen2-VL model with a custom 1-D position forward",
    "tiger-lab/videoscore2": "a generative model, not a regression head",
}
# No revision is pinned: provenance records the resolved hub commit; pass `revision` to pin one.
PUBLISHED_SIZE = (378, 980)  # preprocessor_config.json `size`: shortest_edge, longest_edge
HUB_FILES = ["*.safetensors", "*.json", "tokenizer.model"]
TEMPLATE = Path(__file__).with_name("videoscore_prompt.txt")
TEMPLATE_SHA256 = "49b386d9ea3003760c983cc258cf4211faf858d58191f95fcfacdf68a8fed2c0"
OPTIONS = ("num_frames", "batch_size", "device", "revision", "cache_dir")
WEIGHTS_GB = 17.0  # 8.3B parameters in bf16
FRAME_GB = 0.06  # peak SigLIP activations for one 980x551 frame (2730 patches), an estimate
IMAGE, FAKE = "<image>", "<fake_token_around_image>"


@functools.cache
def template() -> str:
    """The regression prompt, byte-exact: an edited or whitespace-stripped copy shifts scores by up to ~0.8."""
    raw = TEMPLATE.read_bytes()
    if hashlib.sha256(raw).hexdigest() != TEMPLATE_SHA256:
        raise ValueError(f"{TEMPLATE} was modified; restore it byte-exact (sha256 {TEMPLATE_SHA256})")
    return raw.decode("utf-8")


def build_prompt(text: Any, num_frames: int) -> str:
    """The reference's prompt: only the template's own placeholder is formatted; image tokens in the
    user's text are removed so the prompt always holds exactly one `<image>` per frame."""
    text = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    while IMAGE in text or FAKE in text:
        text = text.replace(IMAGE, "").replace(FAKE, "")
    return template().format(text_prompt=text) + "<image> " * num_frames


def _local_files(path: Path) -> dict:
    """Check a checkpoint directory has the hub layout; returns its config.json."""
    fix = "pass a hub id (e.g. TIGER-Lab/VideoScore) or a directory in the hub layout"
    if not path.is_dir():
        raise ValueError(f"checkpoint directory {path} does not exist; {fix}")
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} has no config.json; {fix} (config.json, *.safetensors, tokenizer files)")
    _weight_files(path)
    if not (path / "tokenizer.json").is_file():
        raise ValueError(f"{path} has no tokenizer.json; copy the checkpoint's tokenizer files")
    return json.loads((path / "config.json").read_text())


def _weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted({path / f for f in json.loads(index.read_text())["weight_map"].values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"{path}: shards {missing} listed in {index.name} are missing; re-download them")
        return files
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ValueError(
            f"{path} has no *.safetensors weights (pickle checkpoints are never loaded); "
            "convert them with safetensors or download the safetensors files"
        )
    return files


def _preprocessor(path: Path | None) -> dict:
    """The checkpoint's preprocessor_config.json ({} for a hub id before download, or when absent)."""
    file = None if path is None else path / "preprocessor_config.json"
    cfg = json.loads(file.read_text()) if file is not None and file.is_file() else {}
    if cfg.get("do_image_splitting"):
        raise ValueError(f"{file}: do_image_splitting must be false (VideoScore was trained without it)")
    return cfg


def _frame_size(path: Path | None) -> tuple[int, int]:
    """(shortest_edge, longest_edge) from a local preprocessor config, else the published sizes."""
    size = _preprocessor(path).get("size", {})
    return int(size.get("shortest_edge", PUBLISHED_SIZE[0])), int(size.get("longest_edge", PUBLISHED_SIZE[1]))


class VideoScoreScorer:
    """Scores videos with a VideoScore checkpoint (hub id or local directory in the hub layout).

    Args:
        checkpoint: hub id or directory; both load through the same code.
        num_frames: frames per video the checkpoint expects (16, or 48 for v1.1).
        device: `auto`, `cpu`, `cuda`, `cuda:1`, ... (bf16 on CUDA, fp32 on CPU).
        revision: hub revision (branch, tag or commit) to pin.
        cache_dir: hub cache directory.
        batch_size: videos per forward pass; bigger calls are split by length.
        size: (shortest_edge, longest_edge) of the Idefics2 resize the decode stage applied.
    """

    name = cols.PREFIX

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan:
        """Frames follow the checkpoint: the table above for hub ids; for a directory, config.json's
        `vidscore_num_frames`, else 48 if its name contains `v1.1`, else 16; `num_frames` overrides all.
        The resize size comes from a directory's preprocessor_config.json, else the published 378/980."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown videoscore options {sorted(unknown)}; valid: {', '.join(OPTIONS)}")
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        path = Path(checkpoint).expanduser()
        looks_local = is_local(checkpoint)
        key = checkpoint.lower()
        if key in UNSUPPORTED:
            raise ValueError(f"{checkpoint} is {UNSUPPORTED[key]}; use one of {sorted(CHECKPOINT_FRAMES)}")
        if not looks_local:
            check_hub(checkpoint, "config.json", options.get("revision"), options.get("cache_dir"))
        config = _local_files(path) if looks_local else {}
        if looks_local:
            checkpoint = str(path.resolve())
        hint = config.get("vidscore_num_frames")  # lets a local fine-tune declare its frame count
        if hint is not None and (type(hint) is not int or hint < 1):
            raise ValueError(f"{path / 'config.json'}: vidscore_num_frames must be a positive integer")
        frames = CHECKPOINT_FRAMES.get(key) or hint or (48 if "v1.1" in path.name.lower() else 16)
        frames = frames if options.get("num_frames") is None else whole(options, "num_frames", frames)
        size = _frame_size(path if looks_local else None)
        batch_size = whole(options, "batch_size", 4)
        kwargs = {
            "checkpoint": checkpoint,
            "num_frames": frames,
            "device": str(options.get("device", "auto")),
            "revision": options.get("revision"),
            "cache_dir": options.get("cache_dir"),
            "batch_size": batch_size,
            "size": size,
        }
        return ScorerPlan(
            name=cls.name,
            cls=cls,
            frame_spec=FrameSpec.uniform(num_frames=frames, index_rule="arange", resize="idefics2", size=size),
            fields=tuple(cols.FIELDS),
            init_kwargs=kwargs,
            batch_size=batch_size,
            gpu_memory_gb=round(WEIGHTS_GB + FRAME_GB * batch_size * frames, 1),
            checkpoint=checkpoint,
            revision=weights_hash(_weight_files(path)) if looks_local else pinned_commit(options.get("revision")),
            reads_prompt=True,
            headline=cols.HEADLINE,
        )

    def __init__(
        self,
        checkpoint: str,
        num_frames: int,
        device: str = "auto",
        revision: str | None = None,
        cache_dir: str | None = None,
        batch_size: int = 4,
        size: Sequence[int] = PUBLISHED_SIZE,
    ) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import Idefics2Config, Idefics2Model

        self.checkpoint, self.batch_size = checkpoint, batch_size
        self.spec = FrameSpec.uniform(num_frames=num_frames, index_rule="arange", resize="idefics2", size=tuple(size))
        directory, self.revision = self._resolve(checkpoint, revision, cache_dir)
        _local_files(directory)
        if _frame_size(directory) != self.spec.resizer.size_args:
            raise ValueError(
                f"{checkpoint} resizes to {_frame_size(directory)}, the plan to {self.spec.resizer.size_args}"
            )
        self.device, dtype = pick_device(device)
        config = Idefics2Config.from_pretrained(directory, attn_implementation=attention_implementation(self.device))
        config.use_cache = False
        with empty_model(self.device, dtype):
            self.model = Idefics2Model(config).eval()
            self.head = torch.nn.Linear(config.text_config.hidden_size, len(cols.ASPECTS), bias=True).eval()
        self._load(directory)
        # The checkpoint's tokenizer.json as-is, like the fast tokenizer at training time (transformers 4.40).
        # transformers 5's LlamaTokenizer rebuilds the pre-tokenizer instead, which for a legacy Mistral
        # tokenizer.json turns the space after each image block into one token instead of two.
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        file = directory / "tokenizer_config.json"
        tok_cfg = json.loads(file.read_text()) if file.is_file() else {}
        ends = [tok_cfg.get(k) or d for k, d in (("bos_token", "<s>"), ("eos_token", "</s>"))]
        bos, eos = (self.tokenizer.token_to_id(t["content"] if isinstance(t, dict) else t) for t in ends)
        self.prefix = [bos] if tok_cfg.get("add_bos_token", True) else []
        self.suffix = [eos] if tok_cfg.get("add_eos_token", False) else []
        if self.tokenizer.token_to_id(IMAGE) != config.image_token_id or None in self.prefix + self.suffix:
            raise ValueError(f"{checkpoint}: tokenizer lacks {IMAGE}/BOS/EOS or disagrees with config.json")
        self.image_seq_len = config.perceiver_config.resampler_n_latents
        self.image_token_id, self.patch_size = config.image_token_id, config.vision_config.patch_size
        pre = _preprocessor(directory)
        # Same arithmetic as the processor: x * rescale in float64 -> float32, then (x - mean) / std in float32.
        scaled = (np.arange(256, dtype=np.float64) * pre.get("rescale_factor", 1 / 255)).astype(np.float32)
        mean = np.asarray(pre.get("image_mean", [0.5] * 3), dtype=np.float32)
        std = np.asarray(pre.get("image_std", [0.5] * 3), dtype=np.float32)
        lut = (scaled[:, None] - mean) / std  # (256, 3): uint8 value, channel -> normalized pixel
        self.channel_luts = torch.from_numpy(np.ascontiguousarray(lut.T)).to(self.device)

    @staticmethod
    def _resolve(checkpoint: str, revision: str | None, cache_dir: str | None) -> tuple[Path, str]:
        """Local directory as-is (revision = weights hash) or a hub snapshot (revision = its commit)."""
        local = fetch(checkpoint, HUB_FILES, revision, cache_dir)
        if is_local(checkpoint):
            return local, weights_hash(_weight_files(local))
        return local, local.name  # the cache's snapshots/<commit> directory

    def _load(self, directory: Path) -> None:
        """Copy `model.*` / `score.*` tensors from the safetensors shards; any missing or extra key raises."""
        import torch
        from safetensors import safe_open

        targets = {f"model.{k}": v for k, v in self.model.state_dict(keep_vars=True).items()}
        targets.update({f"score.{k}": v for k, v in self.head.state_dict(keep_vars=True).items()})
        files = _weight_files(directory)
        found: set[str] = set()
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                found.update(handle.keys())
        missing, extra = sorted(set(targets) - found), sorted(found - set(targets))
        if missing or extra:
            raise ValueError(
                f"{directory} is not a VideoScore checkpoint: {len(missing)} missing keys "
                f"{missing[:4]}, {len(extra)} unexpected keys {extra[:4]}"
            )
        with torch.no_grad():
            for file in files:
                with safe_open(str(file), framework="pt") as handle:
                    for key in sorted(handle.keys()):
                        tensor, target = handle.get_tensor(key), targets[key]
                        if tensor.shape != target.shape:
                            raise ValueError(
                                f"{key}: checkpoint shape {tuple(tensor.shape)}, model {tuple(target.shape)}"
                            )
                        target.copy_(tensor)

    def inputs(self, prompts: list[Any], videos: list[np.ndarray]) -> dict[str, Any]:
        """Token ids and masks for a group: right-padded ids, and per real frame (no padding frames) the patch
        mask: a patch is real when the frame covers all of it, as Idefics2Model derives it from pixel masks."""
        import torch

        image_str = f"{FAKE}{IMAGE * self.image_seq_len}{FAKE}"
        ids = []
        for text, frames in zip(prompts, videos):
            prompt = build_prompt(text, len(frames)).replace(IMAGE, image_str).replace(FAKE * 2, FAKE)
            # The tokenizer splits out special tokens first and encodes the text between them separately, so
            # encoding the template text apart, with special-token strings as plain text (`</s>` in a prompt is
            # text), gives the whole-prompt tokenisation for every prompt without such strings.
            head = prompt.index(FAKE)
            self.tokenizer.encode_special_tokens = True
            try:
                words = self.tokenizer.encode(prompt[:head], add_special_tokens=False).ids
            finally:
                self.tokenizer.encode_special_tokens = False
            images = self.tokenizer.encode(prompt[head:], add_special_tokens=False).ids
            ids.append(self.prefix + words + images + self.suffix)
        input_ids = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)], attention[row, : len(seq)] = torch.tensor(seq), 1
        p = self.patch_size
        h, w = (max(v.shape[i] for v in videos) for i in (1, 2))
        patch_mask = torch.zeros((sum(len(v) for v in videos), h // p, w // p), dtype=torch.bool)
        start = 0
        for v in videos:
            patch_mask[start : start + len(v), : v.shape[1] // p, : v.shape[2] // p] = True
            start += len(v)
        return {"input_ids": input_ids, "attention_mask": attention, "patch_mask": patch_mask}

    def pixels(self, frames: "torch.Tensor", videos: list[np.ndarray]) -> "torch.Tensor":  # noqa: F821
        """uint8 (N, H, W, 3) frames of `videos` (stacked, zero-padded, on the device) -> the processor's
        normalised (N, 3, H, W) pixels in the model dtype, zero outside each frame as the processor pads."""
        import torch

        n, h, w, _ = frames.shape
        out = torch.empty((n, 3, h, w), dtype=self.model.dtype, device=frames.device)
        channels = frames.permute(0, 3, 1, 2)
        # Exact float32 values by table lookup, cast as `.to(dtype)` would. A few frames at a time keeps the
        # int64 indices small enough to stay in cache and off fresh pages: 3x faster on CPU than all at once.
        for i in range(0, n, 4):
            for c in range(3):
                out[i : i + 4, c] = torch.take(self.channel_luts[c], channels[i : i + 4, c].long())
        start = 0
        for v in videos:
            out[start : start + len(v), :, v.shape[1] :] = 0
            out[start : start + len(v), :, :, v.shape[2] :] = 0
            start += len(v)
        return out

    def forward(self, inputs: dict[str, Any], pixels: "torch.Tensor") -> "torch.Tensor":  # noqa: F821
        """Idefics2Model's forward on real frames only, from the stock submodules: it skips the stock path's
        scan of every pixel for all-zero padding frames, their removal by a copy, and the pixel-mask unfolding."""
        model, patch_mask = self.model, inputs["patch_mask"]
        vision = model.vision_model(pixel_values=pixels, patch_attention_mask=patch_mask).last_hidden_state
        features = model.connector(vision, attention_mask=patch_mask.view(len(pixels), -1))
        input_ids = inputs["input_ids"]
        embeds = model.text_model.get_input_embeddings()(input_ids)
        embeds = embeds.masked_scatter((input_ids == self.image_token_id).unsqueeze(-1), features.to(embeds.dtype))
        # Right padding under a causal mask: no real token sees the pads after it, so the padding mask is left
        # out (with it, SDPA loses its fast causal kernel: 2x slower on CPU); pads' own outputs are never read.
        return model.text_model(inputs_embeds=embeds, attention_mask=None, use_cache=False).last_hidden_state

    def score(self, prompts: list[Any], videos: list[np.ndarray]) -> np.ndarray:
        """(len(videos), 5) raw head outputs for one forward pass."""
        import torch

        frames = stage_frames(videos, self.device)
        inputs = {k: v.to(self.device, non_blocking=True) for k, v in self.inputs(prompts, videos).items()}
        with torch.inference_mode():
            hidden = self.forward(inputs, self.pixels(frames, videos))
            last = inputs["attention_mask"].sum(-1) - 1
            pooled = hidden[torch.arange(len(videos), device=hidden.device), last]
            return self.head(pooled).float().cpu().numpy()

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]:
        rows, column = len(batch["video_id"]), self.spec.column
        names = [f"{cols.PREFIX}_{a}" for a in cols.ASPECTS]
        out = float_columns(names, rows)
        items, videos = [], []
        for i in scorable(batch, column, cols.PREFIX):
            frames = np.asarray(batch[column][i])
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
                record_failure(
                    batch, i, cols.PREFIX, f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
                )
                continue
            items.append(i)
            videos.append(frames)
        prompts = [batch["prompt"][i] for i in items] if "prompt" in batch else [None] * len(items)
        # Frame count sets the token length, frame area the vision cost: group similar videos together.
        lengths = [v.shape[0] * 10**7 + v.shape[1] * v.shape[2] for v in videos]
        results, failures = run_isolated(
            lambda group: self.score([prompts[j] for j in group], [videos[j] for j in group]),
            length_buckets(lengths, self.batch_size, canary(batch, items)),
        )
        for j, values in results.items():
            for name, value in zip(names, values):
                out[name][items[j]] = value
        for j, message in failures.items():
            record_failure(batch, items[j], cols.PREFIX, message)
        batch.update(out)
        stamp(batch, cols.PREFIX, self.checkpoint, self.revision, self.spec.key, *device_dtype(self.model))
        return finish(batch, self.spec.column, drop_frames)
