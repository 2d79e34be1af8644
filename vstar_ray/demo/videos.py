"""Synthetic labeled videos: a coloured disc, small or large, visible only at the beginning, in the
middle or at the end of the clip; written as H.264 mp4.

Each clip carries three labels of three types, as the paper's sources do:
- an action class (class verifier) such as ``"large red disc at the beginning"``: 4 colours x 2 sizes
  x 3 times = 24 classes;
- when the disc is visible (temporal_range verifier): the fraction of the clip ``[start, end]``,
  ``[0.0, 0.5]``, ``[0.25, 0.75]`` or ``[0.5, 1.0]``; any two overlap with IoU 1/3 at most, and the
  whole clip ``[0, 1]`` with IoU 0.5 exactly, so the kit verifies them at IoU 0.6
  (``THRESHOLDS``): neither a neighbouring span nor "from 0 to 1" passes;
- the disc's width in pixels (float verifier): 18 or 44.
These are attributes the demo's tiny seed can perceive (colour and size are statistics of a frame,
the time statistics across frames; ``benchmarks/timing_perception.py``), unlike shape or direction
of motion, so self-training has something to learn. Everything is a function of the seed, so the
same kit is built on every machine.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vstar_ray.io import atomic_path

COLORS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 70, 230), "yellow": (235, 215, 30)}
SIZES = {"small": 9, "large": 22}  # disc radius in pixels
WHEN = ("beginning", "middle", "end")
PHRASES = {"beginning": "at the beginning", "middle": "in the middle", "end": "at the end"}
SIZE = 96
FRAMES = 16
VISIBLE = 8  # frames the disc is on screen: half the clip
FPS = 8
THRESHOLDS = {"temporal_range": {"iou": 0.6}}  # the kit's thresholds.yaml: the verifier defaults otherwise


@dataclass(frozen=True)
class Clip:
    color: str
    size: str
    when: str

    @property
    def label(self) -> str:
        return f"{self.size} {self.color} disc {PHRASES[self.when]}"

    @classmethod
    def from_label(cls, label: str) -> "Clip":
        size, color, _, *when = label.split()
        return cls(color, size, when[-1])

    @property
    def visible_frames(self) -> range:
        first = {"beginning": 0, "middle": (FRAMES - VISIBLE) // 2, "end": FRAMES - VISIBLE}[self.when]
        return range(first, first + VISIBLE)

    @property
    def span(self) -> list[float]:
        """When the disc is visible, as fractions of the clip: the temporal_range label."""
        frames = self.visible_frames
        return [frames.start / FRAMES, frames.stop / FRAMES]

    @property
    def width(self) -> int:
        """The disc's nominal width in pixels: the float label."""
        return 2 * SIZES[self.size]


ALL_CLIPS = [Clip(c, s, w) for c, s, w in itertools.product(COLORS, SIZES, WHEN)]


def render(clip: Clip, rng: random.Random) -> np.ndarray:
    """(FRAMES, SIZE, SIZE, 3) uint8: the disc drifts slowly to the right while it is visible."""
    radius = SIZES[clip.size] + rng.randint(-2, 2)
    cx, cy = rng.uniform(radius, SIZE - radius - 8), rng.uniform(radius, SIZE - radius)
    frames = np.full((FRAMES, SIZE, SIZE, 3), rng.randint(20, 60), dtype=np.uint8)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for t in clip.visible_frames:
        frames[t][(xx - cx - t * 0.5) ** 2 + (yy - cy) ** 2 <= radius**2] = COLORS[clip.color]
    return frames


def sampled_frames(clip: Clip, rng: random.Random, num_frames: int, size: int) -> np.ndarray:
    """A clip rendered in memory and sampled like the decoder samples a file (no mp4 round trip)."""
    from vstar_ray.data.video import resize_frames, sample_indices

    frames = render(clip, rng)
    return resize_frames(frames[sample_indices(len(frames), num_frames)], size)


def write_mp4(frames: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_clips(n: int, seed: int) -> list[Clip]:
    """``n`` clips cycling through every class, in a seeded order."""
    rng = random.Random(seed)
    clips = [ALL_CLIPS[i % len(ALL_CLIPS)] for i in range(n)]
    rng.shuffle(clips)
    return clips
