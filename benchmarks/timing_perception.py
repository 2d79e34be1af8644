"""Can the tiny demo seed perceive the demo's attributes? Caption accuracy per attribute.

    .venv/bin/python benchmarks/timing_perception.py [--pool 1024] [--steps 600]
    .venv/bin/python benchmarks/timing_perception.py --kit [KIT]   # score the demo kit's (or KIT's) own seed instead

The demo's clips (vstar_ray/demo/videos.py) are discs with a colour (4), a size (small/large: how much
of the frame they cover) and a time of visibility (only at the beginning, in the middle or at
the end): statistics of a frame or of time. The first demo's shapes and directions of motion were
never learned (benchmarks/README.md). This pretrains the demo architecture on captions of ``--pool``
clips (the demo seed's own caption text and tokenizer) and prints how often greedy captions of 64
held-out clips get each attribute right (chance 0.25 / 0.50 / 0.33). With ``--kit`` nothing is
trained: the demo kit's seed (built if missing; captions, then question answering and hints) is scored.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch


def dataset(n: int, seed: int, frame_size: int):
    from vstar_ray.demo.videos import make_clips, sampled_frames

    return [(clip, sampled_frames(clip, random.Random(seed * 100_003 + i), 8, frame_size))
            for i, clip in enumerate(make_clips(n, seed))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kit", nargs="?", const="", default=None, metavar="KIT",
                        help="score a kit's seed instead: the demo kit's (configs/demo.yaml), or the kit folder given")
    args = parser.parse_args()

    from vstar_ray import models
    from vstar_ray.demo import seed, tasks

    torch.set_num_threads(2)
    start = time.time()
    heldout = dataset(64, 1, args.size)
    if args.kit is not None:
        from vstar_ray.config import load_config
        from vstar_ray.preflight import resolve_demo

        path = f"{args.kit}/seed" if args.kit else resolve_demo(load_config("configs/demo.yaml")).model.path
        model, processor = models.load_model(path, "cpu", "auto").eval(), models.load_processor(path)
        print(f"the kit's seed, {path}")
    else:
        tokenizer = seed.build_tokenizer()
        processor = seed.build_processor(tokenizer, args.size)
        model = seed.build_model(tokenizer, 0)
        train = dataset(args.pool, 0, args.size)
        examples = [(frames, seed.CAPTION_PROMPT, seed.caption(clip)) for clip, frames in train]
        losses = seed.pretrain(model, processor, examples, args.steps, 16, args.lr, 0)
        print(f"pool {args.pool}, {args.steps} steps, {args.size}px: loss {losses[0]:.2f} -> "
              f"{np.mean(losses[-20:]):.3f} ({time.time() - start:.0f}s)")
    outputs = []
    for i in range(0, len(heldout), 16):
        chunk = heldout[i:i + 16]
        outputs += models.generate(model, processor, [f for _, f in chunk], [seed.CAPTION_PROMPT] * len(chunk), 24,
                                   False, 1.0)
    right = np.array([(f" {c.color} " in f" {o} ", f" {tasks.OWN_SIZE[c.size]} " in f" {o} ", tasks.OWN_WHEN[c.when] in o)
                      for (c, _), o in zip(heldout, outputs)])
    colour, size, when = right.mean(axis=0)
    print(f"held-out captions right: colour {colour:.2f} (chance 0.25), size {size:.2f} (0.50), "
          f"when {when:.2f} (0.33), all three {right.all(axis=1).mean():.2f}")
    print("e.g.", outputs[:3])


if __name__ == "__main__":
    main()
