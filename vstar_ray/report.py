"""The per-cycle table (terminal and ``report.md``) and plot (``report.png``)."""

from __future__ import annotations

from pathlib import Path

from vstar_ray.io import atomic_path, atomic_write_text
from vstar_ray.results import Counts, CycleRecord

COLUMNS = ("cycle", "videos", "failed", "answers", "kept direct", "kept rationalized", "rejected", "yield",
           "eval accuracy", "seconds")


def _cycles(metrics: dict) -> list[CycleRecord]:
    return [CycleRecord.from_json(e) for e in metrics["cycles"]]


def rows(metrics: dict) -> list[list[str]]:
    base = metrics["baseline"]
    out = [["seed", str(base["videos"]), str(base["failed_videos"]), "", "", "", "", "",
            f"{base['eval_accuracy']:.3f}", f"{base['seconds']:.0f}"]]
    for e in _cycles(metrics):
        out.append([str(e.cycle), str(e.videos), str(e.failed_videos), str(e.answers), str(e.kept_direct),
                    str(e.kept_rationalized), str(e.rejected), f"{e.yield_:.2f}", f"{e.eval_accuracy:.3f}",
                    f"{e.seconds:.0f}"])
    return out


def table(metrics: dict) -> str:
    body = rows(metrics)
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths])] + [line(r) for r in body])


def cycle_line(record: CycleRecord) -> str:
    return (f"cycle {record.cycle}: kept {record.kept_direct} direct + {record.kept_rationalized} rationalized of "
            f"{record.answers} answers (yield {record.yield_:.2f}), held-out accuracy {record.eval_accuracy:.3f}")


def markdown(metrics: dict) -> str:
    lines = ["# Video-STaR run report", "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(metrics)]
    lines += ["", "Held-out accuracy is the share of held-out videos whose greedy answer passes the verifier.",
              "Yield is kept answers / answers generated on the training videos (a direct answer per video "
              "and a rationalization per failed one).", "", "## Stage wall time (s)", "",
              "| cycle | " + " | ".join(("generate", "train", "eval")) + " |", "|---|---|---|---|"]
    for e in _cycles(metrics):
        t = e.timings
        lines.append(f"| {e.cycle} | {t['generate']:.1f} | {t['train']:.1f} | {t['eval']:.1f} |")
    lines += _suite_tables(metrics)
    lines += _per_source(metrics)
    lines += _trained_answers(metrics)
    lines += ["", "![accuracy and yield per cycle](report.png)", ""]
    return "\n".join(lines)


def _entries(metrics: dict) -> list[tuple[str, dict]]:
    return [("seed", metrics["baseline"])] + [(str(e["cycle"]), e) for e in metrics["cycles"]]


def _suite_tables(metrics: dict) -> list[str]:
    """Held-out accuracy per label type (95% CI) and TempCompass per task, seed and every cycle."""
    lines: list[str] = []
    entries = _entries(metrics)
    types = sorted({t for _, e in entries for t in e.get("eval", {}).get("by_type", {})})
    if types:
        lines += ["", "## Held-out accuracy by label type (95% CI)", "", "| cycle | " + " | ".join(types) + " |",
                  "|---|" + "---|" * len(types)]
        for name, e in entries:
            by_type = e.get("eval", {}).get("by_type", {})
            cells = [f"{by_type[t]['accuracy']:.3f} ({by_type[t]['ci95'][0]:.2f}-{by_type[t]['ci95'][1]:.2f})"
                     if t in by_type else "" for t in types]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    tasks = sorted({t for _, e in entries for t in e.get("tempcompass", {})})
    if tasks:
        lines += ["", "## TempCompass accuracy by task", "", "| cycle | " + " | ".join(tasks) + " |",
                  "|---|" + "---|" * len(tasks)]
        for name, e in entries:
            tc = e.get("tempcompass", {})
            lines.append(f"| {name} | " + " | ".join(f"{tc[t]:.3f}" if t in tc else "" for t in tasks) + " |")
    return lines


def _per_source(metrics: dict) -> list[str]:
    """Each source's yield, kept and rejected answers per cycle, and its held-out accuracy (runs that mix
    several labeled datasets)."""
    records = _cycles(metrics)
    sources = sorted({s for e in records for s in e.by_source} | set(metrics["baseline"].get("eval", {})
                                                                       .get("by_source", {})))
    if len(sources) < 2:
        return []
    lines = ["", "## Per source", "", "| cycle | source | videos | answers | kept direct | kept rationalized | "
             "rejected | yield | held-out accuracy (95% CI) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in _entries(metrics):
        record = next((r for r in records if str(r.cycle) == name), None)
        for source in sources:
            counts = Counts(**record.by_source[source]) if record and source in record.by_source else None
            held = entry.get("eval", {}).get("by_source", {}).get(source)
            cells = ([str(counts.videos), str(counts.answers), str(counts.kept_direct), str(counts.kept_rationalized),
                      str(counts.rejected), f"{counts.yield_:.2f}"] if counts else [""] * 6)
            accuracy = f"{held['accuracy']:.3f} ({held['ci95'][0]:.2f}-{held['ci95'][1]:.2f})" if held else ""
            lines.append(f"| {name} | {source or '(none)'} | " + " | ".join(cells) + f" | {accuracy} |")
    return lines


def _trained_answers(metrics: dict) -> list[str]:
    """Mean length of the answers each cycle trained on, and a few of the last cycle's."""
    cycles = [e for e in _cycles(metrics) if e.trained_answers]
    if not cycles:
        return []
    lines = ["", "## Answers trained on", "",
             "| cycle | answers | samples (with hinted copies) | mean length (words) |", "|---|---|---|---|"]
    for e in cycles:
        stats = e.trained_answers
        lines.append(f"| {e.cycle} | {stats.get('answers', '')} | {e.train.get('samples') or ''} | "
                     f"{stats['mean_words']:.1f} |")
    last = cycles[-1]
    if last.trained_answers["examples"]:
        lines += ["", f"Examples from cycle {last.cycle}:", ""]
        for ex in last.trained_answers["examples"]:
            lines.append(f"- `{ex['id']}` ({ex['from']}): {ex['answer']}")
    return lines


def cycle_axes():
    """A figure for accuracies (0-1) per cycle; finish it with ``save_cycle_plot``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 3.6), dpi=110)


def save_cycle_plot(fig, ax, cycles: list[int], title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax.set_xlabel("cycle (0 = seed model)")
    ax.set_xticks(cycles)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def plot(metrics: dict, path: Path) -> None:
    records = _cycles(metrics)
    cycles = [0] + [e.cycle for e in records]
    accuracy = [metrics["baseline"]["eval_accuracy"]] + [e.eval_accuracy for e in records]
    fig, ax = cycle_axes()
    ax.plot(cycles, accuracy, marker="o", label="held-out accuracy")
    if metrics["cycles"]:
        ax.plot([e.cycle for e in records], [e.yield_ for e in records], marker="s",
                label="yield (kept / answers generated)")
    save_cycle_plot(fig, ax, cycles, "Video-STaR", path)


def write(out: Path, metrics: dict) -> None:
    atomic_write_text(out / "report.md", markdown(metrics))
    plot(metrics, out / "report.png")
