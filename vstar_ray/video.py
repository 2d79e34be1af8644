"""Decode a clip into N uniformly sampled frames at the model's resolution.

decord is tried first with one thread (its threaded VP9 path mis-reads SSv2 webm,
dmlc/decord#246); PyAV is the fallback for what decord cannot open (GIF, broken
metadata). A clip that neither can read becomes an error string, never an exception.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class DecodeError(RuntimeError):
    pass


def sample_indices(num_available: int, num_frames: int, first: int = 0) -> np.ndarray:
    """``num_frames`` indices spread uniformly (segment centres) over ``[first, first + num_available)``."""
    if num_available <= 0:
        raise DecodeError("clip has no frames")
    centres = (np.arange(num_frames) + 0.5) * num_available / num_frames
    return first + np.minimum(centres.astype(np.int64), num_available - 1)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])


def _clip_range(num_total: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    first = 0 if start is None or fps <= 0 else int(round(start * fps))
    last = num_total if end is None or fps <= 0 else min(num_total, int(round(end * fps)))
    if first >= num_total:
        raise DecodeError(f"start {start}s is beyond the video ({num_total} frames at {fps:.2f} fps)")
    if last <= first:
        raise DecodeError(f"empty clip window start={start} end={end}")
    return first, last


def decode_with_decord(path: str, num_frames: int, start: float | None, end: float | None) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    first, last = _clip_range(len(reader), reader.get_avg_fps(), start, end)
    indices = sample_indices(last - first, num_frames, first)
    return reader.get_batch(indices.tolist()).asnumpy()


def decode_with_pyav(path: str, num_frames: int, start: float | None, end: float | None) -> np.ndarray:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
    if not frames:
        raise DecodeError("no video frames decoded")
    first, last = _clip_range(len(frames), fps, start, end)
    return np.stack([frames[i] for i in sample_indices(last - first, num_frames, first)])


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def decode_frame_folder(path: str, num_frames: int, size: int) -> np.ndarray:
    """A clip stored as a folder of frame images (FineDiving's per-dive folders), in file-name order."""
    import os

    names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise DecodeError(f"frame folder {path} holds no images")
    frames = []
    for i in sample_indices(len(names), num_frames):
        try:
            with Image.open(os.path.join(path, names[i])) as im:
                frames.append(np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)))
        except OSError as e:
            raise DecodeError(f"frame {names[i]} in {path}: {e}") from e
    return np.stack(frames)


def decode_clip(
    path: str, num_frames: int, size: int, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """(num_frames, size, size, 3) uint8, or DecodeError with both decoders' reasons.
    A folder is read as a clip of frame images."""
    import os

    if "://" in path:
        return _decode_uri(path, num_frames, size, start, end)
    if os.path.isdir(path):
        return decode_frame_folder(path, num_frames, size)
    reasons = []
    for name, decode in (("decord", decode_with_decord), ("pyav", decode_with_pyav)):
        try:
            frames = decode(path, num_frames, start, end)
            return resize_frames(frames, size)
        except Exception as e:  # both libraries raise a zoo of types on bad files
            reasons.append(f"{name}: {type(e).__name__}: {str(e).strip()[:200]}")
    raise DecodeError("; ".join(reasons))


def _decode_uri(uri: str, num_frames: int, size: int, start: float | None, end: float | None) -> np.ndarray:
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
