"""Held-out QA: the greedy pass over a held-out manifest, scored by the verifier: accuracy overall, per label
type and per source, with 95% confidence intervals, and a few right and wrong examples (what ``vstar eval
--manifest`` and every cycle of ``vstar run`` report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vstar_ray.errors import InputError
from vstar_ray.evaluation.stats import mean_score, proportion, wilson
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


def judge_rows(rows: list[dict[str, Any]], judge, out: Path) -> dict[str, Any]:
    """The paper's scoring: each decoded row's answer judged against its labels rendered as text, with the
    Video-ChatGPT QA prompt; Accuracy / Score with intervals overall, per source and per label type, next to the
    verifier's accuracy on the same answers. Writes ``out/predictions.jsonl`` (one line per row, ``outcome``)."""
    from vstar_ray import prompts
    from vstar_ray.evaluation.benchmark import write
    from vstar_ray.evaluation.judge_prompts import parse_qa, qa_request

    rows = [r for r in rows if not r.get("error")]
    items = [{"id": r["id"], "source": r.get("source") or "", "question": r["question"], "prediction": r["answer"],
              "gold": prompts.render_label(json.loads(r["labels"])), "types": sorted(set(json.loads(r["verifiers"])
                                                                                       .values())),
              "verified": bool(r.get("direct_verified"))} for r in rows]
    replies = judge.ask([qa_request(i["question"], i["gold"], i["prediction"],
                                    {"benchmark": "heldout", "question": i["question"], "answer": i["gold"],
                                     "prediction": i["prediction"]}) for i in items])
    for item, reply in zip(items, replies):
        verdict = parse_qa(reply.text) if reply.text is not None else None
        item.update(reply=reply.text, judge_error=reply.error, verdict=verdict,
                    outcome={"accuracy": int(verdict["yes"]) if verdict else None,
                             "score": verdict["score"] if verdict else None, "verifier": int(item["verified"])})

    def cut(group: list[dict]) -> dict:
        decided = [i for i in group if i["verdict"]]
        score = mean_score([i["verdict"]["score"] for i in decided])
        return {**proportion(sum(i["verdict"]["yes"] for i in decided), len(decided)), "score": score["score"],
                "score_ci95": score["ci95"], "verifier": proportion(sum(i["verified"] for i in group), len(group))}

    judged = {"overall": cut(items),
              "by_source": {s: cut([i for i in items if i["source"] == s]) for s in sorted({i["source"] for i in items})},
              "by_type": {t: cut([i for i in items if t in i["types"]]) for t in sorted({t for i in items
                                                                                         for t in i["types"]})},
              "judge_failed": sum(1 for i in items if i["reply"] is None),
              "parse_failed": sum(1 for i in items if i["reply"] is not None and i["verdict"] is None),
              "judge": judge.record()}
    write(out, {"benchmark": "heldout (paper protocol)", **judged}, items, judged_markdown(judged))
    return judged


def judged_markdown(judged: dict) -> str:
    def rows(name: str, cells: dict) -> list[str]:
        out = [f"| {name} | Accuracy (95% CI) | Score (95% CI) | verifier accuracy (95% CI) | judged |",
               "|---|---|---|---|---|"]
        for key, c in cells.items():
            v = c["verifier"]
            out.append(f"| {key or '(none)'} | {c['accuracy']:.3f} ({c['ci95'][0]:.2f}-{c['ci95'][1]:.2f}) | "
                       f"{c['score']:.2f} ({c['score_ci95'][0]:.2f}-{c['score_ci95'][1]:.2f}) | {v['accuracy']:.3f} "
                       f"({v['ci95'][0]:.2f}-{v['ci95'][1]:.2f}) | {c['total']} |")
        return out

    judge = judged["judge"]
    lines = ["## The paper's protocol: judged against the labels", "",
             f"The bare question was asked; {judge['model']} ({judge['backend']}, temperature {judge['temperature']}) "
             f"judged each answer against the labels rendered as text with the Video-ChatGPT QA prompt. "
             f"{judged['judge_failed']} judge failed and {judged['parse_failed']} replies unparsed (left out).", ""]
    lines += rows("split", {"all": judged["overall"]}) + [""] + rows("source", judged["by_source"]) + [""]
    lines += rows("label type", judged["by_type"])
    return "\n".join(lines) + "\n"


def held_out(cfg, manifest: str, model: str, folder: Path, report_name: str = "eval_report.md", pool=None,
             resume: bool = False, label: str = "eval", judge=None, rescore: bool = False) -> EvalResult:
    """The greedy held-out pass into ``folder/eval``, its verifier scores, under ``eval.protocol: paper`` the
    judge's (``folder/judged/``), and ``folder/<report_name>``. ``rescore``: the answers already in
    ``folder/eval`` are scored again, the model is not run."""
    from vstar_ray.generation.pipeline import run_pass, summarize

    if rescore:
        if not (folder / "eval").is_dir():
            raise InputError(f"{folder}/eval holds no answers to score again (run without --rescore)")
        summary = summarize(folder / "eval")
    else:
        summary = run_pass(cfg, manifest, model, folder / "eval", "eval", pool=pool, resume=resume, label=label)
    rows = pq.read_table(folder / "eval").to_pylist()
    scores = score_eval(rows)
    judged = None
    text = markdown(scores, examples(rows), f"Held-out evaluation: {model}")
    if cfg.eval.protocol == "paper":
        judged = judge_rows(rows, judge, folder / "judged")
        text += "\n" + judged_markdown(judged)
    atomic_write_text(folder / report_name, text)
    return EvalResult(accuracy=summary.accuracy, videos=summary.videos, failed_videos=summary.failed_videos,
                      scores=scores, judged=judged, nodes=summary.nodes, seconds=summary.seconds,
                      frames=summary.frames)
