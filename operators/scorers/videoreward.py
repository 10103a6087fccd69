"""`videoreward`: VideoReward (KwaiVGI/VideoAlign), a Qwen2-VL-2B reward model read at three reward tokens.

The model is stock Qwen2-VL (vision tower, merger, Qwen2 LM) plus `rm_head = Linear(hidden, output_dim, bias=False)`
applied to the final-norm hidden states at `<|VQ_reward|>`, `<|MQ_reward|>` and `<|TA_reward|>`, in that order:
visual quality, motion quality, text alignment. This file repeats the reference inference exactly:
- frames: `qwen2vl_frames.FpsFrames` (2 fps, even count) and `SmartResize` (within `max_frame_pixels`), applied
  by the decode stage;
- pixels: rescale 1/255, CLIP mean/std, Qwen2-VL's temporal-2 / patch-14 / merge-2 patches (equal to the stock
  processor's, tested);
- text: Qwen2-VL-Instruct's chat rendering (default system turn, video then text, generation prompt) around the
  byte-exact `detailed_special` prompt (package data, sha256-checked) that holds the three reward tokens;
- positions 0..L-1 in all three M-RoPE sections: the reference calls the text model without position ids;
- calibration: `(raw - mean) / std` per aspect with the checkpoint's `inference_config`; overall = their sum.
Weights: the release's `checkpoint-N/model.pth` (a PEFT-wrapped state dict with LoRA) loads with
`torch.load(weights_only=True)` and the LoRA is merged at load time; or `adapter_model.safetensors` plus
`non_lora_state_dict.pth`. Batches are right-padded; under the causal mask a video's scores do not depend on its
batch mates (tested equal to one at a time).
"""

import functools
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from vidscore.operators.frames import FrameSpec
from vidscore.operators.scorers.plan import ScorerPlan, whole
from vidscore.operators.scorers.qwen2vl_frames import FpsFrames, SmartResize
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
    weights_hash,
)
from vidscore.operators.scorers.videoreward_checkpoint import (
    CHECKPOINT_FILES,
    checkpoint_step,
    merged_state,
    read_model_config,
    weight_files,
)
from vidscore.schemas import videoreward as cols

DEFAULT_CHECKPOINT = "KwaiVGI/VideoReward"
DEFAULT_BASE = "Qwen/Qwen2-VL-2B-Instruct"
REWARD_TOKENS = ("<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>")
# Qwen2-VL-Instruct's chat template rendered for one user message holding a video then a text, with the default
# system turn and the generation prompt (tests render the real template to check these strings).
CHAT_HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
VISION_START, VIDEO_PAD, VISION_END = "<|vision_start|>", "<|video_pad|>", "<|vision_end|>"
CHAT_TAIL = "<|im_end|>\n<|im_start|>assistant\n"
TEMPLATE = Path(__file__).with_name("videoreward_prompt.txt")
TEMPLATE_SHA256 = "fdb6309bac618dd0c8b1b589d3a0970a974f7856eecbb355a190b2dce54af700"
# The release's data_config; a local model_config.json overrides them.
PUBLISHED_DATA = {"fps": 2.0, "max_frame_pixels": 448 * 448}
OPTIONS = ("base", "step", "batch_size", "device", "revision", "cache_dir")
WEIGHTS_GB = 4.5  # 2.2B parameters in bf16
FRAME_GB = 0.02  # vision activations per 448x448 frame, an estimate
BASE_FILES = ["*.json", "*.jinja", "merges.txt", "vocab.json"]


@functools.cache
def template() -> str:
    """The `detailed_special` prompt, byte-exact (trailing spaces included): an edited copy changes scores."""
    raw = TEMPLATE.read_bytes()
    if hashlib.sha256(raw).hexdigest() != TEMPLATE_SHA256:
        raise ValueError(f"{TEMPLATE} was modified; restore it byte-exact (sha256 {TEMPLATE_SHA256})")
    return raw.decode("utf-8")


def caption(text: Any) -> str:
    return "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)


def prompt_pieces(text: Any) -> list[str]:
    """The prompt as [text, VQ token, text, MQ token, text (with the caption), TA token, text]."""
    pieces = re.split("(" + "|".join(re.escape(t) for t in REWARD_TOKENS) + ")", template())
    return [p.format(text_prompt=caption(text)) if "{text_prompt}" in p else p for p in pieces]


def frame_spec(config: dict) -> FrameSpec:
    data = {**PUBLISHED_DATA, **{k: v for k, v in config.get("data_config", {}).items() if k in PUBLISHED_DATA}}
    return FrameSpec(FpsFrames(fps=float(data["fps"])), SmartResize(max_pixels=int(data["max_frame_pixels"])))


