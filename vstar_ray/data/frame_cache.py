"""Each clip decoded once per run: the frames of a decoded clip, kept where every consumer reads them (the answer
and rationalize passes, every training epoch, the held-out evals of every cycle).

An entry's key is everything that determines its frames: the file (its path or URI, size and modification time),
the clip window, ``data.num_frames``, ``data.frame_size``, ``data.frame_folder_fps``, the sampling rule, the
decoders' versions and the entry format. Change any of them and the clip is decoded again. An entry holds the
frames (``data.frame_cache_format``: raw uint8 compressed with lz4, or JPEG), their timing, and a CRC32 of its
payload; an entry that does not verify (a partial write, a damaged disk) is decoded again and counted, never used.
Every consumer reads the frames as the entry holds them, the pass that decoded the clip included, so generation
and training see the same bytes even with JPEG. Writes are atomic (a temporary name, then a rename; an object store's put), so concurrent
writers of one clip leave one whole entry. ``benchmarks/README.md`` ("The frame cache") has the measurements
that chose the format.

``data.frame_cache``: ``run`` (``OUT/frame_cache``, the default), a folder or URI every node can read, or
``off``. Deleting the folder empties the cache; nothing else refers to it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import struct
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from vstar_ray.data.manifest import is_uri
from vstar_ray.data.video import SAMPLING_RULE, DecodedClip
from vstar_ray.io import atomic_path

LAYOUT = 1  # bump when the entry layout changes: older entries are then never read
MAGIC = b"VSTARFC1"
# benchmarks/README.md, "The frame cache": lz4 over raw uint8 (the default) is lossless, so a run's results do not
# depend on the cache, and reads 67-398x faster than decoding; JPEG (quality 95, no chroma subsampling: a mean
# error of 1-2 levels) takes a sixth to a tenth of its bytes and still reads 13-37x faster than decoding
FORMATS = ("lz4", "jpeg")
JPEG_QUALITY = 95
BYTES_PER_RAW_BYTE = {"lz4": 0.83, "jpeg": 0.14}  # entry size / raw frame bytes, measured at 224 px (upper figures)


def size_bytes(clips: int, num_frames: int, frame_size: int, fmt: str) -> float:
    """What ``clips`` entries take (``vstar plan``)."""
    return clips * num_frames * frame_size * frame_size * 3 * BYTES_PER_RAW_BYTE[fmt]


class CorruptEntry(Exception):
    """An entry that does not verify; the clip is decoded again."""


@functools.lru_cache(maxsize=1)
def decoders() -> str:
    """The decoders' versions: a new decord or PyAV may decode other frames, so it decodes again."""
    versions = []
    for name in ("decord", "av"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} none")
    return ", ".join(versions)


def file_identity(path: str) -> tuple[int, int]:
    """(size, modification time in ns) of a video file, a frame folder or an object behind a URI."""
    if is_uri(path):
        fs, inner = pafs.FileSystem.from_uri(path)
        info = fs.get_file_info(inner)
        mtime = info.mtime_ns if info.mtime_ns is not None else 0
        return int(info.size or 0), int(mtime)
    st = os.stat(path)
    if os.path.isdir(path):  # a frame folder: its files' names and modification times
        names = sorted(os.listdir(path))
        listing = json.dumps([(n, os.stat(os.path.join(path, n)).st_mtime_ns) for n in names]).encode()
        return len(names), int(hashlib.sha256(listing).hexdigest()[:15], 16)
    return st.st_size, st.st_mtime_ns


def entry_key(path: str, start: float | None, end: float | None, num_frames: int, size: int,
              folder_fps: float, fmt: str = "lz4") -> str:
    identity = file_identity(path)
    fields = [LAYOUT, SAMPLING_RULE, decoders(), path if is_uri(path) else os.path.abspath(path), *identity,
              start, end, num_frames, size, folder_fps, fmt, JPEG_QUALITY if fmt == "jpeg" else None]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:40]


def _jpeg(frames: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    parts = []
    for frame in frames:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=quality, subsampling=0)  # 4:4:4: colours kept
        parts.append(struct.pack("<I", buf.tell()) + buf.getvalue())
    return b"".join(parts)


