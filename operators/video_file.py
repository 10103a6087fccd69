"""Decode one local video file: probe it, and sample every requested frame spec in one pass.

The union of every spec's indices is decoded once (PyAV's sparse decode, a sequential PyAV pass when the
timestamps cannot be trusted, or decord), then each spec picks and resizes its frames. `decode_file` is a plain
function of a local path, so the decode operator (operators/decode.py) can run it in a killable child process.
"""

from typing import TYPE_CHECKING

import numpy as np

from vidscore.operators.frames import FrameSpec, VideoInfo, resize_frame, sample_indices, target_size
from vidscore.operators.sandbox import arena

if TYPE_CHECKING:
    from av.container import InputContainer


class DecodeError(Exception):
    """The bytes are there but hold no decodable video; `final`: a readable video this run will not score (too
    large, too short), which another backend would not change."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


def _metadata(container: "InputContainer") -> dict:
    """Container metadata without decoding: codec, frame count, fps, duration, size."""
    if not container.streams.video:
        raise DecodeError("no video stream (audio-only or not a video)")
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise DecodeError(f"a still image ({container.format.name.removesuffix('_pipe')}), not a video")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    return {
        "codec": stream.codec_context.name,
        "num_frames": stream.frames,
        "fps": float(rate) if rate else None,
        "duration_s": duration,
        "width": stream.codec_context.width,
        "height": stream.codec_context.height,
    }


Slots = dict[int, list[tuple[FrameSpec, np.ndarray, int]]]


def _outputs(specs: list[FrameSpec], video: VideoInfo, height: int, width: int) -> tuple[dict[str, np.ndarray], Slots]:
    """One (T, H, W, 3) array per spec, carved from one arena buffer, and for each wanted frame index the
    (spec, array, position) slots it fills. Frames go straight into their slots: no stack, no second copy."""
    plans = [(spec, sample_indices(spec, video), target_size(spec, height, width)) for spec in specs]
    buffer = arena(sum(len(indices) * h * w * 3 for _, indices, (h, w) in plans))
    out, slots, start = {}, {}, 0
    for spec, indices, (h, w) in plans:
        array = buffer[start : start + len(indices) * h * w * 3].reshape(len(indices), h, w, 3)
        start += array.size
        out[spec.column] = array
        for position, index in enumerate(indices):
            slots.setdefault(int(index), []).append((spec, array, position))
    return out, slots


def _upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as a viewer sees it: rotated counter-clockwise by the display matrix's angle."""
    return np.ascontiguousarray(np.rot90(frame, rotation // 90)) if rotation else frame


def _display_size(height: int, width: int, rotation: int) -> tuple[int, int]:
    return (width, height) if rotation % 180 else (height, width)


def _place(frame: np.ndarray, slots: list[tuple[FrameSpec, np.ndarray, int]]) -> None:
    resized: dict[FrameSpec, np.ndarray] = {}
    for spec, array, position in slots:
        if spec not in resized:
            resized[spec] = resize_frame(spec, frame)
        if resized[spec].shape != array.shape[1:]:
            raise DecodeError(f"frame size changed mid-stream (to {frame.shape[1]}x{frame.shape[0]})")
        array[position] = resized[spec]


def _check_length(total: int, min_frames: int) -> None:
    if total < min_frames:
        raise DecodeError(f"video has {total} frame(s); scoring needs at least {min_frames}", final=True)


def _decord_frames(
    path: str, specs: list[FrameSpec], threads: int, min_frames: int, rotation: int, fps: float | None
) -> tuple[int, dict[str, np.ndarray]]:
    import decord

    if rotation:  # decord 0.6.0 returns garbled frames for these
        raise DecodeError(f"the video is displayed rotated by {rotation} degrees, which decord mishandles; use pyav")

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
    total = len(reader)
    if not total:
        raise DecodeError("video has no frames")
    _check_length(total, min_frames)
    video = VideoInfo(total, reader.get_avg_fps() or fps)
    wanted = sorted({int(i) for s in specs for i in sample_indices(s, video)})
    frames = reader.get_batch(wanted).asnumpy()
    out, slots = _outputs(specs, video, *frames.shape[1:3])
    for index, frame in zip(wanted, frames):
        _place(frame, slots[index])
    return total, out


class _Unreliable(Exception):
    """The container's timestamps do not identify frames; the sparse decode's assumption fails."""


def _pyav_frames(
    container: "InputContainer", specs: list[FrameSpec], threads: int, min_frames: int, rotation: int, fps: float | None
) -> tuple[int, dict[str, np.ndarray]]:
    """Sparse exact decode: frames nobody wants that no other frame references are never decoded.

    A demux pass (no decoding) lists the packets' timestamps, which give the frame count and display
    order. Then wanted frames decode normally, non-reference frames that are not wanted are skipped
    by the decoder (skipping them cannot change any other frame), and once the last wanted frame's
    packet is in, the decoder is flushed instead of fed more packets. Only wanted frames are
    colour-converted, by one reused converter: a fresh swscale context per frame (what
    `frame.to_ndarray(format=...)` makes) nearly doubles the conversion's cost.

    This keys frames by timestamp, so it first checks that timestamps identify frames (present, distinct),
    and that every decoded frame carries one of them; otherwise it raises `_Unreliable` and the caller
    decodes sequentially (`_sequential_frames`).
    """
    from av.video.reformatter import VideoReformatter

    stream = container.streams.video[0]
    stamps = [p.pts for p in container.demux(stream) if p.size]
    if not stamps:
        raise DecodeError("video has no frames")
    if any(t is None for t in stamps) or len(set(stamps)) != len(stamps):
        raise _Unreliable("packets without distinct timestamps")
    _check_length(len(stamps), min_frames)
    order = sorted(stamps)
    context = stream.codec_context
    out, slots = _outputs(specs, VideoInfo(len(order), fps), *_display_size(context.height, context.width, rotation))
    wanted: Slots = {}
    for index, targets in slots.items():
        wanted.setdefault(order[index], []).extend(targets)
    count, rgb, unsent, known = len(wanted), VideoReformatter(), set(wanted), set(stamps)
    container.seek(order[0], stream=stream)
    for packet in container.demux(stream):
        unsent.discard(packet.pts)
        context.skip_frame = "DEFAULT" if packet.pts in wanted or not packet.size else "NONREF"
        frames = context.decode(packet)
        if not unsent:  # every wanted frame is in the decoder: flush it out instead of decoding more packets
            frames += context.decode(None)
        for frame in frames:
            if frame.pts not in known:  # a frame the packets' timestamps do not name
                raise _Unreliable(f"decoded frame with timestamp {frame.pts} that no packet carries")
            targets = wanted.pop(frame.pts, None)
            if targets:
                _place(_upright(rgb.reformat(frame, format="rgb24", threads=threads).to_ndarray(), rotation), targets)
        if not wanted or not unsent:
            break
    if wanted:
        raise DecodeError(f"{len(wanted)} of {count} sampled frames could not be decoded")
    return len(order), out


def _sequential_frames(
    path: str, specs: list[FrameSpec], threads: int, min_frames: int, rotation: int, fps: float | None
) -> tuple[int, dict[str, np.ndarray]]:
    """Exact decode in decoder output order, trusting no timestamp: one pass counts the frames, a second
    keeps the sampled ones (the reference recipe's frames whatever the container says)."""
    import av
    from av.video.reformatter import VideoReformatter

    with av.open(path) as container:
        container.streams.video[0].thread_count = threads
        total = sum(1 for _ in container.decode(video=0))
    if not total:
        raise DecodeError("video has no frames")
    _check_length(total, min_frames)
    rgb, out, slots = VideoReformatter(), None, {}
    with av.open(path) as container:
        container.streams.video[0].thread_count = threads
        for index, frame in enumerate(container.decode(video=0)):
            if out is None:
                out, slots = _outputs(specs, VideoInfo(total, fps), *_display_size(frame.height, frame.width, rotation))
            if index in slots:
                _place(
                    _upright(rgb.reformat(frame, format="rgb24", threads=threads).to_ndarray(), rotation), slots[index]
                )
            if index >= max(slots):
                break
    return total, out


def _rotation(container: "InputContainer") -> int:
    """Degrees (counter-clockwise, a multiple of 90) the display matrix rotates the video by; from the first
    frame, as only decoded frames carry it. Other angles are left as they are (0)."""
    try:
        frame = next(container.decode(video=0))
    except (StopIteration, Exception):  # noqa: BLE001 - an undecodable start is reported by the decode itself
        return 0
    finally:
        container.seek(0)
    angle = int(round(frame.rotation or 0)) % 360
    return angle if angle % 90 == 0 else 0


def decode_file(
    path: str, specs: list[FrameSpec], backend: str, threads: int, max_pixels: int, min_frames: int
) -> tuple:
    """Metadata and one (T, H, W, 3) uint8 array per spec column, for one local file.

    One container open serves the metadata, the refusals (before any decoding) and the PyAV decode.
    """
    import av
    from PIL import Image

    # Pillow frees image memory at once by default, so every resize paid fresh page faults (~20% of its
    # time at 720p); a few cached blocks (16 MB at most each) avoid that.
    Image.core.set_blocks_max(max(8, Image.core.get_blocks_max()))
    try:
        container = av.open(path)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"not a readable video: {exc}") from exc
    with container:
        try:
            meta = _metadata(container)
        except av.error.FFmpegError as exc:
            raise DecodeError(f"not a readable video: {exc}") from exc
        if meta["width"] * meta["height"] > max_pixels:
            raise DecodeError(
                f"frame size {meta['width']}x{meta['height']} exceeds max_pixels={max_pixels}; "
                "raise decode max_pixels if such videos are intended"
            )
        container.streams.video[0].thread_count = threads  # before the first decode opens the codec
        meta["rotation"] = rotation = _rotation(container)
        if backend != "decord":
            try:
                try:
                    meta["num_frames"], out = _pyav_frames(container, specs, threads, min_frames, rotation, meta["fps"])
                    return {**meta, "decoder": backend_name("pyav")}, out
                except _Unreliable:
                    meta["num_frames"], out = _sequential_frames(
                        path, specs, threads, min_frames, rotation, meta["fps"]
                    )
                    return {**meta, "decoder": backend_name("pyav-sequential")}, out
            except Exception as exc:
                if backend == "pyav" or getattr(exc, "final", False):
                    raise
                first = exc
    try:
        meta["num_frames"], out = _decord_frames(path, specs, threads, min_frames, rotation, meta["fps"])
    except Exception:
        if backend == "decord":
            raise
        # PyAV's message says what is wrong; decord's (`av_read_frame failed with 1094995529`) rarely does.
        raise DecodeError(f"{first}; decord could not read it either") from first
    return {**meta, "decoder": backend_name("decord")}, out


def backend_name(backend: str) -> str:
    """The `decoder` value: the backend with its version (and PyAV's FFmpeg), as a canary compares them."""
    if backend == "decord":
        import decord

        return f"decord {decord.__version__}"
    import av

    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    return f"{backend} {av.__version__}" + (f" (FFmpeg {ffmpeg})" if ffmpeg else "")
