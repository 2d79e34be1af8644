"""Synthetic labeled videos: one coloured shape moving in one direction, written as H.264 mp4.

The label is an action class such as ``"red circle moving left"``. Everything is a
function of the seed, so the same kit is built on every machine.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

COLORS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 70, 230), "yellow": (235, 215, 30)}
SHAPES = ("circle", "square")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
SIZE = 96
FRAMES = 16
FPS = 8


@dataclass(frozen=True)
class Clip:
    color: str
    shape: str
    direction: str

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape} moving {self.direction}"


ALL_CLIPS = [Clip(c, s, d) for c, s, d in itertools.product(COLORS, SHAPES, DIRECTIONS)]


def render(clip: Clip, rng: random.Random) -> np.ndarray:
    """(FRAMES, SIZE, SIZE, 3) uint8: the shape travels across most of the frame."""
    radius = rng.randint(9, 13)
    dx, dy = DIRECTIONS[clip.direction]
    travel = SIZE - 2 * radius - 12
    cx0 = SIZE / 2 - dx * travel / 2 + (0 if dx else rng.uniform(-18, 18))
    cy0 = SIZE / 2 - dy * travel / 2 + (0 if dy else rng.uniform(-18, 18))
    background = np.array([rng.randint(20, 60)] * 3, dtype=np.uint8)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames = np.empty((FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    for t in range(FRAMES):
        cx = cx0 + dx * travel * t / (FRAMES - 1)
        cy = cy0 + dy * travel * t / (FRAMES - 1)
        if clip.shape == "circle":
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
        else:
            mask = (np.abs(xx - cx) <= radius * 0.85) & (np.abs(yy - cy) <= radius * 0.85)
        frame = np.broadcast_to(background, (SIZE, SIZE, 3)).copy()
        frame[mask] = COLORS[clip.color]
        frames[t] = frame
    return frames


def write_mp4(frames: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def make_clips(n: int, seed: int) -> list[Clip]:
    """``n`` clips cycling through every class, in a seeded order."""
    rng = random.Random(seed)
    clips = [ALL_CLIPS[i % len(ALL_CLIPS)] for i in range(n)]
    rng.shuffle(clips)
    return clips
