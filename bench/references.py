"""The reference implementations' way of working, as benchmark baselines: one video after another, every frame
decoded, the reference's own CPU preprocessing, a batch-1 forward. Each loop takes a loaded vidscore scorer
(same weights, loaded by the scorer's strict code) and may change its attention kernels, so the scorer is not
reused after; the forward itself is the reference's. Each returns (seconds, scores by uri, seconds per step);
loading is not timed here. `until` (a perf_counter time) stops a loop early, after at least 4 videos, so a
benchmark keeps to its time budget.

Scores come back in the order of the scorer's float columns, so they compare with the pipeline's table directly.
"""

import time
from pathlib import Path

import numpy as np
import torch

from vidscore.operators.frames import FrameSpec, VideoInfo, sample_indices


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def decode_all(uri: str) -> tuple[list[np.ndarray], float]:
    """Every frame as RGB (PyAV, as the references' readers decode through the whole clip), and the frame rate."""
    import av

    with av.open(uri) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, float(stream.average_rate or 0)


class TwoFramesAtATime(torch.nn.Module):
    """Wraps the SigLIP tower so it sees at most two frames per call, as VideoScore's reference model does."""

    def __init__(self, tower: torch.nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, pixel_values: torch.Tensor, patch_attention_mask: torch.Tensor, **kwargs: object) -> object:
        from transformers.modeling_outputs import BaseModelOutput

        parts = [
            self.tower(
                pixel_values=pixel_values[i : i + 2], patch_attention_mask=patch_attention_mask[i : i + 2], **kwargs
            ).last_hidden_state
            for i in range(0, len(pixel_values), 2)
        ]
        return BaseModelOutput(last_hidden_state=torch.cat(parts))


def in_time(clips: list[dict], until: float | None, least: int = 4):
    """The clips, stopping early once `until` (a perf_counter time) has passed and `least` are done."""
    for i, clip in enumerate(clips):
        if until is not None and i >= least and time.perf_counter() > until:
            return
        yield clip


class Steps:
    """Seconds per step, summed over videos."""

    def __init__(self, device: str, *names: str) -> None:
        self.device, self.seconds, self.last = device, dict.fromkeys(names, 0.0), time.perf_counter()

    def mark(self, name: str) -> None:
        if name == "forward":
            sync(self.device)
        now = time.perf_counter()
        self.seconds[name] += now - self.last
        self.last = now


def loop(clips: list[dict], device: str, until: float | None, one) -> tuple[float, dict, dict]:
    """(seconds, scores by uri, seconds per step) of `one(clip, steps) -> scores` over the clips, in order."""
    scores = {}
    sync(device)
    start = time.perf_counter()
    steps = Steps(device, "decode", "preprocess", "forward")
    for clip in in_time(clips, until):
        scores[clip["uri"]] = one(clip, steps)
        steps.mark("forward")
    return time.perf_counter() - start, scores, steps.seconds


