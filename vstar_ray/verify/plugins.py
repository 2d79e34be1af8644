"""Verifier plug-ins: point vstar-ray at one Python file (or module) and each function in it named
``verify_<type>`` becomes the verifier of label type ``<type>``, in every process that verifies.

    # my_verifiers.py
    THRESHOLDS = {"colour": {"min_hits": 1}}       # optional: each type's tunable thresholds and defaults

    def verify_colour(answer: str, label, min_hits: float = 1):   # -> bool, or (bool, what was read)
        hits = [w for w in answer.lower().split() if w == label]
        return len(hits) >= min_hits, hits[-1] if hits else None

    def check_colour(label) -> None:                # optional: raise ValueError for a malformed label
        if not isinstance(label, str):
            raise ValueError(f"colour label must be a string, got {label!r}")

A plug-in's return value is checked strictly: a bool, or a ``(bool, extracted)`` pair whose extracted value is
JSON-serialisable; anything else stops the run with one line naming the function, its file:line and what it
returned. An exception raised by a plug-in on one record is that record's error (``PluginFailed``, naming the
plug-in and the exception): the record is counted as failed and the others go on, or with
``verify.plugin_errors: fail`` the run stops on the first one, naming the record.

``verify.plugins: [my_verifiers.py]`` (or ``package.module``) loads it in the driver before manifests and
thresholds are checked, and in every Ray worker of the verify stages; ``vstar verify`` and ``vstar tune`` take
``--plugins``. On a cluster the file must be where every node can read it (shared storage, or the job's
working_dir). ``register()`` called in the driver alone is not seen by the workers: use a plug-in.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vstar_ray.errors import InputError
from vstar_ray.verify.registry import VERIFIERS, RecordError, register

_LOADED: dict[str, list[str]] = {}


class PluginError(InputError):
    """A plug-in that cannot be loaded, or that returned something other than its contract; the message names it."""


class PluginFailed(RecordError):
    """A plug-in verifier that raised on one record: that record's error, naming the plug-in and the exception."""


# what ``PluginFailed`` says, and how a pass summary reads it back from a row's error (``plugin_error_kind``)
_FAILED = "plug-in {name} raised {error}: {message}"
_FAILED_KIND = re.compile(r"plug-in (\S+ \([^)]*\)) raised (\w+)")


def plugin_error_kind(error: str) -> str | None:
    """``verify_colour (my_verifiers.py:7): ZeroDivisionError`` for a row's error written by a failing plug-in."""
    found = _FAILED_KIND.search(error or "")
    return f"{found.group(1)}: {found.group(2)}" if found else None


def _where(fn: Callable) -> str:
    code = fn.__code__
    return f"{fn.__name__} ({Path(code.co_filename).name}:{code.co_firstlineno})"


def _checked(result: Any, name: str) -> tuple[bool, Any]:
    """The plug-in's return value as ``(ok, extracted)``, or a PluginError naming the function and the value."""
    extracted = None
    if isinstance(result, tuple) and len(result) == 2:
        result, extracted = result
        try:
            json.dumps(extracted)
        except (TypeError, ValueError) as e:
            raise PluginError(f"verify.plugins: {name} returned an extracted value that is not JSON-serialisable "
                              f"({type(extracted).__name__}: {e})") from None
    if isinstance(result, (bool, np.bool_)):
        return bool(result), extracted
    shown = repr(result if extracted is None else (result, extracted))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise PluginError(f"verify.plugins: {name} returned {shown} ({type(result).__name__}); expected a bool or a "
                      f"(bool, extracted) pair")


def _import(spec: str):
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"verify.plugins: {spec!r} is not a file")
        module_spec = importlib.util.spec_from_file_location(f"vstar_plugin_{abs(hash(str(path)))}", path)
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # a plug-in that calls sys.exit() on import is a failed load too
            raise PluginError(f"verify.plugins: {spec!r} failed to load: {type(e).__name__}: {e}") from e
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as e:
        raise PluginError(f"verify.plugins: cannot import {spec!r}: {e}") from e
    except (Exception, SystemExit) as e:
        raise PluginError(f"verify.plugins: {spec!r} failed to load: {type(e).__name__}: {e}") from e


def _wrap(fn: Callable) -> Callable[..., tuple[bool, Any]]:
    name = _where(fn)

    def verify(answer: str, label: Any, **thresholds) -> tuple[bool, Any]:
        try:
            result = fn(answer, label, **thresholds)
        except Exception as e:
            raise PluginFailed(_FAILED.format(name=name, error=type(e).__name__, message=e)) from e
        return _checked(result, name)

    return verify


def resolve(specs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """File paths made absolute (Ray workers may run elsewhere than the driver's folder); modules as given."""
    return tuple(str(Path(s).expanduser().resolve()) if s.endswith(".py") or "/" in s else s for s in specs)


def load_plugins(specs: list[str] | tuple[str, ...]) -> list[str]:
    """Register every ``verify_<type>`` function of each plug-in (once per process); returns the types added."""
    added: list[str] = []
    for spec in specs:
        if spec in _LOADED:
            continue
        module = _import(spec)
        thresholds = getattr(module, "THRESHOLDS", {}) or {}
        types = []
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("verify_") or fn.__module__ != module.__name__:
                continue
            kind = name.removeprefix("verify_")
            if kind in VERIFIERS and kind not in _types_of_plugins():
                raise PluginError(f"verify.plugins: {spec!r} defines {name}, but {kind!r} is a built-in type")
            other = next((s for s, ts in _LOADED.items() if kind in ts), None)
            if other is not None:
                raise PluginError(f"verify.plugins: {spec!r} defines {name}, but {kind!r} is already defined by "
                                  f"{other!r}")
            check = getattr(module, f"check_{kind}", None) or (lambda label: None)
            register(kind, _wrap(fn), check, {k: float(v) for k, v in thresholds.get(kind, {}).items()})
            types.append(kind)
        if not types:
            raise PluginError(f"verify.plugins: {spec!r} defines no verify_<type> function")
        _LOADED[spec] = types
        added += types
    return added


def _types_of_plugins() -> set[str]:
    return {t for types in _LOADED.values() for t in types}
