"""A user's own labels: CSV or JSONL with a ``video`` column and either ``label`` (a class) or
``labels`` + ``verifiers`` (JSON objects); ``id``, ``start``, ``end``, ``question``, ``split`` optional."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator

from vstar_ray.io import iter_jsonl
from vstar_ray.prepare.common import AnnotationError, Context, finish_row
from vstar_ray.verify import RecordError, parse_labels


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, why not) for every data line."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for n, rec, why in iter_jsonl(path):
            yield (n, rec, why) if why or isinstance(rec, dict) else (n, None, "not a JSON object")
    elif path.suffix.lower() in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if "video" not in (reader.fieldnames or []):
                raise AnnotationError(f"{path}: no 'video' column (columns: {', '.join(reader.fieldnames or [])})")
            for n, rec in enumerate(reader, 2):
                yield n, rec, ""
    else:
        raise AnnotationError(f"{path}: a table source must be .csv, .tsv or .jsonl")


def _json_field(value: Any, name: str) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value


def _seconds(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def rows(ctx: Context, annotations: Path, split: str = "") -> Iterator[dict]:
    if not annotations.is_file():
        raise AnnotationError(f"{annotations}: not a file")
    for n, rec, why in _records(annotations):
        row_id = str((rec or {}).get("id") or f"{annotations.stem}:{n}")
        if rec is None:
            ctx.skip(row_id, f"line {n}: {why}")
            continue
        if split and (rec.get("split") or "") != split:
            continue
        video = str(rec.get("video") or "").strip()
        try:
            if not video:
                raise ValueError("no video")
            if rec.get("labels") not in (None, ""):
                labels, verifiers = _json_field(rec["labels"], "labels"), _json_field(rec.get("verifiers"), "verifiers")
            elif rec.get("label") not in (None, ""):
                labels, verifiers = {"label": str(rec["label"])}, {"label": "class"}
            else:
                raise ValueError("neither 'label' nor 'labels' + 'verifiers'")
            start, end = _seconds(rec.get("start")), _seconds(rec.get("end"))
        except (ValueError, TypeError, json.JSONDecodeError) as e:
            ctx.skip(row_id, f"line {n}: {e}")
            continue
        if start is not None and end is not None and end <= start:
            ctx.skip(row_id, f"line {n}: end {end} <= start {start}")
            continue
        if "://" not in video and not (Path(video) if os.path.isabs(video) else ctx.videos / video).exists():
            ctx.skip(row_id, f"line {n}: video not found ({video})")
            continue
        try:
            parse_labels(row_id, "", labels, verifiers)
        except RecordError as e:
            ctx.skip(row_id, f"line {n}: bad label: {e}")
            continue
        question = rec.get("question")
        if not question:
            kind = next(iter(verifiers.values()))
            try:
                question = ctx.question(row_id, kind if kind in ctx.templates else "class", labels, verifiers)
            except ValueError as e:
                ctx.skip(row_id, f"line {n}: no 'question' given and {e}")
                continue
        row = finish_row(ctx, {"id": row_id, "video": video, "start": start, "end": end,
                               "source": str(rec.get("source") or "table"), "split": str(rec.get("split") or ""),
                               "labels": labels, "verifiers": verifiers, "question": question})
        if row:
            yield row
