"""FineDiving: the original pickles (coarse + fine-grained annotations, sub-action table, splits).

Pickles are read with the restricted unpickler (builtins and numpy arrays only). Videos are a dive's
mp4 (``<event>/<index>.mp4`` or ``<event>_<index>.mp4``) or its frame folder ``<event>/<index>/``.
Each dive gives rows (one question each, so "the last number" is never ambiguous):

- ``:steps``: the sub-actions in temporal order (sentence_sequence);
- ``:difficulty``: the degree of difficulty, a number (float; the class verifier checks words, and a
  difficulty has none);
- ``:score``: the final score (float);
- ``:after<k>``/``:before<k>``: which sub-action comes right after / right before another (class).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Iterator

from vstar_ray.prepare import paper, safe_pickle
from vstar_ray.prepare.common import AnnotationError, Context, finish_row

COARSE = "FineDiving_coarse_annotation.pkl"
FINE = "FineDiving_fine-grained_annotation.pkl"
TABLE = "Sub_action_Types_Table.pkl"
SPLITS = {"train": "train_split.pkl", "test": "test_split.pkl"}
_ABBREVIATIONS = [(re.compile(r"\bSoms?\.\s*", re.I), "somersaults "), (re.compile(r"\bTwi?s?t?\.\s*", re.I), "twists ")]


def readable(name: str) -> str:
    """'3.5 Soms.Tuck' -> '3.5 somersaults tuck': what a model would write, for the sentence verifier."""
    for pattern, repl in _ABBREVIATIONS:
        name = pattern.sub(repl, name)
    return re.sub(r"\s+", " ", name).strip().lower()


def _load(folder: Path, name: str, kind: type) -> Any:
    path = folder / name
    if not path.exists():
        raise AnnotationError(f"{folder}: {name} not found (FineDiving annotations)")
    try:
        data = safe_pickle.load(path)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a wrong-format file
        raise AnnotationError(str(e)) from e
    if not isinstance(data, kind):
        raise AnnotationError(f"{path}: expected a {kind.__name__}, got {type(data).__name__}")
    return data


def _find_video(ctx: Context, event: str, index: int) -> str | None:
    root = ctx.videos
    for rel in (f"{event}/{index}", f"{event}/{index:02d}", f"{event}/{index:03d}"):
        if (root / rel).is_dir():
            return rel
    for stem in (f"{event}_{index}", f"{event}_{index:02d}"):
        found = ctx.video_index().find(stem)
        if found:
            return found
    for ext in (".mp4", ".mkv", ".webm", ".avi"):
        if (root / event / f"{index}{ext}").exists():
            return f"{event}/{index}{ext}"
    return None


def _sequence(fine: dict, table: dict) -> list[str]:
    names = {int(k): v for k, v in fine.get("sub-action_types", {}).items()}
    steps, last = [], None
    for label in fine["frames_labels"]:
        label = int(label)
        if label != last:
            name = names.get(label) or table.get(label)
            if name is None:
                raise KeyError(f"sub-action id {label} not in the sub-action table")
            if name != "Background":
                steps.append(readable(name))
            last = label
    return steps


def rows(ctx: Context, annotations: Path, split: str = "") -> Iterator[dict]:
    folder = annotations if annotations.is_dir() else annotations.parent
    coarse = _load(folder, COARSE, dict)
    fine = _load(folder, FINE, dict)
    table = {int(k): v for k, v in _load(folder, TABLE, dict).items()}
    split_of: dict[tuple, str] = {}
    for name, file in SPLITS.items():
        if (folder / file).exists():
            for key in _load(folder, file, list):
                split_of[tuple(key)] = name
    for key in sorted(coarse, key=lambda k: (str(k[0]), int(k[1]))):
        event, number = str(key[0]), int(key[1])
        base = f"{event}_{number}"
        row_split = split_of.get(tuple(key), "")
        if split and row_split != split:
            continue
        c, f = coarse[key], fine.get(key)
        try:
            score, difficulty = float(c["dive_score"]), float(c["difficulty"])
            if not (math.isfinite(score) and math.isfinite(difficulty)):
                raise ValueError("score or difficulty is not a finite number")
            if f is None:
                raise KeyError("no fine-grained annotation")
            steps = _sequence(f, table)
        except (KeyError, TypeError, ValueError) as e:
            ctx.skip(base, f"unreadable annotation: {e}")
            continue
        if int(c.get("end_frame", 1)) <= int(c.get("start_frame", 0)):
            ctx.skip(base, f"end_frame {c.get('end_frame')} <= start_frame {c.get('start_frame')}")
            continue
        video = _find_video(ctx, event, number)
        if video is None:
            ctx.skip(base, f"video not found ({event}/{number}/ frames, {event}/{number}.mp4 or {base}.mp4)")
            continue
        common = {"video": video, "source": "finediving", "split": row_split}
        if ctx.items == "paper":
            for row in paper.dive_rows(ctx, base, steps, score):
                row = finish_row(ctx, {**common, **row})
                if row:
                    yield row
            continue
        candidates = [
            {"id": f"{base}:steps", "labels": {"steps": steps}, "verifiers": {"steps": "sentence_sequence"},
             "question": ctx.question(f"{base}:steps", "sentence_sequence", {"s": steps}, {"s": "sentence_sequence"})},
            {"id": f"{base}:difficulty", "labels": {"difficulty": difficulty}, "verifiers": {"difficulty": "float"},
             "question": ctx.question(f"{base}:difficulty", "difficulty")},
            {"id": f"{base}:score", "labels": {"score": score}, "verifiers": {"score": "float"},
             "question": ctx.question(f"{base}:score", "float")},
        ]
        for k in range(len(steps) - 1):
            if steps[k] != steps[k + 1]:
                candidates.append({"id": f"{base}:after{k}", "labels": {"next": steps[k + 1]},
                                   "verifiers": {"next": "class"},
                                   "question": ctx.question(f"{base}:after{k}", "after", {"n": steps[k + 1]}, {"n": "class"},
                                                                step=steps[k])})
                candidates.append({"id": f"{base}:before{k + 1}", "labels": {"previous": steps[k]},
                                   "verifiers": {"previous": "class"},
                                   "question": ctx.question(f"{base}:before{k + 1}", "before", {"p": steps[k]},
                                                                {"p": "class"}, step=steps[k + 1])})
        for row in candidates:
            if not steps and row["id"].endswith(":steps"):
                ctx.skip(row["id"], "no sub-actions")
                continue
            row = finish_row(ctx, {**common, **row})
            if row:
                yield row
