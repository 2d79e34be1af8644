"""What a kit's seed (or any checkpoint) answers: held-out accuracy per label type of its greedy answers, asked
plainly and with the true label as the hint, and a few answers of each kind.

    .venv/bin/python benchmarks/seed_answers.py --kit KIT [--model PATH] [--examples 3]

``KIT`` is a demo kit folder (``vstar_ray/demo/kit.py``); ``--model`` defaults to its seed. In process, no Ray:
each held-out video is decoded like the pipeline decodes it, answered by ``models.generate`` and checked by the
verifier with the kit's thresholds. "hint" is how often the model concludes with a label it is given, which is
what label rationalization needs; "plain" is held-out accuracy as a run measures it.
"""

from __future__ import annotations

import argparse
import collections
import json

import pyarrow.parquet as pq
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()

    from vstar_ray import models, prompts
    from vstar_ray.evaluation.heldout import score_eval
    from vstar_ray.io import read_json
    from vstar_ray.verify import load_thresholds, verify_many
    from vstar_ray.data.video import decode_clip

    torch.set_num_threads(2)
    path = args.model or f"{args.kit}/seed"
    model, processor = models.load_model(path).eval(), models.load_processor(path)
    thresholds = load_thresholds(f"{args.kit}/thresholds.yaml")
    rows = pq.read_table(f"{args.kit}/heldout.parquet").to_pylist()
    spec = read_json(f"{args.kit}/kit.json")["spec"]  # decoded as the kit's runs decode them
    frames = [decode_clip(f"{args.kit}/{r['video']}", spec["num_frames"], spec["frame_size"]).frames for r in rows]
    kinds = [next(iter(json.loads(r["verifiers"]).values())) for r in rows]
    print(f"{path}: {len(rows)} held-out videos")
    for mode in ("plain", "hint"):
        prompts = [prompts.answer_prompt(r["question"]) if mode == "plain"
                   else prompts.rationalize_prompt(r["question"], json.loads(r["labels"])) for r in rows]
        answers = []
        for i in range(0, len(rows), 16):
            answers += models.generate(model, processor, frames[i:i + 16], prompts[i:i + 16], 96, False, 1.0)
        verdicts = verify_many([(r["id"], a, r["labels"], r["verifiers"]) for r, a in zip(rows, answers)], thresholds)
        scores = score_eval([{"direct_verified": v["verified"], "direct_verdicts": json.dumps(v["verdicts"]),
                              "verifiers": r["verifiers"]} for r, v in zip(rows, verdicts)])
        print(f"{mode}: " + ", ".join(f"{k} {c['accuracy']:.3f}" for k, c in scores["by_type"].items()))
        shown: collections.Counter = collections.Counter()
        for r, kind, a, v in zip(rows, kinds, answers, verdicts):
            if shown[kind, v["verified"]] < args.examples:
                shown[kind, v["verified"]] += 1
                print(f"  {'right' if v['verified'] else 'wrong'} {r['labels']}: {a}")


if __name__ == "__main__":
    main()
