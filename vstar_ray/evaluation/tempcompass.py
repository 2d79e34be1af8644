"""TempCompass (Liu et al., 2024) in its four published task formats, scored as its authors score it.

Question files (``multi-choice.json``, ``yes_no.json``, ``caption_matching.json``, ``captioning.json``) map
``video_id -> dimension -> [{question, answer}]``; videos are ``<video_id>.<ext>`` in one folder. Prompts follow
the official inference scripts. Scoring follows the official evaluation scripts: their rules first
(``tempcompass_rules``); what the rules cannot match goes to the LLM judge with the official prompt
(``judge_prompts.tempcompass_request``), and every captioning answer is judged through the video's first
multiple-choice question (``eval_captioning.py``: ``multi-choice.json`` must be in the folder). Without a judge,
those answers count as wrong, as the official ``--disable_llm`` does, and are reported as ``left_to_judge``.

Figures per task: accuracy (95% Wilson interval), per dimension, per fine-grained aspect of ``meta_info.json``
(the 11 of the official ``print_result``), and the average over the tasks scored.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vstar_ray.errors import InputError
from vstar_ray.evaluation import benchmark
from vstar_ray.evaluation.judge import Judge
from vstar_ray.evaluation.judge_prompts import caption_request, parse_caption, parse_rating, tempcompass_request
from vstar_ray.evaluation.stats import proportion
from vstar_ray.evaluation.tempcompass_rules import clean, official_rating
from vstar_ray.io import read_json

TASKS = {"multi-choice": "multi-choice.json", "yes_no": "yes_no.json", "caption_matching": "caption_matching.json",
         "captioning": "captioning.json"}
DIMENSIONS = ("action", "speed", "direction", "order", "attribute_change")
ASPECTS = ("fine-grained action", "coarse-grained action", "object motion", "camera motion", "absolute speed",
           "relative speed", "order", "color & light change", "size & shape change", "combined change", "other change")
SUFFIX = {"multi-choice": "\nPlease directly give the best option:", "yes_no": "\nPlease answer yes or no:",
          "caption_matching": "\nPlease directly give the best option:", "captioning": ""}
META = "meta_info.json"


class TempCompassError(InputError):
    """A TempCompass question file or video folder that cannot be used; the message names it."""


def parse_tasks(text: str) -> list[str] | None:
    """``"multi-choice, yes_no"`` -> the task list; empty means every task (None)."""
    return [t.strip() for t in text.split(",") if t.strip()] or None


def _file(folder: Path, name: str, what: str) -> dict:
    path = folder / name
    if not path.exists():
        raise TempCompassError(f"{path} not found ({what})")
    data = read_json(path, "TempCompass file", TempCompassError)
    if not isinstance(data, dict):
        raise TempCompassError(f"{path}: expected {{video_id: {{dimension: [{{question, answer}}]}}}}")
    return data


def load_questions(questions_dir: str | Path, tasks: list[str] | None = None) -> list[dict[str, Any]]:
    """Every question of the chosen tasks, flattened, with its prompt and a stable id; a malformed entry is named
    by its file and ``video_id/dimension[k]``."""
    folder = Path(questions_dir)
    rows = []
    for task in tasks or list(TASKS):
        if task not in TASKS:
            raise TempCompassError(f"unknown TempCompass task {task!r} (tasks: {', '.join(TASKS)})")
        path = folder / TASKS[task]
        for video_id, dims in _file(folder, TASKS[task], f"TempCompass question file of task {task}").items():
            if not isinstance(dims, dict):
                raise TempCompassError(f"{path}: {video_id}: expected {{dimension: [questions]}}, got "
                                       f"{type(dims).__name__}")
            for dim, items in dims.items():
                if not isinstance(items, list):
                    raise TempCompassError(f"{path}: {video_id}/{dim}: expected a list of questions")
                for k, item in enumerate(items):
                    if not (isinstance(item, dict) and isinstance(item.get("question"), str)
                            and isinstance(item.get("answer"), str)):
                        raise TempCompassError(f"{path}: {video_id}/{dim}[{k}]: expected question and answer as text")
                    rows.append({"id": f"{task}/{video_id}/{dim}/{k}", "task": task, "video_id": str(video_id),
                                 "dimension": dim, "question": item["question"], "gold": item["answer"],
                                 "prompt": item["question"] + SUFFIX[task]})
    if not rows:
        raise TempCompassError(f"{folder}: no questions in the files of {', '.join(tasks or TASKS)}")
    return rows


def aspect(meta: dict, video_id: str, dimension: str) -> str:
    """The fine-grained aspect of a question, as the official ``print_result`` reads it from ``meta_info.json``."""
    if dimension == "order":
        return "order"
    try:
        return meta[video_id]["eval_dim"][dimension]["type"]
    except (KeyError, TypeError):
        return ""


def judge_open(items: list[dict], judge: Judge | None, mc: dict) -> None:
    """Asks the judge what the rules left open (every captioning answer); sets ``rating`` (1, 0 or None) and
    ``by``: rules, judge, judge_failed, parse_failed or left_to_judge (no judge)."""
    open_items = [i for i in items if i["rating"] is None]
    for item in items:
        item["by"] = "rules" if item["rating"] is not None else "left_to_judge"
    if judge is None or not open_items:
        return
    requests = []
    for i in open_items:
        record = {"benchmark": "tempcompass", "task": i["task"], "question": i["question"], "answer": i["gold"],
                  "prediction": i["prediction"]}
        if i["task"] == "captioning":
            first = mc[i["video_id"]][i["dimension"]][0]
            i["mc_question"], i["mc_answer"] = first["question"], first["answer"]
            requests.append(caption_request(clean(i["prediction"]), first["question"], record))
        else:
            requests.append(tempcompass_request(i["task"], i["question"], i["gold"], clean(i["prediction"]), record))
    for item, reply in zip(open_items, judge.ask(requests)):
        item["reply"] = reply.text
        if reply.text is None:
            item["by"], item["judge_error"] = "judge_failed", reply.error
            continue
        rating = (parse_caption(reply.text, item["mc_answer"]) if item["task"] == "captioning"
                  else parse_rating(reply.text))
        item["rating"], item["by"] = rating, "judge" if rating is not None else "parse_failed"


def score(items: list[dict], meta: dict) -> dict[str, Any]:
    """Accuracy per task, per task x dimension and per task x fine-grained aspect, over the decided items; an item
    left to a judge that was not given counts as wrong (the official ``--disable_llm``)."""
    results: dict[str, Any] = {}
    for i in items:
        task = results.setdefault(i["task"], {"cells": {}, "by": {}})
        task["by"][i["by"]] = task["by"].get(i["by"], 0) + 1
        if i["by"] in ("judge_failed", "parse_failed"):
            i["outcome"] = {"accuracy": None}
            continue
        right = int(i["rating"] == 1)
        i["outcome"] = {"accuracy": right}
        for key in ("all", f"dimension:{i['dimension']}", f"aspect:{aspect(meta, i['video_id'], i['dimension'])}"):
            cell = task["cells"].setdefault(key, [0, 0])
            cell[0] += right
            cell[1] += 1
    out = {}
    for name, task in results.items():
        cells = {k: proportion(*v) for k, v in task["cells"].items()}
        out[name] = {**cells.get("all", proportion(0, 0)), "decided_by": task["by"],
                     "left_to_judge": task["by"].get("left_to_judge", 0),
                     "by_dimension": {k.split(":", 1)[1]: v for k, v in cells.items() if k.startswith("dimension:")},
                     "by_aspect": {k.split(":", 1)[1]: v for k, v in cells.items() if k.startswith("aspect:")
                                   and k != "aspect:"}}
    return out


def run(cfg, questions_dir: str | Path, videos_dir: str | Path, model: str, out: str | Path,
        tasks: list[str] | None = None, limit: int = 0, pool=None, judge: Judge | None = None, label: str =
        "tempcompass", rescore: bool = False) -> benchmark.BenchmarkResult:
    """Answer every question whose video exists (greedy, the generator pool), score, write ``out/results.json``,
    ``out/results.md`` and ``out/predictions.jsonl``. ``judge=None``: the rules alone."""
    from vstar_ray.prepare.common import VideoIndex

    start, out, folder = time.time(), Path(out), Path(questions_dir)
    meta = read_json(folder / META, "TempCompass meta", TempCompassError) if (folder / META).exists() else {}
    tasks = tasks or list(TASKS)
    mc = _file(folder, TASKS["multi-choice"], "captioning is judged through the multiple-choice questions") \
        if "captioning" in tasks and judge is not None else {}
    missing, failed = [], []
    if rescore:
        items = [{k: v for k, v in i.items() if k not in ("rating", "by", "reply", "outcome", "judge_error")}
                 for i in benchmark.read_predictions(out)]
        missing, failed = benchmark.earlier(out)
    else:
        questions = load_questions(folder, tasks)
        index = VideoIndex(Path(videos_dir))
        videos = {vid: index.find(vid) for vid in {q["video_id"] for q in questions}}
        missing = sorted(vid for vid, path in videos.items() if path is None)
        rows = [{**q, "video": videos[q["video_id"]]} for q in questions if videos[q["video_id"]] is not None]
        rows = rows[:limit] if limit else rows
        if not rows:
            raise TempCompassError(f"none of the TempCompass videos is in {videos_dir} ({len(missing)} missing, "
                                   f"expected files named <video_id>.mp4 such as {missing[0]}.mp4)")
        items, failed_ids = benchmark.answer(cfg, rows, Path(videos_dir).resolve(), model, out, pool)
        failed = sorted({r["video_id"] for r in rows if r["id"] in set(failed_ids)})
    for i in items:
        i["rating"] = official_rating(i["task"], i["question"], i["gold"], i["prediction"])
        if i["task"] == "captioning":
            i["rating"] = None  # judged by the LLM only
    judge_open(items, judge, mc)
    results = score(items, meta)
    summary = {"benchmark": "tempcompass", "label": label, "model": model, "answered": len(items), "tasks": results,
               "average": round(sum(r["accuracy"] for r in results.values()) / len(results), 4) if results else 0.0,
               "judge": judge.record() if judge is not None else None, "missing_videos": missing,
               "failed_videos": failed, "decoding": "greedy", "seconds": round(time.time() - start, 1)}
    benchmark.write(out, summary, items, markdown(summary))
    unparsed = sum(r["decided_by"].get("parse_failed", 0) for r in results.values())
    judge_failed = sum(r["decided_by"].get("judge_failed", 0) for r in results.values())
    return benchmark.BenchmarkResult(
        "tempcompass", label, {**{t: r["accuracy"] for t, r in results.items()}, "average": summary["average"]},
        {t: r["ci95"] for t, r in results.items()}, len(items), judge_failed, unparsed, summary["seconds"])


def markdown(summary: dict[str, Any]) -> str:
    judge = summary["judge"]
    who = (f"judged by {judge['model']} ({judge['backend']}, temperature {judge['temperature']})" if judge
           else "no judge: answers the rules cannot match count as wrong (the official --disable_llm)")
    lines = [f"# TempCompass: {summary['model']}", "",
             f"{summary['answered']} questions answered (greedy); {len(summary['missing_videos'])} videos missing, "
             f"{len(summary['failed_videos'])} not decodable (their questions skipped); {who}.", "",
             "| task | accuracy | 95% CI | correct / total | decided by | " + " | ".join(DIMENSIONS) + " |",
             "|---|---|---|---|---|" + "---|" * len(DIMENSIONS)]
    for task, r in summary["tasks"].items():
        dims = [f"{r['by_dimension'][d]['accuracy']:.3f}" if d in r["by_dimension"] else "" for d in DIMENSIONS]
        by = ", ".join(f"{k} {v}" for k, v in sorted(r["decided_by"].items()))
        lines.append(f"| {task} | {r['accuracy']:.3f} | {r['ci95'][0]:.3f}-{r['ci95'][1]:.3f} | {r['correct']} / "
                     f"{r['total']} | {by} | " + " | ".join(dims) + " |")
    lines += ["", f"Average over the tasks: {summary['average']:.3f}", "",
              "| task | " + " | ".join(ASPECTS) + " |", "|---|" + "---|" * len(ASPECTS)]
    for task, r in summary["tasks"].items():
        lines.append(f"| {task} | " + " | ".join(f"{r['by_aspect'][a]['accuracy']:.3f}" if a in r["by_aspect"] else ""
                                                   for a in ASPECTS) + " |")
    return "\n".join(lines) + "\n"