def videoscore(scorer, clips: list[dict], device: str, until: float | None = None) -> tuple[float, dict, dict]:
    """VideoScore (Idefics2): the `arange` rule, transformers' Idefics2 processor (PIL) with the byte-exact prompt,
    eager attention with the vision tower run 2 frames at a time, the regression head at the last token."""
    from PIL import Image
    from transformers import AutoProcessor

    from vidscore.operators.scorers.videoscore import build_prompt

    scorer.model.set_attn_implementation("eager")
    scorer.model.vision_model = TwoFramesAtATime(scorer.model.vision_model)
    processor = AutoProcessor.from_pretrained(str(Path(scorer.checkpoint)))
    rule = FrameSpec.uniform(scorer.spec.sampler.num_frames, "arange")

    def one(clip: dict, steps: Steps) -> np.ndarray:
        decoded, _ = decode_all(clip["uri"])
        images = [Image.fromarray(decoded[i]) for i in sample_indices(rule, len(decoded))]
        steps.mark("decode")
        inputs = processor(text=build_prompt(clip["prompt"], len(images)), images=images, return_tensors="pt")
        inputs = {k: v.to(device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(scorer.model.dtype)
        steps.mark("preprocess")
        with torch.no_grad():
            hidden = scorer.model(**inputs, use_cache=False).last_hidden_state
            return scorer.head(hidden[:, -1]).float().cpu().numpy()[0]

    return loop(clips, device, until, one)


def mjvideo(scorer, clips: list[dict], device: str, until: float | None = None) -> tuple[float, dict, dict]:
    """MJ-VIDEO (InternVL2): PIL bicubic squash to the tile size and normalise, eager attention, and the full-
    vocabulary fp32 logits the reference computes and does not use; overall, aspects, criteria."""
    from PIL import Image

    from vidscore.operators.scorers.mjvideo import IMAGENET_MEAN, IMAGENET_STD

    scorer.model.language_model.set_attn_implementation("eager")
    scorer.model.vision_model.set_attn_implementation("eager")
    llm = scorer.config["llm_config"]
    lm_head = torch.randn(llm["vocab_size"], llm["hidden_size"], device=device, dtype=scorer.dtype) * 0.02
    side = scorer.spec.resizer.size_args[0]
    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)

    def one(clip: dict, steps: Steps) -> np.ndarray:
        frames, _ = decode_all(clip["uri"])
        frames = [frames[i] for i in sample_indices(scorer.spec, len(frames))]
        steps.mark("decode")
        tiles = [Image.fromarray(f).resize((side, side), Image.BICUBIC) for f in frames]
        pixels = ((np.stack(tiles).astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
        ids, last, gate = scorer.encode(clip["prompt"], len(tiles))
        steps.mark("preprocess")
        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(device, scorer.dtype)
            hidden = scorer.model(x, torch.tensor([ids], device=device), None, scorer.image_token)
            _ = hidden.float() @ lm_head.float().T
            rewards, aspects, overall = scorer.head(hidden[:, last], hidden[:, gate])
            out = torch.cat([overall[:, None].float(), aspects.float(), rewards.float()], dim=-1)
        return out.cpu().numpy()[0]

    return loop(clips, device, until, one)


def qwen2vl_patches(frames: np.ndarray, scorer) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The Qwen2-VL image processor's CPU steps on resized frames (T, H, W, 3), in NumPy as its slow processor
    does them: rescale and normalise in float32, then flatten into (t*h*w, 3*2*14*14) patches."""
    x = frames.astype(np.float64) * (1 / 255)
    x = (x.astype(np.float32) - scorer.mean.cpu().numpy()) / scorer.std.cpu().numpy()
    x = x.transpose(0, 3, 1, 2)
    p, m, tp = scorer.patch, scorer.merge, scorer.temporal
    t, h, w = len(x) // tp, x.shape[2] // p, x.shape[3] // p
    x = x.reshape(t, tp, 3, h // m, m, p, w // m, m, p).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(t * h * w, 3 * tp * p * p)), (t, h, w)


def videoreward(scorer, clips: list[dict], device: str, until: float | None = None) -> tuple[float, dict, dict]:
    """VideoReward (VideoAlign): 2 fps `linspace` frames, the whole clip resized at once (bicubic, antialias,
    rounded to uint8 as torchvision does), the processor's CPU steps, the chat prompt with its reward tokens, a
    batch-1 forward in the scorer's attention (the reference asks for flash-attention 2 too) and the reward head
    at the three reward tokens; calibrated, overall, then raw, as the table's columns."""
    import torch.nn.functional as F  # noqa: N812

    def one(clip: dict, steps: Steps) -> np.ndarray:
        frames, fps = decode_all(clip["uri"])
        video = np.stack([frames[i] for i in sample_indices(scorer.spec, VideoInfo(len(frames), fps))])
        steps.mark("decode")
        size = scorer.spec.resizer.size(*video.shape[1:3])
        x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 255).round()
        flat, grid = qwen2vl_patches(x.permute(0, 2, 3, 1).numpy(), scorer)
        ids = scorer.token_ids(clip["prompt"], grid[0] * grid[1] * grid[2] // scorer.merge**2)
        steps.mark("preprocess")
        raw = scorer.forward([torch.from_numpy(flat).to(device)], [grid], [ids])[0]
        calibrated = scorer.calibrated(raw[None])[0]
        return np.array([*calibrated, calibrated.sum(), *raw, raw.sum()], dtype=np.float64)

    return loop(clips, device, until, one)


LOOPS = {"videoscore": videoscore, "mjvideo": mjvideo, "videoreward": videoreward}
