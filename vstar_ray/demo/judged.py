"""Verify records with simulated human judgments, for trying ``vstar tune`` (and for its tests).

    python -m vstar_ray.demo.judged --judge lenient --n 400 --out judged.jsonl

Answers are reasoning-style text that state a score (float) or a time span (temporal_range) with a
controlled error. The simulated judge accepts an answer by its own rule, stricter or more lenient than
the default thresholds, and flips ``noise`` of the judgments, as tired annotators do.
"""

from __future__ import annotations

import argparse
import json
import random

from vstar_ray.verify.checks import interval_iou

# judge: (float relative error accepted, temporal IoU required); the defaults are 0.05 and 0.5
JUDGES = {"lenient": (0.15, 0.3), "strict": (0.02, 0.75)}


def judged_records(n: int = 400, judge: str = "lenient", noise: float = 0.03, seed: int = 0) -> list[dict]:
    if judge not in JUDGES:
        raise ValueError(f"unknown judge {judge!r} (choose from {sorted(JUDGES)})")
    rel_ok, iou_ok = JUDGES[judge]
    rng = random.Random(seed)
    records = []
    for i in range(n):
        if i % 2 == 0:
            label = round(rng.uniform(20, 100), 1)
            error = rng.uniform(-0.35, 0.35)
            said = round(label * (1 + error), 1)
            output = (f"The diver leaves the board cleanly and the entry has little splash. Difficulty 3.0, "
                      f"execution around 7, so the final score is {said}.")
            gold = abs(said - label) <= rel_ok * abs(label)
            labels, verifiers = {"score": label}, {"score": "float"}
        else:
            start = round(rng.uniform(0, 0.5), 2)
            label = [start, round(start + rng.uniform(0.2, 0.45), 2)]
            shift, stretch = rng.uniform(-0.25, 0.25), rng.uniform(0.6, 1.4)
            mid, half = (label[0] + label[1]) / 2 + shift, (label[1] - label[0]) / 2 * stretch
            said = [round(max(0.0, mid - half), 2), round(min(1.0, mid + half), 2)]
            output = f"The person picks up the cup after the door opens; that happens from {said[0]} to {said[1]}."
            gold = interval_iou(tuple(said), tuple(label)) >= iou_ok
            labels, verifiers = {"when": label}, {"when": "temporal_range"}
        if rng.random() < noise:
            gold = not gold
        records.append({"id": f"{judge}-{i}", "question": "q", "output": output, "labels": labels,
                        "verifiers": verifiers, "gold": gold})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default="lenient", choices=sorted(JUDGES))
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w") as f:
        for record in judged_records(args.n, args.judge, args.noise, args.seed):
            f.write(json.dumps(record) + "\n")
    print(f"wrote {args.n} records judged {args.judge} -> {args.out}")


if __name__ == "__main__":
    main()
