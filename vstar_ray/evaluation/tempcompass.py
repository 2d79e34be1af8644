"""TempCompass (Liu et al., 2024) in its four published task formats, scored as its authors score it.

Question files (``multi-choice.json``, ``yes_no.json``, ``caption_matching.json``, ``captioning.json``)
map ``video_id -> dimension -> [{question, answer}]``; videos are ``<video_id>.<ext>`` in one folder.
Prompts follow the official inference scripts. Scoring reproduces the official evaluation scripts
(github llyx97/TempCompass: ``eval_multi-choice.py``, ``eval_yes_no.py``, ``eval_caption_matching.py``)
where their rules decide, cleaning included; what they hand to their LLM judge (and every captioning
answer) is ``left_to_judge`` and counted wrong, unless a judge plug-in (``module:function``, called as
``judge(task, question, prediction, answer) -> bool | None``) decides it.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable

from vstar_ray.errors import InputError

TASKS = {"multi-choice": "multi-choice.json", "yes_no": "yes_no.json", "caption_matching": "caption_matching.json",
         "captioning": "captioning.json"}
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
SUFFIX = {"multi-choice": "\nPlease directly give the best option:", "yes_no": "\nPlease answer yes or no:",
          "caption_matching": "\nPlease directly give the best option:", "captioning": ""}


class TempCompassError(InputError):
    """A TempCompass question file or video folder that cannot be used; the message names it."""


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


# --- scoring as the authors do ------------------------------------------------------------------------


def clean(prediction: str) -> str:
    """The official scripts' cleaning of a prediction before any rule."""
    return prediction.replace("</s>", "").strip()


def _caption_rule(output: str, question: str, answer: str) -> int | None:
    """``eval_rule`` of the official ``eval_caption_matching.py``, rule for rule (later matches override
    earlier ones, as there). None where it returns "fail". Where the official code would raise on a malformed
    gold answer (no ``": "``), that comparison is false instead."""
    option_strs = question.split("\n")[1:]
    option_sents = [opt.split(": ")[1] for opt in option_strs]
    option_inds = [opt.split(": ")[0] for opt in option_strs] + [
        opt.split(": ")[0].replace("Sentence ", "").replace("Option ", "").replace("Caption ", "") for opt in option_strs]
    pred = None
    for option_str in option_strs:
        if option_str == output:
            pred = option_str
    for option_sent in option_sents:
        if option_sent == output or (") " in output and option_sent == output.split(") ")[1]):
            pred = option_sent
    for option_ind in option_inds:
        if option_ind == output or option_ind == output.replace(".", ""):
            pred = option_ind
    if pred is None:
        return None
    head, sep, tail = answer.partition(": ")
    words = head.split()
    return int(pred == answer or pred == answer.split(":")[0] or (sep and pred == tail.split(": ")[0])
               or (sep and len(words) > 1 and pred == words[1]))


def official_rating(task: str, question: str, answer: str, prediction: str | None) -> int | None:
    """1 or 0 where the official TempCompass rules decide (``eval_multi-choice.py``, ``eval_yes_no.py``,
    ``eval_caption_matching.py``, after their cleaning); None where those scripts hand the answer to their
    LLM judge. Captioning is judged by the LLM only (``eval_captioning.py``): always None."""
    if prediction is None:  # the model produced no answer: rated 0 without a judge
        return 0
    pred = clean(prediction)
    if task == "multi-choice":
        if pred == answer:
            return 1
        if pred in ("A", "B", "C", "D"):
            return int(pred == answer[0])
        if any(pred.startswith(prefix) for prefix in ("A.", "B.", "C.", "D.")):
            return int(pred.split(".")[0] == answer[0])
        if any(pred.startswith(prefix) for prefix in ("A)", "B)", "C)", "D)")):
            return int(pred.split(")")[0] == answer[0])
        return None
    if task == "yes_no":
        lowered = pred.lower()
        choice = "yes" if lowered.startswith("yes") else "no" if lowered.startswith("no") else None
        return None if choice is None else int(choice == answer)
    if task == "caption_matching":
        return _caption_rule(pred, question, answer)
    return None


def load_judge(spec: str | None) -> Callable | None:
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise TempCompassError(f"cannot load judge {spec!r} (module:function): {e}") from e


def score(predictions: list[dict[str, Any]], judge: Callable | None = None) -> dict[str, Any]:
    """Adds ``rating`` (the official rules' 1/0, or None: left to the LLM judge), ``judged`` and ``correct`` to
    each prediction; accuracy per task and per task x dimension. An answer the official rules leave to the
    judge is decided by ``judge`` when one is given, else counted wrong (the official scripts'
    ``--disable_llm``) and reported as ``left_to_judge``."""
    from vstar_ray.evaluation.stats import wilson

    results: dict[str, Any] = {}
    for p in predictions:
        p["rating"] = official_rating(p["task"], p["question"], p["answer"], p["prediction"])
        p["judged"] = False
        if p["rating"] is not None:
            p["correct"] = bool(p["rating"])
        elif judge is not None and (verdict := judge(p["task"], p["question"], p["prediction"], p["answer"])) is not None:
            p["correct"], p["judged"] = bool(verdict), True
        else:
            p["correct"] = False
        task = results.setdefault(p["task"], {"correct": 0, "total": 0, "left_to_judge": 0, "judged": 0,
                                              "by_dimension": {}})
        dim = task["by_dimension"].setdefault(p["dimension"], {"correct": 0, "total": 0})
        for cell in (task, dim):
            cell["correct"] += p["correct"]
            cell["total"] += 1
        task["left_to_judge"] += p["rating"] is None and not p["judged"]
        task["judged"] += p["judged"]
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
    from vstar_ray.generation.pipeline import answer_prompts
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
             "| task | accuracy | 95% CI | correct / total | left to the LLM judge | " + " | ".join(DIMENSIONS) + " |",
             "|---|---|---|---|---|" + "---|" * len(DIMENSIONS)]
    for task, r in summary["tasks"].items():
        dims = [f"{r['by_dimension'][d]['accuracy']:.3f}" if d in r["by_dimension"] else "" for d in DIMENSIONS]
        lines.append(f"| {task} | {r['accuracy']:.3f} | {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f} | {r['correct']} / "
                     f"{r['total']} | {r['left_to_judge']} | " + " | ".join(dims) + " |")
    return "\n".join(lines) + "\n"
