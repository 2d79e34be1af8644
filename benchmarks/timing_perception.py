"""Can the tiny demo seed perceive global and temporal attributes? A probe for issue 3's benchmark redesign.

    .venv/bin/python benchmarks/timing_perception.py [--pool 1024] [--steps 600]

The current demo asks for colour x shape x direction; benchmarks/seed_perception.py shows the tiny
Qwen2-VL learns colour but never shape or direction. This probe renders clips whose attributes are
global statistics of a frame or of time: a disc's colour (4), its size (small/large: how much of the
frame it covers) and when it is visible (only at the beginning, only at the end, throughout). It
pretrains the demo architecture on captions of ``--pool`` clips and prints how often greedy captions
of 64 held-out clips get each attribute right (chance 0.25 / 0.50 / 0.33).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

COLORS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (40, 70, 230), "yellow": (235, 215, 30)}
SIZES = {"small": 9, "large": 22}
WHEN = {"beginning": "only at the beginning", "end": "only at the end", "throughout": "from start to finish"}
FRAMES, SIDE = 16, 96
PROMPT = "Describe the video briefly."


def render(color: str, size: str, when: str, rng: random.Random) -> np.ndarray:
    radius = SIZES[size] + rng.randint(-2, 2)
    cx, cy = rng.uniform(radius, SIDE - radius), rng.uniform(radius, SIDE - radius)
    visible = {"beginning": range(0, FRAMES // 2), "end": range(FRAMES // 2, FRAMES), "throughout": range(FRAMES)}[when]
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    background = rng.randint(20, 60)
    frames = np.full((FRAMES, SIDE, SIDE, 3), background, dtype=np.uint8)
    for t in visible:
        mask = (xx - cx - t * 0.5) ** 2 + (yy - cy) ** 2 <= radius**2
        frames[t][mask] = COLORS[color]
    return frames


def caption(color: str, size: str, when: str) -> str:
    return f"A {size} {color} disc is visible {WHEN[when]}."


def dataset(n: int, seed: int, frame_size: int):
    from vstar_ray.video import resize_frames, sample_indices

    rng = random.Random(seed)
    items = []
    for i in range(n):
        attrs = (rng.choice(list(COLORS)), rng.choice(list(SIZES)), rng.choice(list(WHEN)))
        clip = render(*attrs, random.Random(seed * 100_003 + i))
        items.append((attrs, resize_frames(clip[sample_indices(FRAMES, 8)], frame_size)))
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    from vstar_ray import models
    from vstar_ray.demo import seed

    torch.set_num_threads(2)
    start = time.time()
    train, heldout = dataset(args.pool, 0, args.size), dataset(64, 1, args.size)
    texts = [caption(c, s, w) for c in COLORS for s in SIZES for w in WHEN] + [PROMPT, "user", "assistant"]
    tokenizer = seed.build_tokenizer(texts=texts)
    processor = seed.build_processor(tokenizer, args.size)
    model = seed.build_model(tokenizer, 0)
    examples = [(frames, PROMPT, caption(*attrs)) for attrs, frames in train]
    losses = seed.pretrain(model, processor, examples, args.steps, 16, args.lr, 0)
    print(f"pool {args.pool}, {args.steps} steps, {args.size}px: loss {losses[0]:.2f} -> "
          f"{np.mean(losses[-20:]):.3f} ({time.time() - start:.0f}s)")
    outputs = []
    for i in range(0, len(heldout), 16):
        chunk = heldout[i:i + 16]
        outputs += models.generate(model, processor, [f for _, f in chunk], [PROMPT] * len(chunk), 24, False, 1.0)
    right = np.array([(f" {c} " in f" {o} ", f" {s} " in f" {o} ", WHEN[w] in o) for ((c, s, w), _), o in
                      zip(heldout, outputs)])
    colour, size, when = right.mean(axis=0)
    print(f"held-out captions right: colour {colour:.2f} (chance 0.25), size {size:.2f} (0.50), "
          f"when {when:.2f} (0.33), all three {right.all(axis=1).mean():.2f}")
    print("e.g.", outputs[:3])


if __name__ == "__main__":
    main()
