"""What each part of Video-STaR contributes: the same data, seed and config run as four variants.

    full                Video-STaR as configured
    no_filter           train on every direct answer, verified or not (``train_on: unfiltered``)
    no_rationalization  no label rationalization (``rationalize: false``)
    label_only          train on template answers that state the label, no generation
                        (``train_on: labels``: the paper's Video-LLaVA+ baseline)

Each variant is a normal resumable run in ``DIR/<variant>/``; ``DIR/ablations.json`` holds
``{variant: [seed accuracy, accuracy after each cycle]}``, with ``ablations.md`` and ``ablations.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vstar_ray.config import Config, ConfigError
from vstar_ray.console import say
from vstar_ray.io import atomic_write_json, atomic_write_text

VARIANTS: dict[str, dict] = {
    "full": {},
    "no_filter": {"train_on": "unfiltered", "rationalize": False},  # rationalizations would go unused
    "no_rationalization": {"rationalize": False},
    "label_only": {"train_on": "labels"},
}


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()] if text else list(VARIANTS)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise ConfigError(f"--variants: unknown {unknown or text!r}; choose from {', '.join(VARIANTS)}")
    return names


def run(cfg: Config, out: str | Path, variants: list[str], resume: bool = False) -> dict[str, list[float]]:
    from vstar_ray import run as video_star

    out = Path(out).resolve()
    results: dict[str, list[float]] = {}
    for name in variants:
        say(f"ablation {name}: {VARIANTS[name] or 'as configured'}")
        record = video_star.run(dataclasses.replace(cfg, **VARIANTS[name]), out / name, resume=resume)
        results[name] = record.accuracies()
        atomic_write_json(out / "ablations.json", results)  # after every variant: a partial table survives a crash
    atomic_write_text(out / "ablations.md", markdown(results))
    plot(results, out / "ablations.png")
    print(markdown(results), flush=True)
    return results


def gain(accuracies: list[float]) -> float:
    return accuracies[-1] - accuracies[0]


def markdown(results: dict[str, list[float]]) -> str:
    cycles = max(len(a) for a in results.values()) - 1
    head = ["variant", "seed"] + [f"cycle {k}" for k in range(1, cycles + 1)] + ["gain"]
    lines = ["# Ablations", "", "Held-out accuracy of the seed model and after each cycle (same data and seed).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, acc in results.items():
        cells = [f"{a:.3f}" for a in acc] + [""] * (cycles + 1 - len(acc))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {gain(acc):+.3f} |")
    if "full" in results and len(results) > 1:
        full = results["full"]
        others = {n: a for n, a in results.items() if n != "full"}
        lines += ["", f"- full ends at or above every ablation: "
                      f"{'yes' if all(full[-1] >= a[-1] for a in others.values()) else 'no'} "
                      f"({', '.join(f'{n} {a[-1]:.3f}' for n, a in others.items())} vs full {full[-1]:.3f})"]
        if "no_filter" in results:
            half = gain(full) / 2
            lines.append(f"- no_filter gains at most half of what full gains: "
                         f"{'yes' if gain(results['no_filter']) <= half else 'no'} "
                         f"({gain(results['no_filter']):+.3f} vs {half:+.3f})")
    lines += ["", "![held-out accuracy per cycle, per variant](ablations.png)", ""]
    return "\n".join(lines)


def plot(results: dict[str, list[float]], path: Path) -> None:
    from vstar_ray.report import cycle_axes, save_cycle_plot

    fig, ax = cycle_axes()
    for name, acc in results.items():
        ax.plot(range(len(acc)), acc, marker="o", label=name)
    ax.set_ylabel("held-out accuracy")
    save_cycle_plot(fig, ax, list(range(max(len(a) for a in results.values()))), "Video-STaR ablations", path)
