"""The manifest (docs/architecture.md, "Contracts"): one row per labeled clip, stored as parquet.

Columns: ``id`` (unique str), ``video`` (relative to the video root, or absolute/URI),
optional ``start``/``end`` (seconds), ``source``, ``split``, ``labels`` and ``verifiers``
(JSON objects as strings), optional ``question``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vstar_ray.errors import InputError
from vstar_ray.verify import RecordError, VERIFIERS

REQUIRED = ("id", "video", "labels", "verifiers")
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("video", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("labels", pa.string()),
        ("verifiers", pa.string()),
        ("question", pa.string()),
    ]
)


class ManifestError(InputError):
    pass


def write_manifest(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write rows (labels/verifiers as dicts or JSON strings) as a manifest parquet, atomically."""
    from vstar_ray.io import atomic_write_parquet

    atomic_write_parquet(pa.Table.from_pylist([normalize_row(r) for r in rows], schema=SCHEMA), path)


def normalize_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with every manifest column, labels/verifiers as JSON strings."""
    out = {name: row.get(name) for name in SCHEMA.names}
    for key in ("labels", "verifiers"):
        if not isinstance(out[key], str):
            out[key] = json.dumps(out[key])
    out["source"] = out["source"] or ""
    out["split"] = out["split"] or ""
    return out


def validate_manifest(path: str | os.PathLike) -> int:
    """Check a manifest before any expensive work: columns, types, unique ids, labels. Returns the row count."""
    try:
        table = pq.read_table(path)
    except Exception as e:
        raise ManifestError(f"cannot read manifest {path}: {e}") from e
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ManifestError(f"manifest {path}: missing column(s) {missing}")
    if table.num_rows == 0:
        raise ManifestError(f"manifest {path} has no rows")
    seen: set[str] = set()
    for i, row in enumerate(table.select([c for c in table.column_names if c in SCHEMA.names]).to_pylist()):
        rid = row.get("id")
        if not isinstance(rid, str) or not rid:
            raise ManifestError(f"manifest {path}: row {i}: 'id' must be a non-empty string, got {rid!r}")
        if rid in seen:
            raise ManifestError(f"manifest {path}: duplicate id {rid!r}")
        seen.add(rid)
        if not isinstance(row.get("video"), str) or not row["video"]:
            raise ManifestError(f"manifest {path}: row {rid!r}: 'video' must be a non-empty string")
        window_error = clip_window_error(row.get("start"), row.get("end"))
        if window_error:
            raise ManifestError(f"manifest {path}: row {rid!r}: {window_error}")
        try:
            labels = json.loads(row["labels"]) if isinstance(row["labels"], str) else row["labels"]
            verifiers = json.loads(row["verifiers"]) if isinstance(row["verifiers"], str) else row["verifiers"]
        except (TypeError, json.JSONDecodeError) as e:
            raise ManifestError(f"manifest {path}: row {rid!r}: labels/verifiers are not JSON: {e}") from e
        if not isinstance(labels, dict) or not labels or not isinstance(verifiers, dict):
            raise ManifestError(f"manifest {path}: row {rid!r}: labels must be a non-empty JSON object")
        for name, label in labels.items():
            kind = verifiers.get(name)
            if kind not in VERIFIERS:
                raise ManifestError(f"manifest {path}: row {rid!r}: label {name!r} has unknown verifier {kind!r}")
            try:
                VERIFIERS[kind].check_label(label)
            except ValueError as e:
                raise ManifestError(f"manifest {path}: row {rid!r}: label {name!r}: {e}") from e
    return table.num_rows


def clip_window_error(start: Any, end: Any) -> str:
    """Why a row's ``start``/``end`` (seconds, either may be missing) is not a clip window; '' when it is."""
    given = {k: v for k, v in (("start", start), ("end", end))
             if v is not None and not (isinstance(v, float) and math.isnan(v))}
    for key, value in given.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return f"'{key}' must be a number of seconds, got {value!r}"
        if value < 0:
            return f"'{key}' must not be negative, got {value}"
    if len(given) == 2 and given["start"] >= given["end"]:
        return f"'start' ({given['start']}) must be before 'end' ({given['end']})"
    return ""


def is_uri(path: str) -> bool:
    return "://" in path


def resolve_video(video: str, root: str) -> str:
    """A manifest ``video`` entry as a path or URI to open; relative entries may not escape ``root``.

    Absolute paths and URIs (``s3://``, ``gs://``, ``file://`` ..., read through pyarrow's filesystems)
    are taken as given, by design; a relative entry under a URI root is joined to it."""
    if is_uri(video) or os.path.isabs(video):
        return video
    if is_uri(root):
        parts = [p for p in video.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise RecordError(f"video path {video!r} escapes the video root {root!r}")
        return root.rstrip("/") + "/" + "/".join(parts)
    base = os.path.realpath(root)
    full = os.path.realpath(os.path.join(base, video))
    if os.path.commonpath([base, full]) != base:
        raise RecordError(f"video path {video!r} escapes the video root {root!r}")
    return full


def video_root_for(manifest: str, configured: str) -> str:
    """Where relative ``video`` entries resolve: the configured root, else the manifest's folder (or URI)."""
    if configured:
        return configured
    if is_uri(manifest):
        return manifest.rsplit("/", 1)[0]
    return str(Path(manifest).resolve().parent)
