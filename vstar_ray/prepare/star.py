"""STAR: the official QA json (``STAR_{train,val}.json``: a list of question records).

Per question: the QA itself (class over the correct choice; the question is asked open-ended, without
the choices), a temporal question per action in the situation graphs (temporal_range, normalized to
the clip window; needs ``STAR_classes/video_fps``), and a box question for the first object with a box
(bbox, corners normalized by the video's frame size). Videos are the Charades ``<video_id>.mp4``.
The website's simplified format (``answer`` = video id, correct choice marked ``"Correct"``) is read too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from vstar_ray.prepare import paper, safe_pickle
from vstar_ray.prepare.common import AnnotationError, Context, VideoProbe, finish_row


def _classes(folder: Path, name: str) -> dict[str, str]:
    path = folder / name
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, text = line.strip().partition(" ")
        if key:
            out[key] = text.strip()
    return out


def _records(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise AnnotationError(f"{path}: not readable JSON: {e}") from e
    if isinstance(data, dict) and "question_id" in data:
        return [data]
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        return list(data.values())
    if isinstance(data, list):
        return data
    raise AnnotationError(f"{path}: expected STAR question records (a list of objects with question_id)")


def _answer(rec: dict) -> str | None:
    choices = [c for c in rec.get("choices", []) if isinstance(c, dict)]
    texts = [str(c.get("choice", "")) for c in choices]
    if rec.get("answer") in texts:
        return rec["answer"]
    correct = [str(c.get("choice")) for c in choices if c.get("answer") == "Correct"]
    return correct[0] if len(correct) == 1 else None


def rows(ctx: Context, annotations: Path, split: str = "") -> Iterator[dict]:
    folder = annotations if annotations.is_dir() else annotations.parent
    files = [annotations] if annotations.is_file() else sorted(folder.glob("STAR_*.json"))
    if not files:
        raise AnnotationError(f"{annotations}: no STAR_*.json question files")
    classes_dir = folder / "STAR_classes"
    actions, objects = _classes(classes_dir, "action_classes.txt"), _classes(classes_dir, "object_classes.txt")
    fps_table = safe_pickle.load(classes_dir / "video_fps") if (classes_dir / "video_fps").exists() else {}
    index, probe = ctx.video_index(), VideoProbe(ctx.videos)
    for path in files:
        file_split = path.stem.replace("STAR_", "")
        if split and file_split != split:
            continue
        for n, rec in enumerate(_records(path)):
            if not isinstance(rec, dict) or not rec.get("question_id"):
                ctx.skip(f"{path.name}[{n}]", "unreadable record (no question_id)")
                continue
            yield from _question_rows(ctx, rec, file_split, index, probe, actions, objects, fps_table)


def _question_rows(ctx, rec, file_split, index, probe, actions, objects, fps_table) -> Iterator[dict]:
    qid = str(rec["question_id"])
    answer = _answer(rec)
    if answer is None or not rec.get("question"):
        ctx.skip(qid, "answer not among the choices, or no question")
        return
    try:
        start, end = float(rec["start"]), float(rec["end"])
    except (KeyError, TypeError, ValueError):
        ctx.skip(qid, f"unreadable start/end {rec.get('start')!r}, {rec.get('end')!r}")
        return
    if end <= start:
        ctx.skip(qid, f"end {end} <= start {start}")
        return
    vid = str(rec.get("video_id", ""))
    video = index.find(vid)
    if video is None:
        ctx.skip(qid, f"video not found ({vid}.mp4)")
        return
    info = probe(video)
    if info is None:
        ctx.skip(qid, f"video {video} is not readable")
        return
    duration, width, height = info
    if start >= duration:
        ctx.skip(qid, f"start {start}s is beyond the video ({duration:.1f}s)")
        return
    end = min(end, duration)
    if ctx.items == "paper":
        situations = rec.get("situations") or {}
        frames = sorted((k, v) for k, v in situations.items() if k.isdigit() and isinstance(v, dict))
        for row in paper.star_rows(ctx, rec, qid, answer, {"video": video, "source": "star", "split": file_split},
                                   (start, end), duration, frames, fps_table.get(f"{vid}.mp4"), actions, objects,
                                   (width, height)):
            row = finish_row(ctx, row)
            if row:
                yield row
        return
    common = {"video": video, "start": start, "end": end, "source": "star", "split": file_split}
    row = finish_row(ctx, {**common, "id": qid, "labels": {"answer": answer}, "verifiers": {"answer": "class"},
                           "question": str(rec["question"]).strip()})
    if row:
        yield row
    situations = rec.get("situations") or {}
    frames = sorted((k, v) for k, v in situations.items() if k.isdigit() and isinstance(v, dict))
    fps = fps_table.get(f"{vid}.mp4")
    if not frames or not fps:
        return
    span = end - start

    def fraction(frame_id: str) -> float:
        return min(1.0, max(0.0, (int(frame_id) / fps - start) / span))

    seen: dict[str, list[float]] = {}
    for fid, graph in frames:
        for action in graph.get("actions", []):
            seen.setdefault(action, []).append(fraction(fid))
    for action, times in seen.items():
        lo, hi = round(min(times), 3), round(max(times), 3)
        if hi - lo < 0.05 or action not in actions:
            continue
        row = finish_row(ctx, {**common, "id": f"{qid}:when:{action}", "labels": {"when": [lo, hi]},
                               "verifiers": {"when": "temporal_range"},
                               "question": ctx.question(f"{qid}:when:{action}", "temporal_range",
                                                        event=f'the action "{actions[action]}"')})
        if row:
            yield row
    for fid, graph in frames:
        for box, label in zip(graph.get("bbox", []), graph.get("bbox_labels", [])):
            if label == "o000" or label not in objects or width <= 0 or height <= 0:
                continue  # o000 is the person; the QA is about the objects
            x1, y1, x2, y2 = (float(v) for v in box)
            norm = [round(min(1.0, max(0.0, v)), 4) for v in (x1 / width, y1 / height, x2 / width, y2 / height)]
            if not (norm[0] < norm[2] and norm[1] < norm[3]):
                continue
            moment = f"{fraction(fid):.2f} of the way through the clip"
            row = finish_row(ctx, {**common, "id": f"{qid}:box:{fid}:{label}", "labels": {"box": norm},
                                   "verifiers": {"box": "bbox"},
                                   "question": ctx.question(f"{qid}:box:{fid}:{label}", "bbox",
                                                            object=objects[label], moment=moment)})
            if row:
                yield row
            return  # one box question per QA
