"""Something-Something v2: ``something-something-v2-labels.json`` plus ``train``/``validation`` json.

Each record (``id``, ``label``, ``template``, ``placeholders``) becomes a row with two labels: the
template as the class (``[something]`` read as "something", a stop word of the class verifier) and the
filled-in label as a sentence. Videos are ``<id>.webm``. Records without a label (the test split) are
skipped, as are templates that are not one of the 174 classes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from vstar_ray.prepare.common import AnnotationError, Context, finish_row

LABELS_FILE = "something-something-v2-labels.json"


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise AnnotationError(f"{path}: not readable JSON: {e}") from e


def rows(ctx: Context, annotations: Path, split: str = "") -> Iterator[dict]:
    folder = annotations if annotations.is_dir() else annotations.parent
    labels_path = folder / LABELS_FILE
    if not labels_path.exists():
        raise AnnotationError(f"{folder}: {LABELS_FILE} not found (the 174 SSv2 classes)")
    classes = _load_json(labels_path)
    if not isinstance(classes, dict):
        raise AnnotationError(f"{labels_path}: expected an object template -> class id")
    files = [annotations] if annotations.is_file() and annotations != labels_path else sorted(
        p for p in folder.glob("*.json") if p.name != LABELS_FILE)
    index = ctx.video_index()
    for path in files:
        records = _load_json(path)
        if not isinstance(records, list):
            raise AnnotationError(f"{path}: expected a JSON list of {{id, label, template, placeholders}}")
        file_split = path.name.split(".")[0].split("-")[0]
        if split and file_split != split:
            continue
        for n, rec in enumerate(records):
            if not isinstance(rec, dict) or "id" not in rec:
                ctx.skip(f"{path.name}[{n}]", "unreadable record (no id)")
                continue
            rid = str(rec["id"])
            if "template" not in rec or "label" not in rec:
                ctx.skip(rid, f"no label ({file_split} split)")
                continue
            template = str(rec["template"])
            name = template.replace("[", "").replace("]", "")
            if name not in classes:
                ctx.skip(rid, f"unknown class {name!r}")
                continue
            video = index.find(rid)
            if video is None:
                ctx.skip(rid, f"video not found ({rid}.webm)")
                continue
            row = finish_row(ctx, {
                "id": rid, "video": video, "source": "ssv2", "split": file_split,
                "labels": {"action": name, "caption": str(rec["label"])},
                "verifiers": {"action": "class", "caption": "sentence"},
                "question": ctx.question(rid, "sentence", {"action": name, "caption": str(rec["label"])},
                                         {"action": "class", "caption": "sentence"}),
            })
            if row:
                yield row
