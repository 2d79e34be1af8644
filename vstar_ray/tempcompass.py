"""TempCompass (Liu et al., 2024) in its four published task formats, scored by rule-based answer matching.

Question files (``multi-choice.json``, ``yes_no.json``, ``caption_matching.json``, ``captioning.json``)
map ``video_id -> dimension -> [{question, answer}]``; videos are ``<video_id>.<ext>`` in one folder.
Prompts follow the official inference scripts. Matching is rule-based (an option letter, a label such
as "Sentence B", "yes"/"no", or the text of exactly one option); what the rules cannot decide is
``unmatched`` and counted wrong, unless an optional judge plug-in (``module:function``, called as
``judge(task, question, prediction, answer) -> bool | None``) decides it.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any, Callable

from rapidfuzz import fuzz

TASKS = {"multi-choice": "multi-choice.json", "yes_no": "yes_no.json", "caption_matching": "caption_matching.json",
         "captioning": "captioning.json"}
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
SUFFIX = {"multi-choice": "\nPlease directly give the best option:", "yes_no": "\nPlease answer yes or no:",
          "caption_matching": "\nPlease directly give the best option:", "captioning": ""}

_LETTER_OPTION = re.compile(r"^\s*\(?([A-Z])[.)]\s*(.+?)\s*$", re.M)
_LABELLED_OPTION = re.compile(r"^\s*((?:Option|Sentence|Caption)\s+[A-Z0-9]+)\s*:\s*(.+?)\s*$", re.M | re.I)
_INFO_OPTION = re.compile(r"^\s*Information\s+([A-Z])\s*:\s*(\{.*\})\s*$", re.M)


class TempCompassError(ValueError):
    pass


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def parse_tasks(text: str) -> list[str] | None:
    """``"multi-choice, yes_no"`` -> the task list; empty means every task (None)."""
    return [t.strip() for t in text.split(",") if t.strip()] or None


def load_questions(questions_dir: str | Path, tasks: list[str] | None = None) -> list[dict[str, Any]]:
    """Every question of the chosen tasks, flattened, with its prompt and a stable id."""
    folder = Path(questions_dir)
    rows = []
    for task in tasks or list(TASKS):
        if task not in TASKS:
            raise TempCompassError(f"unknown TempCompass task {task!r} (tasks: {', '.join(TASKS)})")
        path = folder / TASKS[task]
        if not path.exists():
            raise TempCompassError(f"{path} not found (TempCompass question file of task {task})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TempCompassError(f"{path}: not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise TempCompassError(f"{path}: expected {{video_id: {{dimension: [{{question, answer}}]}}}}")
        for video_id, dims in data.items():
            for dim, items in (dims or {}).items():
                for k, item in enumerate(items or []):
                    if not isinstance(item, dict) or "question" not in item or "answer" not in item:
                        raise TempCompassError(f"{path}: {video_id}/{dim}[{k}] lacks question/answer")
                    rows.append({"id": f"{task}/{video_id}/{dim}/{k}", "task": task, "video_id": str(video_id),
                                 "dimension": dim, "question": item["question"], "answer": item["answer"],
                                 "prompt": item["question"] + SUFFIX[task]})
    return rows


# --- matching --------------------------------------------------------------------------------------


def _letter_options(question: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _LETTER_OPTION.finditer(question)}


def _by_text(prediction: str, options: dict[str, str]) -> str | None:
    pred = _norm(prediction)
    hits = [key for key, text in options.items() if _norm(text) and _norm(text) in pred]
    if len(hits) > 1:  # one option's text inside another's: the longest that matches
        hits = [max(hits, key=lambda key: len(options[key]))]
    return hits[0] if hits else None


def match_multi_choice(question: str, prediction: str) -> str | None:
    options = _letter_options(question)
    m = re.match(r"^\s*\(?([A-Z])\)?(?:[.):,\s]|$)", prediction)
    if m and m.group(1) in options and not re.match(r"^\s*A\s+[a-z]", prediction):  # "A person ..." is text
        return m.group(1)
    m = re.search(r"(?:option|answer(?:\s+is)?)\s*:?\s*\(?([A-Z])\b", prediction, re.I)
    if m and m.group(1).upper() in options:
        return m.group(1).upper()
    return _by_text(prediction, options)


def match_yes_no(prediction: str) -> str | None:
    m = re.search(r"\b(yes|no)\b", prediction.lower())
    return m.group(1) if m else None


def match_caption_matching(question: str, prediction: str) -> str | None:
    options = {label.lower(): text for label, text in _LABELLED_OPTION.findall(question)}
    pred = prediction.lower()
    for label in options:
        if pred.strip().startswith(label):
            return label
    named = [label for label in options if label in pred]
    if len(named) == 1:
        return named[0]
    m = re.match(r"^\s*\(?([A-Z0-9])\)?(?:[.):,\s]|$)", prediction)
    if m:
        tails = [label for label in options if label.split()[-1] == m.group(1).lower()]
        if len(tails) == 1 and not re.match(r"^\s*A\s+[a-z]", prediction):
            return tails[0]
    return _by_text(prediction, options)


def _info_options(question: str) -> dict[str, str]:
    out = {}
    for letter, literal in _INFO_OPTION.findall(question):
        try:
            info = ast.literal_eval(literal)  # a Python dict literal; literal_eval never runs code
        except (ValueError, SyntaxError):
            continue
        if isinstance(info, dict):
            values = [str(v) for k, v in info.items() if k != "subject"]
            out[letter] = " ".join(values)
    return out


def match_captioning(question: str, prediction: str) -> str | None:
    """The option whose information the caption states: exact text first, else a clear fuzzy winner."""
    options = _info_options(question)
    exact = _by_text(prediction, options)
    if exact:
        return exact
    scores = sorted(((fuzz.token_set_ratio(_norm(text), _norm(prediction)), key) for key, text in options.items()),
                    reverse=True)
    if scores and scores[0][0] >= 70 and (len(scores) == 1 or scores[0][0] - scores[1][0] >= 10):
        return scores[0][1]
    return None


def gold_choice(task: str, answer: str) -> str:
    if task == "yes_no":
        return answer.strip().lower()
    if task == "caption_matching":
        return answer.split(":", 1)[0].strip().lower()
    return answer.strip()[0]


def match(task: str, question: str, prediction: str) -> str | None:
    if task == "multi-choice":
        return match_multi_choice(question, prediction)
    if task == "yes_no":
        return match_yes_no(prediction)
    if task == "caption_matching":
        return match_caption_matching(question, prediction)
    return match_captioning(question, prediction)


def load_judge(spec: str | None) -> Callable | None:
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise TempCompassError(f"cannot load judge {spec!r} (module:function): {e}") from e


def score(predictions: list[dict[str, Any]], judge: Callable | None = None) -> dict[str, Any]:
    """Adds ``matched``/``correct`` to each prediction; accuracy per task and per task x dimension."""
    from vstar_ray.evaluate import wilson

    results: dict[str, Any] = {}
    for p in predictions:
        chosen = match(p["task"], p["question"], p["prediction"] or "")
        p["matched"] = chosen
        p["judged"] = False
        if chosen is not None:
            p["correct"] = chosen == gold_choice(p["task"], p["answer"])
        elif judge is not None and (verdict := judge(p["task"], p["question"], p["prediction"], p["answer"])) is not None:
            p["correct"], p["judged"] = bool(verdict), True
        else:
            p["correct"] = False
        task = results.setdefault(p["task"], {"correct": 0, "total": 0, "unmatched": 0, "by_dimension": {}})
        dim = task["by_dimension"].setdefault(p["dimension"], {"correct": 0, "total": 0})
        for cell in (task, dim):
            cell["correct"] += p["correct"]
            cell["total"] += 1
        task["unmatched"] += chosen is None and not p["judged"]
    for task in results.values():
        for cell in [task, *task["by_dimension"].values()]:
            cell["accuracy"] = round(cell["correct"] / cell["total"], 4) if cell["total"] else 0.0
            cell["ci95"] = wilson(cell["correct"], cell["total"])
    return results


# --- the benchmark run -----------------------------------------------------------------------------


def run(cfg, questions_dir: str | Path, videos_dir: str | Path, model: str, out: str | Path,
        tasks: list[str] | None = None, judge: str | None = None, limit: int = 0, pool=None) -> dict[str, Any]:
    """Answer every question whose video exists (greedy, the generator pool), score, write
    ``out/results.json``, ``out/results.md`` and ``out/predictions.jsonl`` (prompt, prediction, match)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vstar_ray.io import atomic_write_json, atomic_write_text
    from vstar_ray.pipeline import answer_prompts
    from vstar_ray.prepare.common import VideoIndex

    judge_fn = load_judge(judge)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    videos_dir = Path(videos_dir).resolve()
    index = VideoIndex(videos_dir)
    questions = load_questions(questions_dir, tasks)
    videos = {vid: index.find(vid) for vid in {q["video_id"] for q in questions}}
    missing = sorted(vid for vid, path in videos.items() if path is None)
    # the generator writes its output to ``answer``: the gold answer travels as ``gold``
    rows = [{**{k: v for k, v in q.items() if k != "answer"}, "gold": q["answer"], "video": videos[q["video_id"]]}
            for q in questions if videos[q["video_id"]] is not None]
    if limit:
        rows = rows[:limit]
    if not rows:
        raise TempCompassError(f"none of the TempCompass videos is in {videos_dir} ({len(missing)} missing, "
                               f"expected files named <video_id>.mp4 such as {missing[0] if missing else '?'}.mp4)")
    rows_path = out / "questions.parquet"
    pq.write_table(pa.Table.from_pylist(rows), rows_path)
    seconds = answer_prompts(cfg, str(rows_path), str(videos_dir), model, out / "predictions", pool=pool)
    predictions, failed = [], set()
    for p in pq.read_table(out / "predictions").to_pylist():
        if p["error"]:
            failed.add(p["video_id"])
            continue
        predictions.append({k: p[k] for k in ("id", "task", "video_id", "dimension", "question", "prompt")}
                           | {"answer": p["gold"], "prediction": p["answer"]})
    results = score(predictions, judge_fn)
    summary = {"benchmark": "tempcompass", "model": model, "questions": len(rows), "answered": len(predictions),
               "tasks": results, "missing_videos": missing, "failed_videos": sorted(failed),
               "seconds": round(seconds, 1), "decoding": "greedy", "judge": judge or None}
    atomic_write_json(out / "results.json", summary)
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    atomic_write_text(out / "results.md", markdown(summary))
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = [f"# TempCompass: {summary['model']}", "",
             f"{summary['answered']} questions answered (greedy); {len(summary['missing_videos'])} videos missing, "
             f"{len(summary['failed_videos'])} not decodable (their questions skipped).", "",
             "| task | accuracy | 95% CI | correct / total | unmatched | " + " | ".join(DIMENSIONS) + " |",
             "|---|---|---|---|---|" + "---|" * len(DIMENSIONS)]
    for task, r in summary["tasks"].items():
        dims = [f"{r['by_dimension'][d]['accuracy']:.3f}" if d in r["by_dimension"] else "" for d in DIMENSIONS]
        lines.append(f"| {task} | {r['accuracy']:.3f} | {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f} | {r['correct']} / "
                     f"{r['total']} | {r['unmatched']} | " + " | ".join(dims) + " |")
    return "\n".join(lines) + "\n"
