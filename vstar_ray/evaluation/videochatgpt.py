"""The Video-ChatGPT generation benchmark: five 0-5 scores judged by an LLM (``quantitative_evaluation/
evaluate_benchmark_*.py`` of github mbzuai-oryx/Video-ChatGPT).

A folder holds the benchmark's three files, each a list of objects: ``generic_qa.json`` (``video_name``, ``Q``,
``A``: scored for correctness, detail orientation and contextual understanding), ``temporal_qa.json`` (the same
keys: temporal understanding) and ``consistency_qa.json`` (``video_name``, ``Q1``, ``Q2``, ``A``: the model
answers both questions; consistency). Videos are ``<video_name>.<ext>`` in one folder. Each score is the mean
over the items the judge scored, with a 95% bootstrap interval.
"""

from __future__ import annotations

import time
from pathlib import Path

from vstar_ray.errors import InputError
from vstar_ray.evaluation import benchmark
from vstar_ray.evaluation.judge import Judge
from vstar_ray.evaluation.judge_prompts import parse_score, score_request
from vstar_ray.evaluation.stats import mean_score
from vstar_ray.io import read_json

FILES = {"generic": ("generic_qa.json", ("Q", "A")), "temporal": ("temporal_qa.json", ("Q", "A")),
         "consistency": ("consistency_qa.json", ("Q1", "Q2", "A"))}
ASPECTS = {"correctness": "generic", "detail": "generic", "context": "generic", "temporal": "temporal",
           "consistency": "consistency"}


def load(folder: str | Path) -> list[dict]:
    """One item per question to ask the model: ``id`` (``<file>/<n>`` or ``consistency/<n>/q1``), video, prompt."""
    folder = Path(folder)
    items = []
    for part, (name, keys) in FILES.items():
        path = folder / name
        if not path.exists():
            raise InputError(f"{path} not found (the Video-ChatGPT benchmark's {part} questions)")
        data = read_json(path, "Video-ChatGPT benchmark questions")
        if not isinstance(data, list) or not data:
            raise InputError(f"{path}: expected a non-empty list of objects with video_name and {', '.join(keys)}")
        for n, item in enumerate(data):
            if not isinstance(item, dict) or not {"video_name", *keys} <= set(item):
                raise InputError(f"{path}: item {n} lacks video_name/{'/'.join(keys)}")
            common = {"part": part, "n": n, "video_name": str(item["video_name"]), "gold": str(item["A"])}
            questions = [("q1", item["Q1"]), ("q2", item["Q2"])] if part == "consistency" else [("q", item["Q"])]
            for which, question in questions:
                items.append({**common, "id": f"{part}/{n}/{which}", "question": str(question),
                              "prompt": str(question)})
    return items


def scored(answers: list[dict], judge: Judge) -> list[dict]:
    """Pairs the answers per benchmark item and asks the judge for each aspect's score."""
    by_item: dict[tuple, dict] = {}
    for a in answers:
        key = (a["part"], a["n"])
        entry = by_item.setdefault(key, {"id": f"{a['part']}/{a['n']}", "part": a["part"], "video_name":
                                         a["video_name"], "gold": a["gold"]})
        which = a["id"].rsplit("/", 1)[1]
        entry[f"question{'' if which == 'q' else which[1]}"] = a["question"]
        entry[f"pred{'' if which == 'q' else which[1]}"] = a["prediction"]
    items = [e for e in by_item.values() if e["part"] != "consistency" or ("pred1" in e and "pred2" in e)]
    requests, slots = [], []
    for item in items:
        for aspect, part in ASPECTS.items():
            if part != item["part"]:
                continue
            fields = ({"question1": item["question1"], "question2": item["question2"], "answer": item["gold"],
                       "pred1": item["pred1"], "pred2": item["pred2"]} if part == "consistency"
                      else {"question": item["question"], "answer": item["gold"], "pred": item["pred"]})
            requests.append(score_request(aspect, {"benchmark": "videochatgpt", "aspect": aspect, **fields},
                                          **fields))
            slots.append((item, aspect))
    for (item, aspect), reply in zip(slots, judge.ask(requests)):
        item.setdefault("replies", {})[aspect] = reply.text
        item.setdefault("outcome", {})[aspect] = parse_score(reply.text) if reply.text is not None else None
        if reply.text is None:
            item.setdefault("judge_errors", {})[aspect] = reply.error
    return items


def run(cfg, questions: str, videos: str, model: str, out: str | Path, label: str = "videochatgpt", limit: int = 0,
        pool=None, judge: Judge | None = None, rescore: bool = False) -> "benchmark.BenchmarkResult":
    from vstar_ray.prepare.common import VideoIndex

    start, out = time.time(), Path(out)
    judge = judge or Judge(cfg.judge)
    missing: list[str] = []
    if rescore:
        answers = [a for i in benchmark.read_predictions(out) for a in i["answers"]]
        missing, failed = benchmark.earlier(out)
    else:
        rows = load(questions)
        index = VideoIndex(Path(videos))
        kept = []
        for row in rows:
            video = benchmark.find_video(index, row["video_name"])
            if video is None:
                missing.append(row["video_name"])
            else:
                kept.append({**row, "video": video})
        kept = kept[:limit] if limit else kept
        if not kept:
            raise InputError(f"none of the benchmark's videos is in {videos} (e.g. {missing[0]}.mp4)")
        answers, failed = benchmark.answer(cfg, kept, Path(videos).resolve(), model, out, pool)
    items = scored(answers, judge)
    for item in items:  # what --rescore reads back
        item["answers"] = [a for a in answers if a["id"].startswith(item["id"] + "/")]
    scores = {aspect: mean_score([i["outcome"][aspect] for i in items if i["outcome"].get(aspect) is not None])
              for aspect in ASPECTS}
    asked = sum(1 for i in items for a in ASPECTS if ASPECTS[a] == i["part"])
    judge_failed = sum(len(i.get("judge_errors", {})) for i in items)
    unparsed = asked - judge_failed - sum(s["n"] for s in scores.values())
    summary = {"benchmark": "videochatgpt", "label": label, "model": model, "items": len(items),
               "scores": scores, "judge_failed": judge_failed, "parse_failed": unparsed, "judge": judge.record(),
               "missing_videos": sorted(set(missing)), "failed_videos": failed, "decoding": "greedy",
               "seconds": round(time.time() - start, 1)}
    benchmark.write(out, summary, items, markdown(summary))
    return benchmark.BenchmarkResult("videochatgpt", label, {a: s["score"] for a, s in scores.items()},
                                     {a: s["ci95"] for a, s in scores.items()}, len(items), judge_failed, unparsed,
                                     summary["seconds"])


def markdown(summary: dict) -> str:
    judge = summary["judge"]
    lines = [f"# {summary['label']} (Video-ChatGPT generation benchmark): {summary['model']}", "",
             f"{summary['items']} items answered (greedy); judged by {judge['model']} ({judge['backend']}, "
             f"temperature {judge['temperature']}); {summary['judge_failed']} judge failed, "
             f"{summary['parse_failed']} replies unparsed (both left out).", "",
             "| score | mean (0-5) | 95% CI | items scored |", "|---|---|---|---|"]
    for aspect, s in summary["scores"].items():
        lines.append(f"| {aspect} | {s['score']:.2f} | {s['ci95'][0]:.2f}-{s['ci95'][1]:.2f} | {s['n']} |")
    return "\n".join(lines) + "\n"
