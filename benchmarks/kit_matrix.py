"""Is the demo's gain a property of Video-STaR or of one draw? The demo on three kit draws x three run seeds,
and the ablations on every kit.

    .venv/bin/python benchmarks/kit_matrix.py [--kits 0,1,2] [--seeds 0,1,2] [--out /tmp/kit-matrix]

A kit draw (``KitSpec(seed=k)``) is other videos and another seed model pretrained by the same recipe; a run
seed changes sampling, data order and each finetune's initialisation. For every kit: ``full`` (the demo's
config) with every run seed, and ``no_filter``, ``no_rationalization``, ``label_only`` with the first run seed.
Writes ``OUT/matrix.json``, ``OUT/matrix.md`` (held-out accuracy per cycle, mean ± std over run seeds, per label
type; the goal checks) and ``OUT/matrix.png``; every run stays in ``OUT/kit<k>/...`` and resumes if interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from vstar_ray import console, preflight
from vstar_ray import run as video_star
from vstar_ray.evaluation import ablations
from vstar_ray.config import load_config
from vstar_ray.demo.kit import KitSpec, ensure_kit
from vstar_ray.io import atomic_write_json, atomic_write_text

GOAL_GAIN = 0.20


def kit_config(kit: Path, seed: int):
    return preflight.in_kit(load_config("configs/demo.yaml", [f"seed={seed}", "demo_kit="]), kit)


def curve(metrics: dict) -> dict:
    types = sorted(metrics["baseline"]["eval"]["by_type"])
    entries = [metrics["baseline"]] + metrics["cycles"]
    return {"accuracy": [e["eval_accuracy"] for e in entries],
            "by_type": {t: [e["eval"]["by_type"][t]["accuracy"] for e in entries] for t in types},
            "yield": [None] + [(c["kept_direct"] + c["kept_rationalized"]) / c["answers"] if c["answers"] else None
                               for c in metrics["cycles"]]}  # label_only generates nothing


def run(cfg, out: Path) -> dict:
    done = out / "metrics.json"
    if done.exists() and len(json.loads(done.read_text())["cycles"]) == cfg.cycles:
        return json.loads(done.read_text())
    return video_star.run(cfg, out, resume=(out / "state.json").exists()).to_json()


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def markdown(results: dict) -> str:
    lines = ["# Kit draws x run seeds", "", "Held-out accuracy of the seed model and after each cycle; `full`: mean ± std "
             "over run seeds.", "", "| kit | variant | seed model | cycle 1 | cycle 2 | cycle 3 | gain | goal |",
             "|---|---|---|---|---|---|---|---|"]
    for kit, r in results.items():
        full = [c["accuracy"] for c in r["full"].values()]
        gains = [ablations.gain(c) for c in full]
        gain = statistics.mean(gains)
        cells = [mean_std([c[i] for c in full]) for i in range(len(full[0]))]
        best_other = max((ablations.gain(v["accuracy"]) for v in r["ablations"].values()), default=0.0)
        no_filter = r["ablations"].get("no_filter", {}).get("accuracy")
        checks = [f"gain {gain:+.3f} {'≥' if gain >= GOAL_GAIN else '<'} {GOAL_GAIN}",
                  f"full {'≥' if gain >= best_other else '<'} every ablation"]
        if no_filter:
            checks.append(f"no_filter {ablations.gain(no_filter):+.3f} {'≤' if ablations.gain(no_filter) <= gain / 2 else '>'}"
                          f" half of full")
        lines.append(f"| {kit} | full ({len(full)} seeds) | " + " | ".join(cells) + f" | {gain:+.3f} ± "
                     f"{statistics.pstdev(gains):.3f} | {'; '.join(checks)} |")
        for name, v in r["ablations"].items():
            a = v["accuracy"]
            lines.append(f"| {kit} | {name} | " + " | ".join(f"{x:.3f}" for x in a) + f" | {ablations.gain(a):+.3f} | |")
    lines += ["", "## Per label type, full (mean over run seeds)", "", "| kit | label type | seed model | cycle 1 | "
              "cycle 2 | cycle 3 |", "|---|---|---|---|---|---|"]
    for kit, r in results.items():
        runs = list(r["full"].values())
        for t in runs[0]["by_type"]:
            lines.append(f"| {kit} | {t} | " + " | ".join(
                f"{statistics.mean(c['by_type'][t][i] for c in runs):.3f}" for i in range(len(runs[0]["accuracy"])))
                + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.4), dpi=110, sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (kit, r) in zip(axes, results.items()):
        runs = list(r["full"].values())
        xs = list(range(len(runs[0]["accuracy"])))
        for t in runs[0]["by_type"]:
            means = [statistics.mean(c["by_type"][t][i] for c in runs) for i in xs]
            ax.plot(xs, means, linestyle=":", marker=".", label=t)
        means = [statistics.mean(c["accuracy"][i] for c in runs) for i in xs]
        stds = [statistics.pstdev([c["accuracy"][i] for c in runs]) for i in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", color="black", label="full (mean ± std)")
        for name, v in r["ablations"].items():
            ax.plot(xs, v["accuracy"], linestyle="--", alpha=0.6, label=name)
        ax.set_title(f"kit {kit}")
        ax.set_xlabel("cycle (0 = seed model)")
        ax.set_xticks(xs)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out accuracy")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kits", default="0,1,2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default="no_filter,no_rationalization,label_only")
    parser.add_argument("--out", default="/tmp/kit-matrix")
    args = parser.parse_args()
    out = Path(args.out)
    console.setup(out, verbose=False)
    results: dict = {}
    for k in [int(x) for x in args.kits.split(",")]:
        kit = ensure_kit(out / f"kit{k}" / "kit", KitSpec(seed=k), log=print)
        runs = {}
        for seed in [int(x) for x in args.seeds.split(",")]:
            runs[seed] = curve(run(kit_config(kit, seed), out / f"kit{k}" / f"full_seed{seed}"))
            print(f"kit {k} seed {seed}: {runs[seed]['accuracy']}", flush=True)
        first = kit_config(kit, int(args.seeds.split(",")[0]))
        variants = {name: curve(run(dataclasses.replace(first, **ablations.VARIANTS[name]), out / f"kit{k}" / name))
                    for name in args.variants.split(",") if name}
        results[k] = {"full": runs, "ablations": variants}
        atomic_write_json(out / "matrix.json", results)
    atomic_write_text(out / "matrix.md", markdown(results))
    plot(results, out / "matrix.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
