"""Files written atomically and structured files read with one kind of error.

Writes go to a temporary name in the same folder and are renamed into place, so a reader (or a resume after
a crash) never sees half a file: ``atomic_path`` for any writer, ``atomic_dir`` for a folder, and the text,
JSON and parquet shorthands on top. Reads of YAML and JSON files raise an ``InputError`` (or the subclass a
caller names) that names the file and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

from vstar_ray.errors import InputError

TEMPORARY = ".tmp"  # in the name of every file or folder that is still being written


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path`` for writing it; keeps the suffix (writers pick the format from it)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMPORARY}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path`` through: renamed onto ``path`` when the block ends, removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise named(e, path) from e
    finally:
        tmp.unlink(missing_ok=True)


def named(e: OSError, path: Path) -> OSError:
    """``e`` with the file it was writing: pyarrow's and torch's write errors name none ("[errno 28] Error writing
    bytes to file"), and a full disk must say where it filled up."""
    if e.filename:
        return e
    code = e.errno or (errno.ENOSPC if "No space left" in str(e) or "errno 28" in str(e) else errno.EIO)
    return OSError(code, os.strerror(code), str(path))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder to fill; it replaces ``path`` (and any earlier folder there) when the block ends."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_parquet(table, path: str | os.PathLike) -> None:
    """A pyarrow table to ``path``, atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


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


def make_dir(path: str | os.PathLike, what: str = "the output folder") -> Path:
    """``path`` created if missing; an ``InputError`` naming it when it cannot be (its parent is a file, no
    permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {what} {path}: {e.strerror or e}") from e
    return path


def _text(path: str | os.PathLike, what: str, error: type[InputError]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {path}: not UTF-8 text (byte {e.start})") from e
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from e


def read_yaml(path: str | os.PathLike, what: str = "file", error: type[InputError] = InputError) -> Any:
    """The YAML document in ``path``; ``error`` (naming ``what`` and the file) if it cannot be read or parsed."""
    import yaml

    try:
        return yaml.safe_load(_text(path, what, error))
    except yaml.YAMLError as e:
        raise error(f"{what} {path}: not valid YAML: {e}") from e


def read_json(path: str | os.PathLike, what: str = "file", error: type[InputError] = InputError) -> Any:
    """The JSON document in ``path``; ``error`` (naming ``what`` and the file) if it cannot be read or parsed."""
    try:
        return json.loads(_text(path, what, error))
    except json.JSONDecodeError as e:
        raise error(f"{what} {path}: not valid JSON: {e}") from e


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any, str]]:
    """``(line number, value, "")`` for each non-empty line of a JSONL file, or ``(n, None, why)`` when a
    line is not UTF-8 text or not valid JSON; callers decide whether that stops them or is skipped.
    Lines are read as bytes and split on ``\\n`` only, so line numbers are what an editor shows."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    with f:
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


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": value}`` (lists and scalars are leaves)."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}
