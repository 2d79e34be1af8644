"""Pydantic's validation errors of a config as one line per key: ``train.lr: must be > 0, got 0 (config c.yaml)``:
the dotted key, what is wrong in our words, the value, and where it came from (the YAML file or the ``--set``)."""

from __future__ import annotations

import os
import typing
from typing import Any

from pydantic import ValidationError


PHRASES = {
    "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}", "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}", "finite_number": "must be a finite number", "int_type": "expected an integer",
    "int_from_float": "expected an integer", "bool_type": "expected true/false", "float_type": "expected a number",
    "float_parsing": "expected a number", "string_type": "expected a string", "list_type": "expected a list",
    "literal_error": "expected one of {expected}", "string_too_short": "must not be empty", "too_short": "must not be empty",
    "dataclass_type": "expected a mapping", "dataclass_args_type": "expected a mapping",
}


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _known(loc: tuple) -> list[str]:
    """The keys of the config section at ``loc`` (for an unknown key's message)."""
    from vstar_ray.config import Config

    section: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        info = getattr(section, "__pydantic_fields__", {}).get(part)
        if info is None:
            return []
        section = info.annotation
        while typing.get_origin(section) is not None:  # list[ManifestSource], X | None
            section = next(a for a in typing.get_args(section) if a is not type(None))
    return sorted(getattr(section, "__pydantic_fields__", {}))


def describe(error: ValidationError, path: str | os.PathLike | None, overridden: list[str]) -> str:
    """The validation errors as ``SOURCE: dotted.key: what is wrong (got VALUE)``, one per key, ``; ``-joined."""
    lines, unknown = [], []
    for e in error.errors():
        loc = tuple(p for p in e["loc"] if p != "__post_init__")
        key = _dotted(loc)
        if e["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            unknown.append((key, loc[:-1]))
            continue
        ctx = {k: (", ".join(v) if isinstance(v, (list, tuple)) else v) for k, v in (e.get("ctx") or {}).items()}
        phrase = PHRASES.get(e["type"], "").format(**ctx) if e["type"] in PHRASES else e["msg"].removeprefix(
            "Value error, ")
        got = "" if e["type"] in ("value_error",) or isinstance(e.get("input"), dict) else f", got {e.get('input')!r}"
        lines.append(f"{key}: {phrase}{got} ({_source(key, path, overridden)})" if key
                     else f"{phrase} ({_source(key, path, overridden)})")
    if unknown:
        keys = ", ".join(k for k, _ in unknown)
        known = _known(unknown[0][1])
        lines.insert(0, f"unknown config key(s): {keys} ({_source(unknown[0][0], path, overridden)})"
                     + (f"; known: {', '.join(known)}" if known else ""))
    return "; ".join(lines)


def _source(key: str, path: str | os.PathLike | None, overridden: list[str]) -> str:
    """Where ``key``'s value came from: the ``--set`` that gave it (or a key inside it), else the config file."""
    for o in overridden:
        if key == o or key.startswith((o + ".", o + "[")) or o.startswith(key + "."):
            return f"--set {o}"
    return f"config {path}" if path else "config"
