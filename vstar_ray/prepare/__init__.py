"""``vstar prepare``: a label source's annotation files to a manifest (docs/architecture.md, "Contracts").

Rows that cannot be used are skipped and reported by id with their reason, on screen (a count and the
first few) and in ``<manifest stem>.skipped.jsonl`` beside the manifest. Rows stream from the
annotations to parquet in chunks, so Kinetics-scale files (650K rows) never sit in memory.

``--split test`` builds the paper's test set of a source (``TEST_SPLITS``: Kinetics' validation set, STAR's
``STAR_val.json``, FineDiving's ``test_split.pkl``) with the paper's items (``prepare/paper.py``). Every manifest is
written with ``<stem>.ids.txt`` (its ids) and ``<stem>.sha256`` (the digest of its items), so that two users can
check that they hold the same set.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from vstar_ray import prompts
from vstar_ray.io import atomic_write_text
from vstar_ray.prepare import finediving, kinetics, ssv2, star, table
from vstar_ray.prepare.common import AnnotationError, Context, set_digest, write_skipped, write_streaming

SOURCES = ("kinetics700", "kinetics400", "kinetics600", "finediving", "star", "ssv2", "table")
# the split each source's paper test set comes from (the reference builds STAR's from STAR_val.json, FineDiving's from
# test_split.pkl; Kinetics' test labels are not public, so the validation set stands in)
TEST_SPLITS = {"kinetics700": "validate", "kinetics400": "validate", "kinetics600": "validate", "star": "val",
               "finediving": "test"}


def prepare(source: str, annotations: str | Path, videos: str | Path, out: str | Path, templates: str | None = None,
            seed: int = 0, split: str = "", classes: str | None = None, items: str = "", size: int = 0) -> dict:
    """Writes the manifest ``out``, ``<stem>.skipped.jsonl``, ``<stem>.ids.txt`` and ``<stem>.sha256``; returns
    counts, the skipped reasons and the set's digest. ``items``: vstar or paper (default: paper for ``split=test``);
    ``size``: a seeded subset of at most that many rows (0: all)."""
    if source not in SOURCES:
        raise AnnotationError(f"unknown source {source!r} (choose from {', '.join(SOURCES)})")
    if split == "test" and source in TEST_SPLITS:
        split = TEST_SPLITS[source]
        items = items or "paper"
    items = items or "vstar"
    if items not in ("vstar", "paper"):
        raise AnnotationError(f"--items {items!r}: choose vstar or paper")
    if items == "paper" and source in ("ssv2", "table"):
        raise AnnotationError(f"--items paper: the paper adapted kinetics, star and finediving, not {source}")
    annotations, videos, out = Path(annotations), Path(videos).resolve(), Path(out)
    if not annotations.exists():
        raise AnnotationError(f"annotations {annotations} do not exist")
    if not videos.is_dir():
        raise AnnotationError(f"video folder {videos} does not exist")
    from vstar_ray.prepare import paper

    ctx = Context(videos=videos, templates={**paper.TEMPLATES, **prompts.load_templates(templates)}, seed=seed,
                  items=items)
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

    written = write_streaming(placed(subset(rows, size, seed) if size else rows), out)
    skipped_path = out.with_name(f"{out.stem}.skipped.jsonl")
    write_skipped(ctx.skipped, skipped_path)
    ids = pq.read_table(out, columns=["id"])["id"].to_pylist()
    digest = set_digest(pq.read_table(out).to_pylist())
    atomic_write_text(out.with_name(f"{out.stem}.ids.txt"), "".join(f"{i}\n" for i in sorted(ids)))
    atomic_write_text(out.with_name(f"{out.stem}.sha256"), f"{digest}  {out.name} ({written} rows, {items} items, "
                                                           f"seed {seed})\n")
    reasons = Counter(_category(s.reason) for s in ctx.skipped)
    return {"source": source, "rows": written, "skipped": len(ctx.skipped), "manifest": str(out), "items": items,
            "split": split, "set_sha256": digest, "skipped_file": str(skipped_path),
            "skipped_by_reason": dict(reasons.most_common()),
            "first_skipped": [{"id": s.id, "reason": s.reason} for s in ctx.skipped[:5]]}


def subset(rows, size: int, seed: int) -> list[dict]:
    """A seeded subset of ``size`` units (a clip, a question, a dive: the part of an id before its ``:``), with
    every item of each unit chosen, in the order they came."""
    rows = list(rows)
    units = sorted({r["id"].split(":")[0] for r in rows})
    chosen = set(prompts.seeded_rng(seed, "subset").sample(units, min(size, len(units))))
    return [r for r in rows if r["id"].split(":")[0] in chosen]


def _category(reason: str) -> str:
    """'end 3.0 <= start 3.0' -> 'end <= start': skip reasons grouped without their values."""
    reason = re.sub(r"^line \d+: ", "", reason).split(" (")[0].split(":")[0]
    return re.sub(r"\s+", " ", re.sub(r"'[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?s?", "", reason)).strip()


__all__ = ["SOURCES", "AnnotationError", "prepare"]
