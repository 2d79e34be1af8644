"""What every label source shares: the streaming manifest writer, the skipped-rows log, the video index."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from vstar_ray import prompts
from vstar_ray.errors import InputError
from vstar_ray.data.manifest import SCHEMA, normalize_row
from vstar_ray.io import atomic_path, atomic_write_text
from vstar_ray.verify import RecordError, parse_labels

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".gif", ".m4v")


class AnnotationError(InputError):
    """An annotation file in the wrong format: one clear error, no traceback."""


@dataclass
class Skip:
    id: str
    reason: str


@dataclass
class Context:
    """What a source adapter gets: where videos are, the question templates, the seed, the skip log."""

    videos: Path
    templates: dict[str, list[str]]
    seed: int = 0
    items: str = "vstar"  # vstar: vstar-ray's items per source; paper: the reference builders' (prepare/paper.py)
    skipped: list[Skip] = field(default_factory=list)
    index: "VideoIndex | None" = None

    def skip(self, row_id: Any, reason: str) -> None:
        self.skipped.append(Skip(str(row_id), reason))

    def question(self, row_id: str, kind: str, labels: dict | None = None, verifiers: dict | None = None,
                 **fields) -> str:
        """A seeded template question; given the row's labels, one that does not give them away."""
        avoid = (labels, verifiers) if labels is not None else None
        return prompts.question(row_id, kind, self.seed, self.templates, avoid=avoid, **fields)

    def video_index(self) -> "VideoIndex":
        if self.index is None:
            self.index = VideoIndex(self.videos)
        return self.index


class VideoIndex:
    """Every video file under a root, by file stem, found with one ``os.scandir`` walk (fast at 650K files).

    Paths are stored relative to the root, as the manifest wants them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise AnnotationError(f"video folder {self.root} does not exist")
        self.by_stem: dict[str, str] = {}
        self.dirs: set[str] = set()
        stack = [""]
        while stack:
            rel = stack.pop()
            with os.scandir(self.root / rel if rel else self.root) as entries:
                for entry in entries:
                    name = f"{rel}/{entry.name}" if rel else entry.name
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(name)
                        self.dirs.add(name)
                    else:
                        stem, ext = os.path.splitext(entry.name)
                        if ext.lower() in VIDEO_EXTENSIONS:
                            self.by_stem.setdefault(stem, name)

    def find(self, stem: str) -> str | None:
        return self.by_stem.get(stem)


def finish_row(ctx: Context, row: dict[str, Any]) -> dict[str, Any] | None:
    """Validates labels (the verifier's own checks) and that the question does not give the answer away.
    Returns the row, or None after logging why it is skipped."""
    try:
        parse_labels(row["id"], "", row["labels"], row["verifiers"])
    except RecordError as e:
        ctx.skip(row["id"], f"bad label: {e}")
        return None
    leaked = prompts.leaked_words(row.get("question") or "", row["labels"], row["verifiers"])
    if leaked:
        ctx.skip(row["id"], f"question gives the answer away (contains {', '.join(leaked)})")
        return None
    return row


def write_streaming(rows: Iterable[dict[str, Any]], path: Path, chunk: int = 20_000) -> int:
    """Writes rows to a manifest parquet in chunks (never the whole dataset in memory), atomically.
    Duplicate ids are an error naming the id."""
    seen: set[str] = set()
    count = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, SCHEMA) as writer:
            buffer: list[dict[str, Any]] = []
            for row in rows:
                if row["id"] in seen:
                    raise AnnotationError(f"duplicate id {row['id']!r} in the annotations")
                seen.add(row["id"])
                buffer.append(normalize_row(row))
                if len(buffer) >= chunk:
                    writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
                    count += len(buffer)
                    buffer = []
            if buffer:
                writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
                count += len(buffer)
    return count


def write_skipped(skipped: list[Skip], path: Path) -> None:
    atomic_write_text(path, "".join(json.dumps({"id": s.id, "reason": s.reason}, ensure_ascii=False) + "\n"
                                    for s in skipped))



class VideoProbe:
    """Duration (s) and frame size of videos, read once per file with PyAV (None when unreadable)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: dict[str, tuple[float, int, int] | None] = {}

    def __call__(self, rel: str) -> tuple[float, int, int] | None:
        if rel not in self._cache:
            self._cache[rel] = self._probe(self.root / rel)
        return self._cache[rel]

    @staticmethod
    def _probe(path: Path) -> tuple[float, int, int] | None:
        import av

        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                if stream.duration is not None and stream.time_base:
                    duration = float(stream.duration * stream.time_base)
                elif container.duration:
                    duration = container.duration / 1_000_000
                else:
                    return None
                return duration, stream.codec_context.width, stream.codec_context.height
        except Exception:  # noqa: BLE001 - PyAV raises many types on bad files
            return None


def set_digest(rows: list[dict]) -> str:
    """SHA-256 of a manifest's items, independent of where its videos live: every row's id, video file name, clip
    window, labels, verifiers and question, sorted by id. Two users holding the same set get the same digest."""
    import hashlib

    canonical = [{"id": r["id"], "video": os.path.basename(str(r["video"]).rstrip("/")), "start": r.get("start"),
                  "end": r.get("end"), "labels": r["labels"], "verifiers": r["verifiers"], "question": r.get("question")}
                 for r in sorted(rows, key=lambda r: r["id"])]
    for row in canonical:  # JSON strings (a written manifest) and objects (rows being built) hash alike
        for key in ("labels", "verifiers"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
        for key in ("start", "end"):
            if row[key] is not None and row[key] != row[key]:  # NaN: no window
                row[key] = None
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
