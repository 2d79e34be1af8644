"""Kinetics-400/600/700: the official CSV (``label,youtube_id,time_start,time_end,split``).

Clips are found by the standard downloader names ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (flat or
under per-label folders); a full video named ``<youtube_id>.<ext>`` is used with the window as
``start``/``end``. Label: the class (class verifier). The test split has no label: its rows are skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from vstar_ray.prepare.common import AnnotationError, Context, finish_row

REQUIRED = ("youtube_id", "time_start", "time_end")


def _csv_files(annotations: Path) -> list[Path]:
    if annotations.is_dir():
        files = sorted(p for p in annotations.glob("*.csv"))
        if not files:
            raise AnnotationError(f"{annotations}: no .csv files (expected the Kinetics CSVs)")
        return files
    return [annotations]


def rows(ctx: Context, annotations: Path, classes: set[str] | None = None, split: str = "",
         source: str = "kinetics700") -> Iterator[dict]:
    index = ctx.video_index()
    for path in _csv_files(annotations):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise AnnotationError(f"{path}: not a Kinetics CSV: missing column(s) {missing} "
                                      f"(header: {','.join(header)}; expected label,youtube_id,time_start,time_end,split)")
            for n, rec in enumerate(reader, 2):
                yid = (rec.get("youtube_id") or "").strip()
                try:
                    start, end = float(rec["time_start"]), float(rec["time_end"])
                except (TypeError, ValueError):
                    ctx.skip(f"{path.name}:{n}", f"unreadable times {rec.get('time_start')!r}, {rec.get('time_end')!r}")
                    continue
                row_id = f"{yid}_{int(start):06d}_{int(end):06d}"
                row_split = (rec.get("split") or "").strip()
                if split and row_split != split:
                    continue
                label = (rec.get("label") or "").strip()
                if not yid:
                    ctx.skip(f"{path.name}:{n}", "no youtube_id")
                    continue
                if not label:
                    ctx.skip(row_id, f"no label (split {row_split or '?'})")
                    continue
                if end <= start:
                    ctx.skip(row_id, f"end {end} <= start {start}")
                    continue
                if classes is not None and label not in classes:
                    ctx.skip(row_id, f"unknown class {label!r}")
                    continue
                clip = index.find(row_id)
                window = (None, None)
                if clip is None:
                    clip = index.find(yid)
                    window = (start, end)
                if clip is None:
                    ctx.skip(row_id, f"video not found ({row_id}.mp4/.mkv/.webm or {yid}.*)")
                    continue
                row = finish_row(ctx, {
                    "id": row_id, "video": clip, "start": window[0], "end": window[1], "source": source,
                    "split": row_split, "labels": {"action": label}, "verifiers": {"action": "class"},
                    "question": ctx.question(row_id, "class", {"action": label}, {"action": "class"}),
                })
                if row:
                    yield row


def read_classes(path: Path) -> set[str]:
    """A class list: one name per line (the mmaction2 label maps)."""
    text = path.read_text(encoding="utf-8").splitlines()
    names = {line.strip() for line in text if line.strip()}
    if not names:
        raise AnnotationError(f"{path}: empty class list")
    return names
