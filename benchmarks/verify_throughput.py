"""Parser-verifier throughput, records/s on one core (run by hand; prints figures).

    python benchmarks/verify_throughput.py [--records 100000] [--sentence-records 2000]

Answers are reasoning-style text of ~60 words with the label (or a wrong one) stated at the end, as the
generators write them. The regex/fuzzy types run through ``verify_many`` exactly as the pipeline's verify
stage does; the sentence types are measured batched (``verify_many``: one embedding call per batch) and
one record at a time (``verify_labels``), the model load excluded.
"""

from __future__ import annotations

import argparse
import os
import random
import time

from vstar_ray.verify import verify_labels, verify_many
from vstar_ray.verify import sentences

REASONING = ("Let me look at the video step by step. In the first frames the object is near the edge of the frame, "
             "then it moves steadily while the background stays still. Considering the motion and the shape")
ACTIONS = ["red circle moving left", "blue square moving up", "green circle moving down", "yellow square moving right",
           "arm wrestling", "playing guitar", "diving cliff", "riding a bike"]


def make(kind: str, i: int, rng: random.Random):
    right = rng.random() < 0.5
    if kind == "class":
        label = rng.choice(ACTIONS)
        said = label if right else rng.choice(ACTIONS)
        return label, f"{REASONING}, the answer is: {said}."
    if kind == "float":
        label = round(rng.uniform(20, 100), 1)
        said = label if right else round(label * rng.uniform(1.1, 1.5), 1)
        return label, f"{REASONING}, difficulty 3.2 and execution 24, so the final score is {said}."
    if kind == "temporal_range":
        s = round(rng.uniform(0, 0.5), 2)
        label = [s, round(s + rng.uniform(0.2, 0.5), 2)]
        said = label if right else [round(min(1, label[1] + 0.1), 2), 1.0]
        return label, f"{REASONING}, at 0.05 nothing happens; the action lasts from {said[0]} to {said[1]}."
    if kind == "bbox":
        x, y = rng.uniform(0, 0.5), rng.uniform(0, 0.5)
        label = [round(x, 3), round(y, 3), round(x + 0.3, 3), round(y + 0.3, 3)]
        said = label if right else [round(v + 0.2, 3) for v in label]
        return label, f"{REASONING}, the person is at [{', '.join(map(str, said))}] in frame 4 of 8."
    if kind == "sentence":
        label = rng.choice(["someone plays the guitar", "a diver jumps into the pool", "a man rides a bike"])
        return label, f"{REASONING}. In this clip a man is playing a guitar on a stage, number {i}."
    if kind == "sentence_sequence":
        label = ["forward take-off", "pike position", "2.5 somersaults", "entry into the water"]
        order = label if right else label[::-1]
        return label, f"{REASONING}. The diver does a {order[0]}, then a {order[1]}, then {order[2]}, then {order[3]} ({i})."
    raise ValueError(kind)


def items_for(kind: str, n: int, seed: int = 0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label, answer = make(kind, i, rng)
        out.append((f"r{i}", answer, {"x": label}, {"x": kind}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sentence-records", type=int, default=2_000)
    parser.add_argument("--one-by-one-records", type=int, default=300, help="the unbatched sentence baseline is slow")
    parser.add_argument("--batch", type=int, default=4096, help="records per verify_many call (the CLI default)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)  # per-core figures
    print(f"{'type':<20} {'records':>8} {'mode':<10} {'seconds':>8} {'records/s/core':>15} {'verified':>9}")
    for kind in ("class", "float", "temporal_range", "bbox"):
        items = items_for(kind, args.records)
        start = time.perf_counter()
        ok = 0
        for b in range(0, len(items), args.batch):
            ok += sum(r["verified"] for r in verify_many(items[b:b + args.batch]))
        dt = time.perf_counter() - start
        print(f"{kind:<20} {len(items):>8} {'batched':<10} {dt:>8.2f} {len(items) / dt:>15.0f} {ok / len(items):>9.2f}")
    verify_labels("warm", "a man plays guitar", {"x": "a man plays guitar"}, {"x": "sentence"})  # load the model
    for kind in ("sentence", "sentence_sequence"):
        items = items_for(kind, args.sentence_records)
        for mode in ("batched", "one-by-one"):
            items = items if mode == "batched" else items[: args.one_by_one_records]
            sentences._cache.clear()
            start = time.perf_counter()
            if mode == "batched":
                ok = sum(r["verified"] for b in range(0, len(items), 512) for r in verify_many(items[b:b + 512]))
            else:
                ok = 0
                for item in items:
                    ok += verify_labels(*item)["verified"]
                    sentences._cache.clear()
            dt = time.perf_counter() - start
            print(f"{kind:<20} {len(items):>8} {mode:<10} {dt:>8.2f} {len(items) / dt:>15.0f} {ok / len(items):>9.2f}")


if __name__ == "__main__":
    main()
