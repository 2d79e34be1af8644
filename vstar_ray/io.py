"""Atomic file writes: temp file in the same folder, then rename, so a reader never sees half a file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_parquet(table, path: str | os.PathLike) -> None:
    """A pyarrow table to ``path``, written to a temporary name in the same folder and renamed."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any, str]]:
    """``(line number, value, "")`` for each non-empty line of a JSONL file, or ``(n, None, why)`` when a
    line is not UTF-8 text or not valid JSON; callers decide whether that stops them or is skipped.
    Lines are read as bytes and split on ``\\n`` only, so line numbers are what an editor shows."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, None, f"not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 4]!r})"
                continue
            if not line.strip():
                continue
            try:
                yield n, json.loads(line), ""
            except json.JSONDecodeError as e:
                yield n, None, f"not valid JSON: {e}"


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move a finished folder into place, replacing any earlier one."""
    dst = Path(dst)
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
