"""What can a tiny demo seed read from the video? Pretrain a seed variant, score held-out captions per attribute.

    .venv/bin/python benchmarks/seed_perception.py [--pool 1024] [--steps 800] [--size 56] [--position-tint]

Builds the demo tokenizer/processor/model (vstar_ray/demo/seed.py), pretrains it on ``--pool``
rendered clips (captions, some reasoning answers, hint-following: the kit's recipe), then greedily
captions 64 held-out clips and prints how often the colour, the shape and the direction are right
(chance: 0.25, 0.5, 0.25), plus exact-label accuracy on the demo's question. This is the check for
issue 3: a Video-STaR gain needs a seed that perceives what the labels are about.
``--position-tint`` paints a fixed colour gradient into the background so that where the object is
becomes part of each token's content, not only of its position encoding.
"""

from __future__ import annotations

import argparse
import random
import re
import time

import numpy as np
import torch


def clips_and_frames(n: int, offset: int, size: int, tint: bool):
    from vstar_ray.demo import videos
    from vstar_ray.video import resize_frames, sample_indices

    clips = videos.make_clips(n, offset)
    yy, xx = np.mgrid[0:videos.SIZE, 0:videos.SIZE]
    gradient = np.stack([xx * 50 / videos.SIZE, (xx + yy) * 25 / videos.SIZE, yy * 50 / videos.SIZE], -1)
    frames = []
    for i, clip in enumerate(clips):
        f = videos.render(clip, random.Random(offset + i))
        if tint:
            background = (f == f[:, :1, :1, :]).all(-1)
            f = np.where(background[..., None], np.clip(f + gradient, 0, 255), f).astype(np.uint8)
        frames.append(resize_frames(f[sample_indices(len(f), 8)], size))
    return clips, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--qa-fraction", type=float, default=0.3)
    parser.add_argument("--position-tint", action="store_true")
    args = parser.parse_args()

    from vstar_ray import models, questions
    from vstar_ray.demo import seed

    torch.set_num_threads(2)
    start = time.time()
    train, train_frames = clips_and_frames(args.pool, 0, args.size, args.position_tint)
    heldout, heldout_frames = clips_and_frames(64, 10_000, args.size, args.position_tint)
    tokenizer = seed.build_tokenizer()
    processor = seed.build_processor(tokenizer, args.size)
    model = seed.build_model(tokenizer, 0)
    examples = seed.pretraining_examples(train, train_frames, args.qa_fraction, 0)
    losses = seed.pretrain(model, processor, examples, args.steps, 16, args.lr, 0)
    print(f"pool {args.pool}, {args.steps} steps, {args.size}px, tint {args.position_tint}: "
          f"loss {losses[0]:.2f} -> {np.mean(losses[-20:]):.3f} ({time.time() - start:.0f}s)")

    def answers(prompts: list[str], max_new_tokens: int) -> list[str]:
        out = []
        for i in range(0, len(prompts), 16):
            out += models.generate(model, processor, heldout_frames[i:i + 16], prompts[i:i + 16], max_new_tokens,
                                   False, 1.0)
        return out

    captions = answers([seed.CAPTION_PROMPT] * len(heldout), 24)
    right = np.array([(c.color in re.findall(r"\w+", t.lower()), c.shape in re.findall(r"\w+", t.lower()),
                       seed.PATHS[c.direction] in t) for t, c in zip(captions, heldout)])
    colour, shape, direction = right.mean(axis=0)
    print(f"held-out captions right: colour {colour:.2f} (chance 0.25), shape {shape:.2f} (0.50), "
          f"direction {direction:.2f} (0.25), all three {right.all(axis=1).mean():.2f}")
    qa = answers([questions.answer_prompt(questions.class_question(f"h{i}", 0)) for i in range(len(heldout))], 80)
    print(f"held-out question answered with the exact label: {np.mean([c.label in t for t, c in zip(qa, heldout)]):.2f}")


if __name__ == "__main__":
    main()
