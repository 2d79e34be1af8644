"""Decode a clip into N uniformly sampled frames at the model's resolution, with their times.

decord is tried first with one thread (its threaded VP9 path mis-reads SSv2 webm,
dmlc/decord#246); PyAV is the fallback for what decord cannot open (GIF, broken
metadata), and samples frames as it decodes them, so a long or 1080p file never sits in
memory whole. A clip that neither can read becomes a ``DecodeError``, never another exception.

Every decoded clip carries its timing (``DecodedClip``): the source's frame rate and which
frames of the clip window were sampled. Models that write frame times into the prompt or
their position ids (Qwen2.5-VL, Qwen3-VL, SmolVLM2) receive it as ``video_metadata``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


# what ``data.frame_cache`` keys on besides the decoders' versions: change it when the sampling or the resize changes
SAMPLING_RULE = "segment centres; PIL bilinear resize to a square; decord, then PyAV"


class DecodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class DecodedClip:
    frames: np.ndarray  # (num_frames, size, size, 3) uint8
    fps: float  # frame rate of the source; 0.0 when unknown (a folder of frame images without data.frame_folder_fps)
    frame_indices: np.ndarray  # (num_frames,) int64: which frames of the clip window, counted from its first frame
    clip_frames: int  # frames in the clip window


def sample_indices(num_available: int, num_frames: int, first: int = 0) -> np.ndarray:
    """``num_frames`` indices spread uniformly (segment centres) over ``[first, first + num_available)``."""
    if num_available <= 0:
        raise DecodeError("clip has no frames")
    centres = (np.arange(num_frames) + 0.5) * num_available / num_frames
    return first + np.minimum(centres.astype(np.int64), num_available - 1)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    return np.stack([_resize(f, size) for f in frames])


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[0] == size and frame.shape[1] == size:
        return frame
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _clip_range(num_total: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise DecodeError(f"negative clip window start={start} end={end}")
    first = 0 if start is None or fps <= 0 else int(round(start * fps))
    last = num_total if end is None or fps <= 0 else min(num_total, int(round(end * fps)))
    if first >= num_total:
        raise DecodeError(f"start {start}s is beyond the video ({num_total} frames at {fps:.2f} fps)")
    if last <= first:
        raise DecodeError(f"empty clip window start={start} end={end}")
    return first, last


def _sampled(frames: np.ndarray, fps: float, indices: np.ndarray, first: int, last: int, size: int) -> DecodedClip:
    return DecodedClip(resize_frames(frames, size), fps, (indices - first).astype(np.int64), last - first)


def decode_with_decord(path: str, num_frames: int, size: int, start: float | None, end: float | None) -> DecodedClip:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    fps = float(reader.get_avg_fps())
    first, last = _clip_range(len(reader), fps, start, end)
    indices = sample_indices(last - first, num_frames, first)
    return _sampled(reader.get_batch(indices.tolist()).asnumpy(), fps, indices, first, last, size)


def _count_frames(path: str) -> int:
    """Frames in the first video stream, counted from its packets (no decoding): containers such as
    Matroska and GIF do not state it."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _decode_kept(path: str, wanted: np.ndarray, size: int) -> tuple[dict[int, np.ndarray], int]:
    """One pass over the stream keeping only the ``wanted`` frames, resized as they arrive; returns them and
    how many frames the stream really had."""
    import av

    keep = set(int(i) for i in wanted)
    kept: dict[int, np.ndarray] = {}
    n = 0
    with av.open(path) as container:
        for n, frame in enumerate(container.decode(video=0), 1):
            if n - 1 in keep:
                kept[n - 1] = _resize(frame.to_ndarray(format="rgb24"), size)
                if len(kept) == len(keep):
                    break
    return kept, n


def decode_with_pyav(path: str, num_frames: int, size: int, start: float | None, end: float | None) -> DecodedClip:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        total = int(stream.frames or 0)
    total = total or _count_frames(path)
    for _ in range(2):  # a stated frame count can be wrong: decode again with the count found
        first, last = _clip_range(total, fps, start, end)
        indices = sample_indices(last - first, num_frames, first)
        kept, decoded = _decode_kept(path, indices, size)
        if all(int(i) in kept for i in indices):
            return _sampled(np.stack([kept[int(i)] for i in indices]), fps, indices, first, last, size)
        if decoded == 0:
            raise DecodeError("no video frames decoded")
        total = decoded
    raise DecodeError(f"frames {sorted(set(map(int, indices)) - set(kept))} could not be decoded")


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def decode_frame_folder(path: str, num_frames: int, size: int, fps: float = 0.0) -> DecodedClip:
    """A clip stored as a folder of frame images (FineDiving's per-dive folders), in file-name order; its frame
    rate is not stored anywhere, so ``fps`` (``data.frame_folder_fps``) is taken as given."""
    import os

    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise DecodeError(f"frame folder {path} holds no images")
    frames = []
    indices = sample_indices(len(names), num_frames)
    for i in indices:
        try:
            with Image.open(os.path.join(path, names[i])) as im:
                frames.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
        except OSError as e:
            raise DecodeError(f"frame {names[i]} in {path}: {e}") from e
    return DecodedClip(np.stack(frames), fps, indices.astype(np.int64), len(names))


def decode_clip(path: str, num_frames: int, size: int, start: float | None = None, end: float | None = None,
                folder_fps: float = 0.0) -> DecodedClip:
    """``num_frames`` frames of ``size`` x ``size`` with their timing, or DecodeError with both decoders' reasons.
    A folder is read as a clip of frame images at ``folder_fps``."""
    import os

    if "://" in path:
        return _decode_uri(path, num_frames, size, start, end)
    if os.path.isdir(path):
        return decode_frame_folder(path, num_frames, size, folder_fps)
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise DecodeError(f"negative clip window start={start} end={end}")
    reasons = []
    for name, decode in (("decord", decode_with_decord), ("pyav", decode_with_pyav)):
        try:
            return decode(path, num_frames, size, start, end)
        except Exception as e:  # both libraries raise a zoo of types on bad files
            reasons.append(f"{name}: {type(e).__name__}: {str(e).strip()[:200]}")
    raise DecodeError("; ".join(reasons))


def _decode_uri(uri: str, num_frames: int, size: int, start: float | None, end: float | None) -> DecodedClip:
    """A video on a remote or local filesystem URI (s3://, gs://, hdfs://, file://): copied to a
    temporary file through pyarrow's filesystems, decoded, deleted."""
    import os
    import shutil
    import tempfile

    import pyarrow.fs

    try:
        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        suffix = os.path.splitext(path)[1]
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
            with fs.open_input_stream(path) as src:
                shutil.copyfileobj(src, tmp, 1 << 20)
            tmp.flush()
            return decode_clip(tmp.name, num_frames, size, start, end)
    except (OSError, ValueError, TypeError) as e:  # pyarrow raises these for unknown schemes and missing files
        raise DecodeError(f"cannot read {uri}: {e}") from e