def _unjpeg(payload: bytes, shape: list[int]) -> np.ndarray:
    from PIL import Image

    frames, i = [], 0
    while i < len(payload):
        (n,) = struct.unpack("<I", payload[i:i + 4])
        frames.append(np.asarray(Image.open(io.BytesIO(payload[i + 4:i + 4 + n])).convert("RGB")))
        i += 4 + n
    return np.stack(frames).reshape(shape)


def encode(clip: DecodedClip, fmt: str = "lz4") -> bytes:
    """An entry: ``MAGIC``, the header's length, the header (JSON: shape, timing, format, the payload's CRC32),
    then the frames as ``fmt``: ``jpeg`` (quality ``JPEG_QUALITY``, lossy) or ``lz4`` (raw uint8, lossless)."""
    raw = np.ascontiguousarray(clip.frames, dtype=np.uint8)
    if fmt == "jpeg":
        payload = _jpeg(raw, JPEG_QUALITY)
    else:
        payload = pa.Codec("lz4").compress(raw.tobytes(), asbytes=True)
    header = json.dumps({"shape": list(raw.shape), "fps": clip.fps, "frame_indices": clip.frame_indices.tolist(),
                         "clip_frames": int(clip.clip_frames), "format": fmt, "raw_bytes": raw.nbytes,
                         "crc32": zlib.crc32(payload)}).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + payload


def decode(data: bytes) -> DecodedClip:
    """The clip an entry holds; ``CorruptEntry`` if any part of it does not verify."""
    try:
        if data[:len(MAGIC)] != MAGIC:
            raise ValueError("not a frame cache entry")
        (n,) = struct.unpack("<I", data[len(MAGIC):len(MAGIC) + 4])
        header = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n])
        payload = data[len(MAGIC) + 4 + n:]
        if zlib.crc32(payload) != header["crc32"]:
            raise ValueError("checksum mismatch")
        if header["format"] == "jpeg":
            frames = _unjpeg(payload, header["shape"])
        else:
            raw = pa.Codec("lz4").decompress(payload, decompressed_size=header["raw_bytes"], asbytes=True)
            frames = np.frombuffer(raw, dtype=np.uint8).reshape(header["shape"])
        return DecodedClip(frames, float(header["fps"]), np.asarray(header["frame_indices"], dtype=np.int64),
                           int(header["clip_frames"]))
    except (ValueError, KeyError, TypeError, OSError, struct.error, pa.ArrowException) as e:  # OSError: lz4, PIL
        raise CorruptEntry(str(e) or type(e).__name__) from e


class FrameCache:
    """Entries under ``location`` (a folder or a URI): ``location/ab/abcdef....clip``."""

    def __init__(self, location: str, fmt: str = "lz4"):
        if fmt not in FORMATS:
            raise ValueError(f"frame cache format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        if is_uri(location):
            self.fs, self.root = pafs.FileSystem.from_uri(location)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(location))
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key}.clip"

    def get(self, key: str) -> DecodedClip | None:
        """The entry's clip; None when there is none; ``CorruptEntry`` when it does not verify (it is removed)."""
        path = self.path(key)
        try:
            with self.fs.open_input_stream(path) as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            if "not found" in str(e).lower() or "no such file" in str(e).lower():
                return None
            raise
        try:
            return decode(data)
        except CorruptEntry:
            try:
                self.fs.delete_file(path)
            except OSError:
                pass  # another reader removed it first
            raise

    def put(self, key: str, clip: DecodedClip) -> DecodedClip:
        """Store ``clip``; returns it as the entry holds it (what every consumer, this one included, reads): the
        same frames with lz4, JPEG's frames decoded back with jpeg."""
        path = self.path(key)
        data = encode(clip, self.fmt)
        if self.local:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        else:  # an object store's put is atomic
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(path) as f:
                f.write(data)
        return clip if self.fmt == "lz4" else decode(data)


@functools.lru_cache(maxsize=4)
def open_cache(location: str, fmt: str = "lz4") -> FrameCache:
    """One ``FrameCache`` per location and worker process."""
    return FrameCache(location, fmt)
