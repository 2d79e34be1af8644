"""Held-out QA: the greedy pass over a held-out manifest, scored by the verifier: accuracy overall, per label
type and per source, with 95% confidence intervals, and a few right and wrong examples (what ``vstar eval
--manifest`` and every cycle of ``vstar run`` report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vstar_ray.evaluation.stats import wilson
from vstar_ray.io import atomic_write_text
from vstar_ray.results import EvalResult


def _cell(correct: int, total: int) -> dict[str, Any]:
    return {"accuracy": round(correct / total, 4) if total else 0.0, "correct": correct, "total": total,
            "ci95": wilson(correct, total)}


def score_eval(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-label-type (from each label's verdict) and per-source (the whole record) accuracy of an eval pass's
    rows. Videos that failed to decode are left out of the accuracies and counted in ``failed_videos``."""
    by_type: dict[str, list[int]] = {}
    by_source: dict[str, list[int]] = {}
    correct = total = failed = 0
    for row in rows:
        if row.get("error"):
            failed += 1
            continue
        ok = bool(row.get("direct_verified"))
        total += 1
        correct += ok
        src = by_source.setdefault(row.get("source") or "", [0, 0])
        src[0] += ok
        src[1] += 1
        verdicts = json.loads(row["direct_verdicts"]) if row.get("direct_verdicts") else {}
        verifiers = json.loads(row["verifiers"]) if isinstance(row["verifiers"], str) else row["verifiers"]
        for name, kind in verifiers.items():
            cell = by_type.setdefault(kind, [0, 0])
            cell[0] += bool(verdicts.get(name))
            cell[1] += 1
    return {
        "overall": _cell(correct, total),
        "by_type": {k: _cell(*v) for k, v in sorted(by_type.items())},
        "by_source": {k: _cell(*v) for k, v in sorted(by_source.items())},
        "failed_videos": failed,
    }


def examples(rows: list[dict[str, Any]], k: int = 3) -> dict[str, list[dict]]:
    right, wrong = [], []
    for row in rows:
        if row.get("error"):
            continue
        item = {"id": row["id"], "prompt": row.get("prompt") or row.get("question"), "answer": row.get("answer"),
                "labels": row["labels"], "extracted": row.get("direct_extracted")}
        (right if row.get("direct_verified") else wrong).append(item)
    return {"right": right[:k], "wrong": wrong[:k]}


def markdown(scores: dict, samples: dict, title: str = "Held-out evaluation") -> str:
    def table(name: str, cells: dict) -> list[str]:
        out = [f"| {name} | accuracy | 95% CI | correct / total |", "|---|---|---|---|"]
        for key, c in cells.items():
            out.append(f"| {key or '(none)'} | {c['accuracy']:.3f} | {c['ci95'][0]:.3f}-{c['ci95'][1]:.3f} | "
                       f"{c['correct']} / {c['total']} |")
        return out

    lines = [f"# {title}", "", "Greedy decoding; an answer is right when the parser-verifier accepts it.", ""]
    lines += table("split", {"all": scores["overall"]}) + [""]
    lines += table("label type", scores["by_type"]) + [""] + table("source", scores["by_source"])
    lines += ["", f"Videos that could not be decoded (left out): {scores['failed_videos']}"]
    for kind in ("right", "wrong"):
        lines += ["", f"## Examples, {kind}", ""]
        for ex in samples[kind]:
            lines += [f"**{ex['id']}** labels `{ex['labels']}`, parsed `{ex['extracted']}`", "",
                      "```", f"PROMPT: {ex['prompt']}", f"ANSWER: {ex['answer']}", "```", ""]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, path: str | Path, title: str = "Held-out evaluation") -> dict:
    rows = pq.read_table(out_dir).to_pylist()
    scores = score_eval(rows)
    atomic_write_text(path, markdown(scores, examples(rows), title))
    return scores


def held_out(cfg, manifest: str, model: str, folder: Path, report_name: str = "eval_report.md", pool=None,
             resume: bool = False, label: str = "eval") -> EvalResult:
    """The greedy held-out pass into ``folder/eval``, its scores, and ``folder/<report_name>``."""
    from vstar_ray.generation.pipeline import run_pass

    summary = run_pass(cfg, manifest, model, folder / "eval", "eval", pool=pool, resume=resume, label=label)
    scores = write_report(folder / "eval", folder / report_name, f"Held-out evaluation: {model}")
    return EvalResult(accuracy=summary.accuracy, videos=summary.videos, failed_videos=summary.failed_videos,
                      scores=scores, nodes=summary.nodes, seconds=summary.seconds)
