"""The per-cycle table (terminal and ``report.md``) and plot (``report.png``) of a run's ``RunRecord``."""

from __future__ import annotations

from pathlib import Path

from vstar_ray.io import atomic_path, atomic_write_text
from vstar_ray.report_paper import paper_table
from vstar_ray.results import Counts, RunRecord

COLUMNS = ("cycle", "train videos", "failed", "answers", "kept direct", "kept rationalized", "rejected", "yield",
           "held-out accuracy", "seconds")


def rows(record: RunRecord) -> list[list[str]]:
    """The seed row holds the seed model's held-out accuracy; a cycle row its generation over the training
    videos and its checkpoint's held-out accuracy."""
    base = record.baseline
    out = [["seed", "", "", "", "", "", "", "", f"{base.accuracy:.3f}", f"{base.seconds:.0f}"]]
    for c in record.cycles:
        out.append([str(c.cycle), str(c.videos), str(c.failed_videos), str(c.answers), str(c.kept_direct),
                    str(c.kept_rationalized), str(c.rejected), f"{c.yield_:.2f}", f"{c.eval_accuracy:.3f}",
                    f"{c.seconds:.0f}"])
    return out


def table(record: RunRecord) -> str:
    body = rows(record)
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths])] + [line(r) for r in body])


def markdown(record: RunRecord, out: Path | None = None) -> str:
    base = record.baseline
    lines = ["# Video-STaR run report", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(record)]
    lines += ["", f"Held-out accuracy is the share of the {base.videos} held-out videos whose greedy answer passes "
                  "the verifier.",
              "Yield is kept answers / answers generated on the training videos (a direct answer per video "
              "and a rationalization per failed one).", "", "## Stage wall time (s)", "",
              "| cycle | " + " | ".join(("generate", "train", "eval")) + " |", "|---|---|---|---|"]
    for c in record.cycles:
        t = c.timings
        lines.append(f"| {c.cycle} | {t['generate']:.1f} | {t['train']:.1f} | {t['eval']:.1f} |")
    lines += _plugin_errors(record)
    lines += _suite_tables(record)
    lines += paper_table(record, out)
    lines += _per_source(record)
    lines += _trained_answers(record)
    lines += ["", "![accuracy and yield per cycle](report.png)", "", "## Take it away (docs/export.md)", "",
              "```bash", f"vstar export model --run {out or 'DIR'} --cycle best --out EXPORT_DIR   # a plain HF folder",
              f"vstar export data --run {out or 'DIR'} --out DATA_DIR                      # the instruction data",
              "```", ""]
    return "\n".join(lines)


def _ci(cell: dict) -> str:
    return f"{cell['accuracy']:.3f} ({cell['ci95'][0]:.2f}-{cell['ci95'][1]:.2f})"


def _plugin_errors(record: RunRecord) -> list[str]:
    """Rows a verifier plug-in raised on (counted as failed), per cycle, plug-in and exception."""
    failing = [(c.cycle, kind, n) for c in record.cycles for kind, n in c.plugin_errors.items()]
    if not failing:
        return []
    return (["", "## Rows a verifier plug-in failed on", "", "| cycle | plug-in: exception | rows |", "|---|---|---|"]
            + [f"| {k} | {kind} | {n} |" for k, kind, n in failing]
            + ["", "Each row's `error` in `cycle_N/generated/` has the exception's message."])


def _suite_tables(record: RunRecord) -> list[str]:
    """Held-out accuracy per label type (95% CI), seed and every cycle."""
    lines: list[str] = []
    models = record.evaluations()
    types = sorted({t for _, ev in models for t in ev.by_type()})
    if types:
        lines += ["", "## Held-out accuracy by label type (95% CI)", "", "| cycle | " + " | ".join(types) + " |",
                  "|---|" + "---|" * len(types)]
        for name, ev in models:
            lines.append(f"| {name} | " + " | ".join(_ci(ev.by_type()[t]) if t in ev.by_type() else "" for t in types)
                         + " |")
    return lines


def _per_source(record: RunRecord) -> list[str]:
    """Each source's yield, kept and rejected answers per cycle, and its held-out accuracy (runs that mix
    several labeled datasets)."""
    sources = sorted({s for c in record.cycles for s in c.by_source} | set(record.baseline.by_source()))
    if len(sources) < 2:
        return []
    lines = ["", "## Per source", "", "| cycle | source | videos | answers | kept direct | kept rationalized | "
             "rejected | yield | held-out accuracy (95% CI) |", "|---|---|---|---|---|---|---|---|---|"]
    cycles = {str(c.cycle): c for c in record.cycles}
    for name, ev in record.evaluations():
        cycle = cycles.get(name)
        for source in sources:
            counts = Counts.from_json(cycle.by_source[source]) if cycle and source in cycle.by_source else None
            held = ev.by_source().get(source)
            cells = ([str(counts.videos), str(counts.answers), str(counts.kept_direct), str(counts.kept_rationalized),
                      str(counts.rejected), f"{counts.yield_:.2f}"] if counts else [""] * 6)
            lines.append(f"| {name} | {source or '(none)'} | " + " | ".join(cells) + f" | {_ci(held) if held else ''} |")
    return lines


def _trained_answers(record: RunRecord) -> list[str]:
    """Mean length of the answers each cycle trained on, and a few of the last cycle's."""
    cycles = [c for c in record.cycles if c.trained_answers]
    if not cycles:
        return []
    lines = ["", "## Answers trained on", "",
             "| cycle | answers | samples (with hinted copies) | mean length (words) |", "|---|---|---|---|"]
    for c in cycles:
        stats = c.trained_answers
        lines.append(f"| {c.cycle} | {stats.get('answers', '')} | {c.train.get('samples') or ''} | "
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


def plot(record: RunRecord, path: Path) -> None:
    cycles = [0] + [c.cycle for c in record.cycles]
    fig, ax = cycle_axes()
    ax.plot(cycles, record.accuracies(), marker="o", label="held-out accuracy")
    if record.cycles:
        ax.plot([c.cycle for c in record.cycles], [c.yield_ for c in record.cycles], marker="s",
                label="yield (kept / answers generated)")
    save_cycle_plot(fig, ax, cycles, "Video-STaR", path)


def write(out: Path, record: RunRecord) -> None:
    atomic_write_text(out / "report.md", markdown(record, out))
    plot(record, out / "report.png")
