"""Open-ended video QA scored as the field does (the Video-ChatGPT protocol): MSVD-QA, MSRVTT-QA, TGIF-QA,
ActivityNet-QA and any set in their format.

Inputs are the Video-ChatGPT-format files: ``test_q.json`` (``[{video_name, question, question_id}]``) and
``test_a.json`` (``[{answer, question_id, [type]}]``), and the folder of videos named as the dataset names them
(``<video_name>.<ext>``; ActivityNet's ``v_<video_name>``). The model is asked the bare question (greedy); the
judge reads (question, correct answer, prediction) with the Video-ChatGPT QA prompt and returns yes/no and a 0-5
score. Accuracy = yes / (yes + no); Score = the mean score; both overall and per question ``type``.

Questions and answers are joined by ``question_id``, never by position: the reference inference scripts chunk
the question list per GPU but index the whole answer list from 0, so every chunk after the first is scored
against the wrong answers.
"""

from __future__ import annotations

import time
from pathlib import Path

from vstar_ray.errors import InputError
from vstar_ray.evaluation import benchmark
from vstar_ray.evaluation.judge import Judge
from vstar_ray.evaluation.judge_prompts import parse_qa, qa_request
from vstar_ray.evaluation.stats import mean_score, proportion
from vstar_ray.io import read_json


def load(questions: str | Path, answers: str | Path) -> list[dict]:
    """The question/answer pairs, joined by ``question_id``; every problem names the file and the item."""
    qs = read_json(questions, "open-ended QA questions")
    ans = read_json(answers, "open-ended QA answers")
    for path, data in ((questions, qs), (answers, ans)):
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a list of objects (the Video-ChatGPT format)")
    by_id = {}
    for k, a in enumerate(ans):
        if not isinstance(a, dict) or "question_id" not in a or "answer" not in a:
            raise InputError(f"{answers}: item {k} lacks question_id/answer")
        by_id[str(a["question_id"])] = a
    pairs, seen = [], set()
    for k, q in enumerate(qs):
        if not isinstance(q, dict) or not {"video_name", "question", "question_id"} <= set(q):
            raise InputError(f"{questions}: item {k} lacks video_name/question/question_id")
        qid = str(q["question_id"])
        if qid in seen:
            raise InputError(f"{questions}: question_id {qid!r} appears twice")
        seen.add(qid)
        if qid not in by_id:
            raise InputError(f"{answers}: no answer for question_id {qid!r} of {questions}")
        a = by_id[qid]
        pairs.append({"id": qid, "video_name": str(q["video_name"]), "question": str(q["question"]),
                      "gold": str(a["answer"]), "type": str(a.get("type", "")) if a.get("type") is not None else ""})
    if not pairs:
        raise InputError(f"{questions}: no questions")
    return pairs


def judged(items: list[dict], judge: Judge) -> None:
    """Adds the judge's ``reply``, ``verdict`` ({yes, score} or None) and ``outcome`` to each item."""
    replies = judge.ask([qa_request(i["question"], i["gold"], i["prediction"],
                                    {"benchmark": "openqa", "question": i["question"], "answer": i["gold"],
                                     "prediction": i["prediction"]}) for i in items])
    for item, reply in zip(items, replies):
        item["reply"], item["judge_error"] = reply.text, reply.error
        item["verdict"] = parse_qa(reply.text) if reply.text is not None else None
        v = item["verdict"]
        item["outcome"] = {"accuracy": int(v["yes"]) if v else None, "score": v["score"] if v else None}


def figures(items: list[dict]) -> dict:
    """Accuracy (yes / judged) and Score (mean), overall and per type, over the items the judge decided."""
    def cut(group: list[dict]) -> dict:
        decided = [i["verdict"] for i in group if i["verdict"]]
        score = mean_score([v["score"] for v in decided])
        return {**proportion(sum(v["yes"] for v in decided), len(decided)), "score": score["score"],
                "score_ci95": score["ci95"]}

    overall = cut(items)
    types = sorted({i["type"] for i in items if i["type"]})
    return {"overall": overall, "by_type": {t: cut([i for i in items if i["type"] == t]) for t in types}}


def run(cfg, questions: str, answers: str, videos: str, model: str, out: str | Path, label: str = "openqa",
        limit: int = 0, pool=None, judge: Judge | None = None, rescore: bool = False) -> "benchmark.BenchmarkResult":
    from vstar_ray.prepare.common import VideoIndex

    start, out = time.time(), Path(out)
    judge = judge or Judge(cfg.judge)
    missing: list[str] = []
    failed: list[str] = []
    if rescore:
        items = benchmark.read_predictions(out)
        missing, failed = benchmark.earlier(out)
    else:
        pairs = load(questions, answers)
        index = VideoIndex(Path(videos))
        rows = []
        for p in pairs:
            video = benchmark.find_video(index, p["video_name"])
            if video is None:
                missing.append(p["video_name"])
            else:
                rows.append({**p, "video": video, "prompt": p["question"]})
        rows = rows[:limit] if limit else rows
        if not rows:
            raise InputError(f"none of the videos of {questions} is in {videos} (e.g. {missing[0]}.mp4 or "
                             f"v_{missing[0]}.mp4)")
        items, failed = benchmark.answer(cfg, rows, Path(videos).resolve(), model, out, pool)
    judged(items, judge)
    scores = figures(items)
    parse_failed = sum(1 for i in items if i["reply"] is not None and i["verdict"] is None)
    summary = {"benchmark": "openqa", "label": label, "model": model, "questions": len(items) + len(failed),
               "answered": len(items), **scores, "parse_failed": parse_failed,
               "judge_failed": sum(1 for i in items if i["reply"] is None), "judge": judge.record(),
               "missing_videos": sorted(set(missing)), "failed_videos": failed, "decoding": "greedy",
               "seconds": round(time.time() - start, 1)}
    benchmark.write(out, summary, items, markdown(summary))
    o = scores["overall"]
    return benchmark.BenchmarkResult("openqa", label, {"accuracy": o["accuracy"], "score": o["score"]},
                                     {"accuracy": o["ci95"], "score": o["score_ci95"]}, len(items),
                                     summary["judge_failed"], parse_failed, summary["seconds"])


def markdown(summary: dict) -> str:
    def row(name: str, c: dict) -> str:
        return (f"| {name} | {c['accuracy']:.3f} ({c['ci95'][0]:.3f}-{c['ci95'][1]:.3f}) | {c['score']:.2f} "
                f"({c['score_ci95'][0]:.2f}-{c['score_ci95'][1]:.2f}) | {c['correct']} / {c['total']} |")

    judge = summary["judge"]
    lines = [f"# {summary['label']} (open-ended QA, Video-ChatGPT protocol): {summary['model']}", "",
             f"{summary['answered']} questions answered (greedy); judged by {judge['model']} "
             f"({judge['backend']}, temperature {judge['temperature']}); {summary['judge_failed']} judge failed, "
             f"{summary['parse_failed']} replies unparsed (both left out); {judge['cache_hits']} cached replies.", "",
             "| | Accuracy (95% CI) | Score (95% CI) | yes / judged |", "|---|---|---|---|",
             row("all", summary["overall"])]
    lines += [row(f"type {t}", c) for t, c in summary["by_type"].items()]
    return "\n".join(lines) + "\n"
