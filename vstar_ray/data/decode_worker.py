"""Decoding in a child process that is killed when a clip takes too long.

decord can hang inside C code while holding the GIL (a stalled network mount, a FIFO, some
broken streams), and no thread-level timeout can interrupt that. ``TimedDecoder`` keeps one
child (``python -m vstar_ray.data.decode_worker``) per decode process, sends it one clip at a time
over a pipe, and kills it after ``timeout_s``; the next clip starts a fresh child.

Protocol: one JSON request line on stdin; the answer is one JSON header line on stdout
(``{"shape": [...], "fps": ..., "frame_indices": [...], "clip_frames": ...}`` followed by the raw uint8
frames, or ``{"error": "..."}``).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np

from vstar_ray.data.video import DecodeError, DecodedClip, decode_clip


_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # vstar_ray importable in the child


class DecodeTimeout(DecodeError):
    pass


class TimedDecoder:
    def __init__(self, timeout_s: float):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vstar_ray.data.decode_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)},
        )
        return self.proc

    def _read_exactly(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s)
            if not ready:
                raise DecodeTimeout(f"decoder stalled for more than {self.timeout_s}s while sending frames")
            chunk = os.read(self.proc.stdout.fileno(), left)
            if not chunk:
                raise DecodeError("decoder process died while sending frames")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_line(self) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s)
            if not ready:
                raise DecodeTimeout(f"decoding took longer than {self.timeout_s}s; the decoder was killed")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise DecodeError(f"decoder process died (exit code {self.proc.poll()})")
            line += chunk
        return line

    def decode(self, path: str, num_frames: int, size: int, start: float | None = None,
               end: float | None = None, folder_fps: float = 0.0) -> DecodedClip:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else self._start()
        request = {"path": path, "num_frames": num_frames, "size": size, "start": start, "end": end,
                   "folder_fps": folder_fps}
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
            header = json.loads(self._read_line())
            if "error" in header:
                raise DecodeError(header["error"])
            shape = tuple(header["shape"])
            data = self._read_exactly(int(np.prod(shape)))
        except (DecodeTimeout, BrokenPipeError, json.JSONDecodeError) as e:
            self.close()
            if isinstance(e, DecodeTimeout):
                raise
            raise DecodeError(f"decoder process failed: {type(e).__name__}: {e}") from e
        except DecodeError as e:
            if "died" in str(e):
                self.close()
            raise
        frames = np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()
        return DecodedClip(frames, header["fps"], np.asarray(header["frame_indices"], np.int64), header["clip_frames"])

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
            self.proc = None


_DECODERS: dict[float, TimedDecoder] = {}


def decode_with_timeout(path: str, num_frames: int, size: int, start: float | None, end: float | None,
                        timeout_s: float, folder_fps: float = 0.0) -> DecodedClip:
    """``decode_clip`` in this process's decoder child, killed after ``timeout_s`` (0: decode inline)."""
    if timeout_s <= 0:
        return decode_clip(path, num_frames, size, start, end, folder_fps)
    decoder = _DECODERS.get(timeout_s) or _DECODERS.setdefault(timeout_s, TimedDecoder(timeout_s))
    return decoder.decode(path, num_frames, size, start, end, folder_fps)


def serve() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            clip = decode_clip(request["path"], request["num_frames"], request["size"], request["start"],
                               request["end"], request.get("folder_fps", 0.0))
        except Exception as e:  # reported to the parent as the row's error
            out.write((json.dumps({"error": str(e) if isinstance(e, DecodeError) else f"{type(e).__name__}: {e}"})
                       + "\n").encode())
            out.flush()
            continue
        frames = np.ascontiguousarray(clip.frames, dtype=np.uint8)
        header = {"shape": list(frames.shape), "fps": clip.fps, "frame_indices": clip.frame_indices.tolist(),
                  "clip_frames": int(clip.clip_frames)}
        out.write((json.dumps(header) + "\n").encode())
        out.write(frames.tobytes())
        out.flush()


if __name__ == "__main__":
    serve()
