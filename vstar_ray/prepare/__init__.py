"""``vstar prepare``: a label source's annotation files to a manifest (docs/architecture.md, "Contracts").

Rows that cannot be used are skipped and reported by id with their reason, on screen (a count and the
first few) and in ``<manifest stem>.skipped.jsonl`` beside the manifest. Rows stream from the
annotations to parquet in chunks, so Kinetics-scale files (650K rows) never sit in memory.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from vstar_ray import prompts
from vstar_ray.prepare import finediving, kinetics, ssv2, star, table
from vstar_ray.prepare.common import AnnotationError, Context, write_skipped, write_streaming

SOURCES = ("kinetics700", "kinetics400", "kinetics600", "finediving", "star", "ssv2", "table")


def prepare(source: str, annotations: str | Path, videos: str | Path, out: str | Path, templates: str | None = None,
            seed: int = 0, split: str = "", classes: str | None = None) -> dict:
    """Writes the manifest ``out`` and ``<stem>.skipped.jsonl``; returns counts and the skipped reasons."""
    if source not in SOURCES:
        raise AnnotationError(f"unknown source {source!r} (choose from {', '.join(SOURCES)})")
    annotations, videos, out = Path(annotations), Path(videos).resolve(), Path(out)
    if not annotations.exists():
        raise AnnotationError(f"annotations {annotations} do not exist")
    if not videos.is_dir():
        raise AnnotationError(f"video folder {videos} does not exist")
    ctx = Context(videos=videos, templates=prompts.load_templates(templates), seed=seed)
    if source.startswith("kinetics"):
        known = kinetics.read_classes(Path(classes)) if classes else None
        rows = kinetics.rows(ctx, annotations, known, split, source)
    else:
        rows = {"finediving": finediving.rows, "star": star.rows, "ssv2": ssv2.rows, "table": table.rows}[source](
            ctx, annotations, split=split)
    # paths relative to the manifest's folder when the videos are under it, else absolute
    manifest_dir = out.resolve().parent
    relative_ok = os.path.commonpath([str(manifest_dir), str(videos)]) == str(manifest_dir)
    prefix = os.path.relpath(videos, manifest_dir) if relative_ok else str(videos)
    prefix = "" if prefix == "." else prefix + "/"

    def placed(row_stream):
        for row in row_stream:
            video = row["video"]
            if "://" not in video and not os.path.isabs(video):
                row["video"] = prefix + video
            yield row

    written = write_streaming(placed(rows), out)
    skipped_path = out.with_name(f"{out.stem}.skipped.jsonl")
    write_skipped(ctx.skipped, skipped_path)
    reasons = Counter(_category(s.reason) for s in ctx.skipped)
    return {"source": source, "rows": written, "skipped": len(ctx.skipped), "manifest": str(out),
            "skipped_file": str(skipped_path), "skipped_by_reason": dict(reasons.most_common()),
            "first_skipped": [{"id": s.id, "reason": s.reason} for s in ctx.skipped[:5]]}


def _category(reason: str) -> str:
    """'end 3.0 <= start 3.0' -> 'end <= start': skip reasons grouped without their values."""
    reason = re.sub(r"^line \d+: ", "", reason).split(" (")[0].split(":")[0]
    return re.sub(r"\s+", " ", re.sub(r"'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?s?", "", reason)).strip()


__all__ = ["SOURCES", "AnnotationError", "prepare"]
