"""What every judged benchmark shares: finding its videos, answering its questions on the run's generator actors,
its headline record, the files it writes, and the gain of one model over another on the same items.

A benchmark writes ``OUT/results.json`` (figures with 95% intervals, the judge's identity, ``judge_failed``,
``parse_failed`` and the cache hits), ``OUT/results.md`` and ``OUT/predictions.jsonl``: one line per item with
its prompt, prediction, the judge's replies and ``outcome`` (the item's numbers, e.g. ``{"accuracy": 1,
"score": 4}``), which ``gain`` pairs across models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vstar_ray.errors import InputError
from vstar_ray.evaluation.stats import bootstrap_gain
from vstar_ray.io import atomic_write_json, atomic_write_text, iter_jsonl, make_dir
from vstar_ray.results import Record

PREDICTIONS = "predictions.jsonl"


@dataclass
class BenchmarkResult(Record):
    """A benchmark's headline figures for one model (the stage result in a run, a row of the paper's table)."""

    benchmark: str = ""
    label: str = ""
    figures: dict = field(default_factory=dict)  # e.g. {"accuracy": 0.41, "score": 2.7}
    intervals: dict = field(default_factory=dict)  # figure -> [low, high] (95%)
    answered: int = 0
    judge_failed: int = 0
    parse_failed: int = 0
    seconds: float = 0.0

    def line(self, name: str) -> str:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in self.figures.items())
        failed = f", {self.judge_failed} judge failed" if self.judge_failed else ""
        unparsed = f", {self.parse_failed} unparsed" if self.parse_failed else ""
        return f"{name}: {figures} on {self.answered} answers{failed}{unparsed}, {self.seconds:.1f}s"


def find_video(index, name: str) -> str | None:
    """A benchmark's video by the name its files use: ``name.<ext>``, the stem of ``name`` if it has an extension,
    or ActivityNet's ``v_<name>.<ext>`` (its QA files drop the prefix its video files have)."""
    stem = Path(name).stem if Path(name).suffix.lower() in (".mp4", ".avi", ".mkv", ".webm", ".gif", ".mov") else name
    return index.find(stem) or index.find(f"v_{stem}")


def answer(cfg, rows: list[dict], videos_dir: Path, model: str, out: Path, pool=None) -> tuple[list[dict], list[str]]:
    """Greedy answers to ``rows`` (each with ``id``, ``video`` relative to ``videos_dir`` and its ``prompt``) from
    the generator actors; returns the rows with their ``prediction``, and the ids of rows whose video could not be
    decoded (left out)."""
    from vstar_ray.generation.pipeline import answer_prompts

    make_dir(out, "the benchmark folder")
    pq.write_table(pa.Table.from_pylist(rows), out / "questions.parquet")
    answer_prompts(cfg, str(out / "questions.parquet"), str(videos_dir), model, out / "answers", pool=pool)
    answered, failed = [], []
    for row in pq.read_table(out / "answers").to_pylist():
        if row["error"]:
            failed.append(row["id"])
            continue
        answered.append({k: v for k, v in row.items() if k in rows[0]} | {"prediction": row["answer"]})
    order = {r["id"]: i for i, r in enumerate(rows)}
    return sorted(answered, key=lambda r: order[r["id"]]), sorted(failed)


def earlier(out: Path) -> tuple[list[str], list[str]]:
    """The videos an earlier scoring in ``out`` found missing and could not decode (``--rescore`` keeps them)."""
    path = out / "results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data.get("missing_videos", []), data.get("failed_videos", [])


def read_predictions(out: Path) -> list[dict]:
    """The items of an earlier scoring (``--rescore``: judge them again, the model is not run)."""
    path = out / PREDICTIONS
    if not path.exists():
        raise InputError(f"{out} holds no {PREDICTIONS} to score again (run the benchmark without --rescore)")
    items = []
    for n, item, why in iter_jsonl(path):
        if why:
            raise InputError(f"{path} line {n}: {why}")
        items.append(item)
    return items


def write(out: Path, summary: dict, items: list[dict], markdown: str) -> None:
    make_dir(out, "the benchmark folder")
    atomic_write_json(out / "results.json", summary)
    atomic_write_text(out / PREDICTIONS, "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
    atomic_write_text(out / "results.md", markdown)


def gain(before: Path, after: Path, figure: str, where=None) -> dict | None:
    """``figure``'s change from the model scored in ``before`` to the one in ``after``, over the items both
    scored (and ``where(item)`` accepts), with a 95% paired-bootstrap interval; None when they share none."""
    def outcomes(folder: Path) -> dict:
        path = folder / PREDICTIONS
        if not path.exists():
            return {}
        return {i["id"]: i["outcome"][figure] for _, i, why in iter_jsonl(path)
                if not why and (i.get("outcome") or {}).get(figure) is not None and (where is None or where(i))}

    a, b = outcomes(before), outcomes(after)
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    x, y = [a[k] for k in shared], [b[k] for k in shared]
    return {"gain": round(sum(y) / len(y) - sum(x) / len(x), 4), "ci95": bootstrap_gain(x, y), "items": len(shared)}
