"""A sample corpus of real encoded clips from three pretend generators, for the demo, tests and benchmarks.

The generators differ in ways the scorers can see: `crisp-motion` renders sharp texture moving fast,
`soft-drift` the same scene blurred and slow, `frozen` one still frame repeated (a static clip).
"""

import json
from pathlib import Path

import numpy as np

GENERATORS = ("crisp-motion", "soft-drift", "frozen")
PROMPTS = (
    "a red fox running through fresh snow at dawn",
    'a chef flipping pancakes, steam rising; text on the sign reads "OPEN {24/7}"',
    "drone shot over a coastline with waves breaking on rocks",
    "a paper boat drifting down a rain-filled gutter",
)


def encode_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 12,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames into a real video file with PyAV (bundled FFmpeg)."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def render(kind: str, seed: int, num_frames: int = 24, height: int = 192, width: int = 256) -> np.ndarray:
    """Deterministic synthetic frames for one pretend generator."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, size=(height, 2 * width, 3), dtype=np.uint8)
    texture[:, :, int(rng.integers(0, 3))] //= 3  # a colour cast per clip
    speed = {"crisp-motion": 6, "soft-drift": 1, "frozen": 0}[kind]
    frames = np.stack([np.roll(texture, -speed * t, axis=1)[:, :width] for t in range(num_frames)])
    if kind == "soft-drift":
        # Box blur: repeated neighbour averaging smears the texture like an out-of-focus generator.
        blurred = frames.astype(np.float32)
        for _ in range(4):
            blurred = (blurred + np.roll(blurred, 1, axis=1) + np.roll(blurred, 1, axis=2)) / 3
        frames = blurred.astype(np.uint8)
    return frames


def make_corpus(out_dir: str | Path, per_generator: int = 4, num_frames: int = 24, include_bad: bool = True) -> Path:
    """Write clips and a `manifest.jsonl` (uri, prompt, generator, seed); returns the manifest path.

    With `include_bad`, one truncated file is added so the run shows how a corrupt video is reported.
    """
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for g, kind in enumerate(GENERATORS):
        for i in range(per_generator):
            seed = 1000 * g + i
            name = f"videos/{kind}-{i:03d}.mp4"
            encode_video(out / name, render(kind, seed, num_frames))
            rows.append({"uri": name, "prompt": PROMPTS[i % len(PROMPTS)], "generator": kind, "seed": seed})
    if include_bad:
        good = (out / rows[0]["uri"]).read_bytes()
        (out / "videos/corrupt-000.mp4").write_bytes(good[: len(good) // 3])
        rows.append({"uri": "videos/corrupt-000.mp4", "prompt": PROMPTS[0], "generator": GENERATORS[0], "seed": -1})
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
