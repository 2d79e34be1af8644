"""The paper's table in a run's report: rows are the seed and each cycle, columns each judged set's Accuracy /
Score (the held-out sources under ``eval.protocol: paper``, then every benchmark of ``eval.benchmarks``), and a
last row with the last cycle's gain over the seed and its 95% paired-bootstrap interval over the same items."""

from __future__ import annotations

from pathlib import Path

from vstar_ray.results import RunRecord

ASPECT_ORDER = ("correctness", "detail", "context", "temporal", "consistency")


def _folder(out: Path, name: str) -> Path:
    return out / ("baseline" if name == "seed" else f"cycle_{name}")


def _columns(record: RunRecord) -> list[tuple[str, str, str]]:
    """``(header, kind, key)``: kind ``judged`` (key: a source) or a benchmark's name (key: its label)."""
    columns = []
    sources = sorted({s for _, ev in record.evaluations() for s in (ev.judged or {}).get("by_source", {})})
    columns += [(f"{s or 'held-out'} (judged)", "judged", s) for s in sources]
    labels: dict[str, str] = {}
    for _, ev in record.evaluations():
        labels.update({label: b["benchmark"] for label, b in ev.benchmarks.items()})
    columns += [(label, kind, label) for label, kind in labels.items()]
    return columns


def _cell(ev, kind: str, key: str) -> str:
    if kind == "judged":
        c = (ev.judged or {}).get("by_source", {}).get(key)
        return f"{100 * c['accuracy']:.1f} / {c['score']:.2f}" if c and c["total"] else ""
    b = ev.benchmarks.get(key)
    if not b:
        return ""
    f = b["figures"]
    if kind == "openqa":
        return f"{100 * f['accuracy']:.1f} / {f['score']:.2f}"
    if kind == "videochatgpt":
        return " / ".join(f"{f[a]:.2f}" for a in ASPECT_ORDER)
    return f"{100 * f['average']:.1f}"


def _gain(out: Path, last: str, kind: str, key: str) -> str:
    from vstar_ray.evaluation.benchmark import gain

    def fmt(g: dict | None, scale: float, digits: int) -> str:
        if g is None:
            return "?"
        return f"{scale * g['gain']:+.{digits}f} ({scale * g['ci95'][0]:+.{digits}f} to {scale * g['ci95'][1]:+.{digits}f})"

    seed, cycle = _folder(out, "seed"), _folder(out, last)
    if kind == "judged":
        where = (lambda item: item.get("source", "") == key)  # noqa: E731
        return (fmt(gain(seed / "judged", cycle / "judged", "accuracy", where), 100, 1) + " / "
                + fmt(gain(seed / "judged", cycle / "judged", "score", where), 1, 2))
    seed, cycle = seed / "benchmarks" / key, cycle / "benchmarks" / key
    if kind == "openqa":
        return fmt(gain(seed, cycle, "accuracy"), 100, 1) + " / " + fmt(gain(seed, cycle, "score"), 1, 2)
    if kind == "videochatgpt":
        return " / ".join(fmt(gain(seed, cycle, a), 1, 2) for a in ASPECT_ORDER)
    return fmt(gain(seed, cycle, "accuracy"), 100, 1)


def paper_table(record: RunRecord, out: Path | None) -> list[str]:
    columns = _columns(record)
    if not columns:
        return []
    lines = ["", "## Accuracy / Score as the paper reports them", "",
             "Accuracy (%) / Score (0-5) judged by an LLM (held-out sources: against the labels, the bare question "
             "asked; Video-ChatGPT benchmark: correctness / detail / context / temporal / consistency; TempCompass: "
             "accuracy averaged over its tasks).", "",
             "| model | " + " | ".join(h for h, _, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for name, ev in record.evaluations():
        lines.append(f"| {name} | " + " | ".join(_cell(ev, kind, key) for _, kind, key in columns) + " |")
    if record.cycles and out is not None:
        last = str(record.cycles[-1].cycle)
        lines.append(f"| gain, cycle {last} over seed (95% CI) | "
                     + " | ".join(_gain(out, last, kind, key) for _, kind, key in columns) + " |")
    return lines
