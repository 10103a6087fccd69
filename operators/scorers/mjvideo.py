"""`mjvideo`: MJ-VIDEO, a mixture-of-experts video reward model on InternVL2-2B (5 aspects, 28 criteria).

The recipe is the reference's (aiming-lab/MJ-Video) and every step matters for the numbers: 8 frames at
`linspace(0, n - 1, 8, endpoint=False)`, each squashed to 448x448 with PIL bicubic (the decode stage does both),
ImageNet-normalised here on the device; one InternLM2 chat prompt "Frame1: <image>\\n...Frame8: <image>\\n" +
caption in which only the FIRST `<image>` becomes `<img>` + 8*256 `<IMG_CONTEXT>` + `</img>` (the others stay
literal text, as trained); BOS first. A linear head reads 28 criterion rewards at the last real token; two gating
MLPs read the `<|im_end|>` closing the user turn and mix criteria into aspects and aspects into `overall`.
Scores are centred at 0, > 0 is good. Columns: `schemas/mjvideo.py`.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan, whole
from vidscore.operators.scorers.rows import canary, finish, float_columns, record_failure, scorable, stamp, text
from vidscore.operators.scorers.runtime import (
    attention_implementation,
    check_hub,
    device_dtype,
    fetch,
    is_local,
    length_buckets,
    pick_device,
    pinned_commit,
    run_isolated,
    stage_frames,
    weights_hash,
)
from vidscore.schemas import mjvideo as cols

DEFAULT_CHECKPOINT = "MJ-Bench/MJ-VIDEO-2B"
DEFAULT_BASE = "OpenGVLab/InternVL2-2B"  # config + tokenizer; the checkpoint holds every weight
NUM_FRAMES = 8
WEIGHTS = "model.safetensors"
META_FILES = ("config.json", "tokenizer.model", "tokenizer_config.json")
OPTIONS = ("base", "batch_size", "device", "revision", "cache_dir")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def frame_spec(size: int = 448) -> FrameSpec:
    return FrameSpec.uniform(num_frames=NUM_FRAMES, index_rule="linspace_open", resize="squash", size=(size, size))


ASSISTANT_TURN = "<|im_end|><|im_start|>assistant\n"  # closes the user turn; the gates read its `<|im_end|>`


def _local_config(checkpoint: str, base: str) -> dict[str, Any] | None:
    """Validate local paths (naming the fix) and return the InternVL2 config when one is local."""
    layout = f"a directory with {WEIGHTS} (+ {', '.join(META_FILES)} or a `base` that has them), or a hub id"
    ckpt = Path(checkpoint).expanduser()
    if is_local(checkpoint) and not (ckpt / WEIGHTS).is_file():
        raise ValueError(f"mjvideo checkpoint {checkpoint!r} is not {layout} like {DEFAULT_CHECKPOINT!r}")
    meta = ckpt if all((ckpt / f).is_file() for f in META_FILES) else None
    if meta is None and is_local(base):
        meta = Path(base).expanduser()
        if not all((meta / f).is_file() for f in META_FILES):
            raise ValueError(
                f"mjvideo base {base!r} must hold {', '.join(META_FILES)} or be a hub id like {DEFAULT_BASE!r}"
            )
    return json.loads((meta / "config.json").read_text()) if meta else None


def _weights_revision(path: Path) -> str:
    """Hub commit when loaded from the hub cache, else a cheap hash of the safetensors header and size."""
    if path.parent.parent.name == "snapshots":
        return path.parent.name
    return weights_hash([path])


class MJVideoScorer:
    """MJ-VIDEO reward scores for videos and their prompts.

    Args:
        checkpoint: hub id or local directory with the released `model.safetensors` (whole wrapper state dict).
        base: hub id or directory with the InternVL2 `config.json` + tokenizer; used only when the checkpoint
            directory lacks them.
        device: `auto` (CUDA if visible), `cuda[:N]` or `cpu`; bf16 on CUDA, fp32 on CPU.
        revision: hub revision of the checkpoint.
        cache_dir: hub cache directory.
    """

    name = cols.PREFIX

    def __init__(self, checkpoint: str, base: str = DEFAULT_BASE, device: str = "auto",
                 revision: str | None = None, cache_dir: str | None = None) -> None:  # fmt: skip
        import torch
        from transformers import SentencePieceBackend

        from vidscore.operators.scorers import internvl2

        self.device, self.dtype = pick_device(device)
        ckpt = fetch(checkpoint, (WEIGHTS, *META_FILES), revision, cache_dir)
        has_meta = all((ckpt / f).is_file() for f in META_FILES)
        meta = ckpt if has_meta else fetch(base, META_FILES, None, cache_dir)
        self.config = json.loads((meta / "config.json").read_text())
        internvl2.check_config(self.config)
        self.spec = frame_spec(internvl2.image_size(self.config))
        self.image_tokens = internvl2.num_image_tokens(self.config)
        tok = SentencePieceBackend.from_pretrained(str(meta), special_tokens_pattern="bos", sp_model_kwargs={})
        self.tokenizer = tok
        self.image_token = tok.convert_tokens_to_ids(internvl2.IMG_CONTEXT)
        self.pad_token = tok.pad_token_id
        self.gate_pattern = tok(ASSISTANT_TURN, add_special_tokens=False)["input_ids"]
        self.specials = [t for t in {*tok.get_added_vocab(), *tok.all_special_tokens} if t]
        attn = attention_implementation(self.device)
        self.model, self.head = internvl2.load_model(ckpt / WEIGHTS, self.config, self.device, self.dtype, attn)
        self.checkpoint, self.revision = checkpoint, _weights_revision(ckpt / WEIGHTS)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan:
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown mjvideo options {sorted(unknown)}; valid: {', '.join(OPTIONS)}")
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        base = options.get("base") or DEFAULT_BASE
        config, size = _local_config(checkpoint, base), 448
        if not is_local(checkpoint):
            check_hub(checkpoint, WEIGHTS, options.get("revision"), options.get("cache_dir"))
        ckpt = Path(checkpoint).expanduser()
        needs_base = not (is_local(checkpoint) and all((ckpt / f).is_file() for f in META_FILES))
        if needs_base and not is_local(base):  # config and tokenizer come from the base
            check_hub(base, "config.json", None, options.get("cache_dir"))
        if config is not None:  # local files: validate now, and follow their image size
            from vidscore.operators.scorers.internvl2 import check_config, image_size

            check_config(config)
            size = image_size(config)
        batch_size = whole(options, "batch_size", 8)
        kwargs = {"checkpoint": checkpoint, "base": base, "device": options.get("device", "auto"),
                  "revision": options.get("revision"), "cache_dir": options.get("cache_dir")}  # fmt: skip
        return ScorerPlan(
            name=cls.name,
            cls=cls,
            frame_spec=frame_spec(size),
            fields=tuple(cols.FIELDS),
            init_kwargs=kwargs,
            batch_size=batch_size,
            # bf16 weights (2.2B params) + per video 8x1025 ViT tokens and ~2.1k LLM tokens of activations.
            gpu_memory_gb=round(5.0 + 0.6 * batch_size, 1),
            checkpoint=checkpoint,
            reads_prompt=True,
            revision=_weights_revision(Path(checkpoint).expanduser() / WEIGHTS)
            if is_local(checkpoint)
            else pinned_commit(options.get("revision")),
            headline=cols.HEADLINE,
        )

    def encode(self, caption: str, num_frames: int) -> tuple[list[int], int, int]:
        """(input ids, reward position, gating position) for one video, exactly as the reference builds them."""
        from vidscore.operators.scorers.internvl2 import video_prompt

        ids = self.tokenizer(video_prompt(caption, num_frames, self.image_tokens))["input_ids"]
        if any(token in caption for token in self.specials):
            # A caption is text: `<IMG_CONTEXT>` or `<|im_end|>` in it must not become control tokens. Only such
            # captions are tokenised in pieces; every other prompt is the reference's whole-string tokenisation.
            query = video_prompt("", num_frames, self.image_tokens)
            head, tail = query[: -len(ASSISTANT_TURN)], query[-len(ASSISTANT_TURN) :]
            ids = self.tokenizer(head)["input_ids"]
            ids += self.tokenizer(caption, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            ids += self.tokenizer(tail, add_special_tokens=False)["input_ids"]
        n = len(self.gate_pattern)
        gate = next(j for j in range(len(ids) - n, -1, -1) if ids[j : j + n] == self.gate_pattern)
        # The reference pools before the first pad id (= eos `</s>`); only a caption containing "</s>" has one.
        last = (ids.index(self.pad_token) - 1) % len(ids) if self.pad_token in ids else len(ids) - 1
        return ids, last, gate

    def pixels(self, videos: list[np.ndarray]) -> "torch.Tensor":  # noqa: F821 - torch is imported lazily
        """uint8 (T, S, S, 3) videos -> normalised (sum T, 3, S, S): ToTensor + Normalize, done on the device."""
        side = self.spec.resizer.size_args[0]
        for frames in videos:
            if frames.ndim != 4 or frames.shape[1:] != (side, side, 3):
                raise ValueError(f"expected frames of shape (T, {side}, {side}, 3), got {frames.shape}")
        x = stage_frames(videos, self.device).permute(0, 3, 1, 2)
        return x.float().div(255).sub(self.mean).div(self.std).to(self.dtype)

    def score(self, videos: list[tuple[np.ndarray, tuple[list[int], int, int]]]) -> np.ndarray:
        """Scores (len(videos), 34) in `schemas.mjvideo.SCORE_COLUMNS` order from one right-padded forward."""
        import torch

        width = max(len(ids) for _, (ids, _, _) in videos)
        input_ids = torch.full((len(videos), width), self.pad_token, dtype=torch.long)
        for row, (_, (ids, _, _)) in enumerate(videos):
            input_ids[row, : len(ids)] = torch.tensor(ids)
        rows = torch.arange(len(videos), device=self.device)
        last = torch.tensor([e[1] for _, e in videos], device=self.device)
        gate = torch.tensor([e[2] for _, e in videos], device=self.device)
        with torch.inference_mode():
            pixels = self.pixels([frames for frames, _ in videos])
            # Right padding under a causal mask: the positions read (last, gate) never see the pads after
            # them, so no padding mask (it would cost SDPA and flash attention their fast causal kernels).
            hidden = self.model(pixels, input_ids.to(self.device), None, self.image_token)
            rewards, aspects, overall = self.head(hidden[rows, last], hidden[rows, gate])
            out = torch.cat([overall[:, None].float(), aspects.float(), rewards.float()], dim=-1)
        return out.cpu().numpy()

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]:
        rows = len(batch["video_id"])
        out = float_columns(list(cols.SCORE_COLUMNS), rows)
        frames = batch[self.spec.column]
        prompts = batch["prompt"] if "prompt" in batch else [None] * rows
        encoded: dict[int, tuple[list[int], int, int]] = {}
        for i in scorable(batch, self.spec.column, cols.PREFIX):
            try:
                encoded[i] = self.encode(text(prompts[i]) or "", len(frames[i]))
            except Exception as exc:  # noqa: BLE001 - a prompt the model cannot take fails its row only
                record_failure(batch, i, cols.PREFIX, f"{type(exc).__name__}: {exc}"[:500])
        todo = list(encoded)
        buckets = length_buckets([len(encoded[i][0]) for i in todo], max(1, len(todo)), canary(batch, todo))
        results, failures = run_isolated(
            lambda group: self.score([(np.asarray(frames[i]), encoded[i]) for i in group]),
            [[todo[j] for j in bucket] for bucket in buckets],
        )
        for i, values in results.items():
            for name, value in zip(cols.SCORE_COLUMNS, values):
                out[name][i] = value
        for i, message in failures.items():
            record_failure(batch, i, cols.PREFIX, message)
        batch.update(out)
        stamp(batch, cols.PREFIX, self.checkpoint, self.revision, self.spec.key, *device_dtype(self.model))
        return finish(batch, self.spec.column, drop_frames)