class VideoRewardScorer:
    """Scores videos with a VideoReward checkpoint (hub id or local directory in the released layout).

    Args:
        checkpoint: hub id or directory with model_config.json and checkpoint-N/; both load the same way.
        base: the Qwen2-VL config, tokenizer and processor files (hub id or directory); default: model_config's
            `model_name_or_path`, else Qwen/Qwen2-VL-2B-Instruct.
        step: which checkpoint-N (default: the highest, as the reference).
        device: `auto`, `cpu`, `cuda`, ... (bf16 on CUDA, fp32 on CPU).
        revision, cache_dir: hub revision to pin and hub cache.
        batch_size: videos per forward pass; bigger calls are split by length.
        fps, max_pixels: the frame recipe the plan gave the decode stage (checked against the checkpoint).
    """

    name = cols.PREFIX

    @classmethod
    def plan(cls, checkpoint: str | None = None, **options: Any) -> ScorerPlan:
        """The frame recipe follows a local model_config.json's data_config, else the release's (2 fps, 448x448)."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown videoreward options {sorted(unknown)}; valid: {', '.join(OPTIONS)}")
        checkpoint = checkpoint or DEFAULT_CHECKPOINT
        path = Path(checkpoint).expanduser()
        step = None if options.get("step") is None else whole(options, "step", 1)
        if is_local(checkpoint):
            if not path.is_dir():
                raise ValueError(f"checkpoint directory {path} does not exist; pass a hub id or a directory")
            config = read_model_config(path)
            files = weight_files(checkpoint_step(path, step))
            checkpoint, revision = str(path.resolve()), weights_hash(files)
        else:
            check_hub(checkpoint, "model_config.json", options.get("revision"), options.get("cache_dir"))
            config, revision = {}, pinned_commit(options.get("revision"))
        base = options.get("base") or config.get("model_config", {}).get("model_name_or_path") or DEFAULT_BASE
        base_path = Path(str(base)).expanduser()
        if is_local(str(base)):
            if not (base_path / "config.json").is_file() or not (base_path / "tokenizer.json").is_file():
                raise ValueError(f"base {base_path} needs config.json and tokenizer.json (a Qwen2-VL hub layout)")
            base = str(base_path.resolve())
        else:
            check_hub(str(base), "config.json", None, options.get("cache_dir"))
        spec = frame_spec(config)
        batch_size = whole(options, "batch_size", 4)
        kwargs = {
            "checkpoint": checkpoint,
            "base": str(base),
            "step": step,
            "device": str(options.get("device", "auto")),
            "revision": options.get("revision"),
            "cache_dir": options.get("cache_dir"),
            "batch_size": batch_size,
            "fps": spec.sampler.fps,
            "max_pixels": spec.resizer.max_pixels,
        }
        return ScorerPlan(
            name=cls.name,
            cls=cls,
            frame_spec=spec,
            fields=tuple(cols.FIELDS),
            init_kwargs=kwargs,
            batch_size=batch_size,
            gpu_memory_gb=round(WEIGHTS_GB + FRAME_GB * batch_size * 16, 1),
            checkpoint=checkpoint,
            revision=revision,
            reads_prompt=True,
            headline=cols.HEADLINE,
        )

    def __init__(
        self,
        checkpoint: str,
        base: str | None = None,
        step: int | None = None,
        device: str = "auto",
        revision: str | None = None,
        cache_dir: str | None = None,
        batch_size: int = 4,
        fps: float = 2.0,
        max_pixels: int = 448 * 448,
    ) -> None:
        import torch
        from tokenizers import AddedToken, Tokenizer
        from transformers import Qwen2VLConfig, Qwen2VLModel

        self.checkpoint, self.batch_size = checkpoint, batch_size
        directory = fetch(checkpoint, CHECKPOINT_FILES, revision, cache_dir)
        config = read_model_config(directory)
        base = base or config.get("model_config", {}).get("model_name_or_path") or DEFAULT_BASE
        base_dir = fetch(base, BASE_FILES, None, cache_dir)
        self.spec = frame_spec(config)
        if (self.spec.sampler.fps, self.spec.resizer.max_pixels) != (fps, max_pixels):
            raise ValueError(f"{checkpoint} samples {self.spec.key}, the plan {fps} fps / {max_pixels} pixels")
        files = weight_files(checkpoint_step(directory, step))
        self.revision = weights_hash(files) if is_local(checkpoint) else directory.name
        peft = config.get("peft_lora_config", {})
        lora = (int(peft.get("lora_r", 16)), float(peft.get("lora_alpha", 32)))
        if peft.get("use_rslora"):
            raise ValueError(f"{checkpoint}: rsLoRA checkpoints are not supported")
        state = merged_state(files, *lora)
        needed = [k for k in ("rm_head.weight", "model.embed_tokens.weight") if k not in state]
        if needed:
            raise ValueError(f"{checkpoint} is not a VideoReward checkpoint: {len(needed)} missing keys {needed}")

        self.tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
        self.tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in REWARD_TOKENS])
        self.reward_ids = [self.tokenizer.token_to_id(t) for t in REWARD_TOKENS]
        self.device, dtype = pick_device(device)
        qconfig = Qwen2VLConfig.from_pretrained(base_dir, attn_implementation=attention_implementation(self.device))
        embed = state["model.embed_tokens.weight"]
        qconfig.text_config.vocab_size = embed.shape[0]  # the reference resized the embedding to the tokenizer
        qconfig.use_cache = qconfig.text_config.use_cache = False
        for token, attr in ((VIDEO_PAD, "video_token_id"), (VISION_START, "vision_start_token_id")):
            if self.tokenizer.token_to_id(token) != getattr(qconfig, attr):
                raise ValueError(f"{base}: tokenizer and config.json disagree on {token}")
        if max(self.reward_ids) >= embed.shape[0]:
            raise ValueError(f"{checkpoint}: the embedding has {embed.shape[0]} rows, the reward tokens need more")
        with empty_model(self.device, dtype):
            # config.json's torch_dtype would win over the default dtype: set it explicitly.
            self.model = Qwen2VLModel(qconfig).to(dtype).eval()
            head = state["rm_head.weight"]
            self.head = torch.nn.Linear(head.shape[1], head.shape[0], bias=False).to(dtype).eval()
        self._load(state)
        self.video_token_id = qconfig.video_token_id
        self.pad_id = self.tokenizer.token_to_id("<|endoftext|>") or 0
        pre_file = base_dir / "preprocessor_config.json"
        pre = json.loads(pre_file.read_text()) if pre_file.is_file() else {}
        self.patch = int(pre.get("patch_size", 14))
        self.temporal = int(pre.get("temporal_patch_size", 2))
        self.merge = int(pre.get("merge_size", 2))
        self.mean = torch.tensor(pre.get("image_mean", [0.48145466, 0.4578275, 0.40821073]), device=self.device)
        self.std = torch.tensor(pre.get("image_std", [0.26862954, 0.26130258, 0.27577711]), device=self.device)
        # The processor rescales in float64 and casts to float32 before normalising: a 256-entry table does it.
        scale = float(pre.get("rescale_factor", 1 / 255))
        self.scaled = torch.from_numpy((np.arange(256, dtype=np.float64) * scale).astype(np.float32)).to(self.device)
        stats = config.get("inference_config")
        self.stats = None if not stats else [(stats[f"{a}_mean"], stats[f"{a}_std"]) for a in ("VQ", "MQ", "TA")]

    def _load(self, state: dict) -> None:
        """4.45 names -> this model: `visual.*` stays, `model.*` is the language model; lm_head is unused (the
        rewards read hidden states). Any missing, extra or misshapen tensor raises."""
        import torch

        targets = {}
        for key, value in self.model.state_dict(keep_vars=True).items():
            old = key if key.startswith("visual.") else "model." + key.removeprefix("language_model.")
            targets[old] = value
        targets["rm_head.weight"] = self.head.weight
        found = {k for k in state if k != "lm_head.weight"}
        missing, extra = sorted(set(targets) - found), sorted(found - set(targets))
        if missing or extra:
            raise ValueError(
                f"{self.checkpoint} is not a VideoReward checkpoint: {len(missing)} missing keys {missing[:4]}, "
                f"{len(extra)} unexpected keys {extra[:4]}"
            )
        with torch.no_grad():
            for key, target in targets.items():
                if state[key].shape != target.shape:
                    raise ValueError(f"{key}: checkpoint shape {tuple(state[key].shape)}, model {tuple(target.shape)}")
                target.copy_(state[key])

    def token_ids(self, text: Any, video_tokens: int) -> list[int]:
        """One video's token ids: the chat head, the video's pad tokens, the prompt with its reward tokens, the tail.
        Prompt text is encoded with special-token strings as plain text, so a caption holding `<|TA_reward|>` or
        `<|im_end|>` stays text; for every other caption this equals encoding the whole rendered string."""
        enc = self.tokenizer.encode
        ids = enc(CHAT_HEAD + VISION_START, add_special_tokens=False).ids
        ids += [self.video_token_id] * video_tokens + enc(VISION_END, add_special_tokens=False).ids
        self.tokenizer.encode_special_tokens = True
        try:
            for piece in prompt_pieces(text):
                if piece in REWARD_TOKENS:
                    ids.append(self.reward_ids[REWARD_TOKENS.index(piece)])
                elif piece:
                    ids += enc(piece, add_special_tokens=False).ids
        finally:
            self.tokenizer.encode_special_tokens = False
        return ids + enc(CHAT_TAIL, add_special_tokens=False).ids

    def pixels(self, frames: np.ndarray) -> tuple["torch.Tensor", tuple[int, int, int]]:  # noqa: F821
        """uint8 (T, H, W, 3) frames -> Qwen2-VL's flattened patches (t*h*w, 3*2*14*14) and the grid (t, h, w)."""
        import torch

        t, h, w = len(frames) // self.temporal, frames.shape[1] // self.patch, frames.shape[2] // self.patch
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).long()
        x = (self.scaled[x] - self.mean.view(1, 3, 1, 1)) / self.std.view(1, 3, 1, 1)
        p, m, tp = self.patch, self.merge, self.temporal
        x = x.reshape(t, tp, 3, h // m, m, p, w // m, m, p).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return x.reshape(t * h * w, 3 * tp * p * p), (t, h, w)

    def score(self, prompts: list[Any], videos: list[np.ndarray]) -> np.ndarray:
        """(len(videos), 3) raw rewards (VQ, MQ, TA) for one forward pass."""
        patches, grids, ids = [], [], []
        for text, frames in zip(prompts, videos):
            flat, grid = self.pixels(frames)
            patches.append(flat)
            grids.append(grid)
            ids.append(self.token_ids(text, grid[0] * grid[1] * grid[2] // self.merge**2))
        return self.forward(patches, grids, ids)

    def forward(self, patches: list, grids: list[tuple[int, int, int]], ids: list[list[int]]) -> np.ndarray:
        """Raw rewards from prepared inputs: per video its flattened patches, (t, h, w) grid and token ids."""
        import torch

        input_ids = torch.full((len(ids), max(map(len, ids))), self.pad_id, dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
        input_ids = input_ids.to(self.device)
        with torch.inference_mode():
            visual = self.model.visual
            grid = torch.tensor(grids, device=self.device)
            features = visual(torch.cat(patches).to(visual.dtype), grid_thw=grid).pooler_output
            lm = self.model.language_model
            embeds = lm.get_input_embeddings()(input_ids)
            mask = (input_ids == self.video_token_id).unsqueeze(-1)
            embeds = embeds.masked_scatter(mask, features.to(embeds.dtype))
            # Right padding under a causal mask: no real token sees the pads after it; positions are 0..L-1.
            hidden = lm(inputs_embeds=embeds, attention_mask=None, use_cache=False).last_hidden_state
            rewards = torch.isin(input_ids, torch.tensor(self.reward_ids, device=self.device))
            logits = self.head(hidden[rewards].view(len(ids), 3, -1)).float()
            raw = logits[..., 0] if logits.shape[-1] == 1 else logits.diagonal(dim1=1, dim2=2)
            return raw.cpu().numpy()

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """The reference's reported rewards: (raw - mean) / std per aspect, or raw without statistics."""
        if self.stats is None:
            return raw
        return np.stack([(raw[:, i] - m) / s for i, (m, s) in enumerate(self.stats)], axis=1)

    def __call__(self, batch: dict[str, np.ndarray], drop_frames: bool = False) -> dict[str, np.ndarray]:
        rows, column = len(batch["video_id"]), self.spec.column
        names = [f"{cols.PREFIX}_{a}" for a in cols.SCORES]
        raw_names = [f"{n}_raw" for n in names]
        out = float_columns(names + raw_names, rows)
        items, videos = [], []
        for i in scorable(batch, column, cols.PREFIX):
            frames = np.asarray(batch[column][i])
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
                record_failure(
                    batch, i, cols.PREFIX, f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
                )
                continue
            if (
                len(frames) % self.temporal
                or frames.shape[1] % (self.patch * self.merge)
                or frames.shape[2] % (self.patch * self.merge)
            ):
                record_failure(batch, i, cols.PREFIX, f"frames {frames.shape} do not fit Qwen2-VL's patches")
                continue
            items.append(i)
            videos.append(frames)
        prompts = [batch["prompt"][i] for i in items] if "prompt" in batch else [None] * len(items)
        lengths = [v.shape[0] * v.shape[1] * v.shape[2] for v in videos]
        results, failures = run_isolated(
            lambda group: self.score([prompts[j] for j in group], [videos[j] for j in group]),
            length_buckets(lengths, self.batch_size, canary(batch, items)),
        )
        for j, raw in results.items():
            values = self.calibrated(np.asarray(raw)[None])[0]
            for name, value in zip(names, [*values, values.sum()]):
                out[name][items[j]] = value
            for name, value in zip(raw_names, [*raw, np.sum(raw)]):
                out[name][items[j]] = value
        for j, message in failures.items():
            record_failure(batch, items[j], cols.PREFIX, message)
        batch.update(out)
        stamp(batch, cols.PREFIX, self.checkpoint, self.revision, self.spec.key, *device_dtype(self.model))
        return finish(batch, self.spec.column, drop_frames)
