"""Verifier registry, thresholds and the record contract of DESIGN.md section 4."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from vstar_ray.verify import checks


class RecordError(ValueError):
    """A record that cannot be verified; the message names its id."""


@dataclass(frozen=True)
class Verifier:
    verify: Callable[..., tuple[bool, Any]]  # (answer, label, **thresholds) -> (ok, extracted)
    check_label: Callable[[Any], None]  # raises ValueError for a malformed label
    defaults: dict[str, float] = field(default_factory=dict)


VERIFIERS: dict[str, Verifier] = {}


def register(name: str, verify: Callable, check_label: Callable, defaults: dict[str, float] | None = None) -> None:
    VERIFIERS[name] = Verifier(verify, check_label, dict(defaults or {}))


register("class", checks.verify_class, checks.check_class_label, {"similarity": 80.0})
register("float", checks.verify_float, checks.check_float_label, {"rel_tol": 0.05, "abs_tol": 1e-6})
register("timestamp", checks.verify_timestamp, checks.check_timestamp_label, {"abs_tol": 0.1})
register("temporal_range", checks.verify_temporal_range, checks.check_temporal_range_label, {"iou": 0.5})
register("bbox", checks.verify_bbox, checks.check_bbox_label, {"iou": 0.5})
register("same_or_not", checks.verify_same_or_not, checks.check_same_or_not_label, {})


def default_thresholds() -> dict[str, dict[str, float]]:
    return {name: dict(v.defaults) for name, v in VERIFIERS.items()}


def load_thresholds(path: str | Path | None) -> dict[str, dict[str, float]]:
    """Defaults, overridden by a ``thresholds.yaml`` of the form ``{type: {param: value}}``."""
    thresholds = default_thresholds()
    if not path:
        return thresholds
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read thresholds {path}: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"thresholds {path}: expected a mapping of verifier type -> parameters")
    for name, params in raw.items():
        if name not in VERIFIERS:
            raise ValueError(f"thresholds {path}: unknown verifier type {name!r} (known: {sorted(VERIFIERS)})")
        if not isinstance(params, dict):
            raise ValueError(f"thresholds {path}: {name} must map parameter names to numbers")
        for key, value in params.items():
            if key not in thresholds[name]:
                raise ValueError(f"thresholds {path}: unknown parameter {name}.{key}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"thresholds {path}: {name}.{key} must be a number, got {value!r}")
            thresholds[name][key] = float(value)
    return thresholds


def _as_mapping(value: Any, what: str, record_id: str) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise RecordError(f"record {record_id!r}: {what} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise RecordError(f"record {record_id!r}: {what} must be an object, got {type(value).__name__}")
    return value


def verify_labels(
    record_id: str, answer: Any, labels: Any, verifiers: Any, thresholds: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    """Check ``answer`` against every label (AND). Returns ``verified``, ``verdicts``, ``extracted``."""
    thresholds = thresholds or default_thresholds()
    labels = _as_mapping(labels, "labels", record_id)
    verifiers = _as_mapping(verifiers, "verifiers", record_id)
    if not labels:
        raise RecordError(f"record {record_id!r}: labels is empty")
    missing = sorted(set(labels) - set(verifiers))
    if missing:
        raise RecordError(f"record {record_id!r}: no verifier given for label(s) {missing}")
    if not isinstance(answer, str):
        raise RecordError(f"record {record_id!r}: output must be a string, got {type(answer).__name__}")
    verdicts, extracted = {}, {}
    for name, label in labels.items():
        kind = verifiers[name]
        verifier = VERIFIERS.get(kind)
        if verifier is None:
            raise RecordError(f"record {record_id!r}: unknown verifier type {kind!r} for label {name!r}")
        try:
            verifier.check_label(label)
        except ValueError as e:
            raise RecordError(f"record {record_id!r}: label {name!r}: {e}") from e
        ok, found = verifier.verify(answer, label, **thresholds.get(kind, {}))
        verdicts[name], extracted[name] = bool(ok), found
    return {"verified": all(verdicts.values()), "verdicts": verdicts, "extracted": extracted}


def verify_record(record: dict[str, Any], thresholds: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The ``vstar verify`` contract: the record repeated, plus ``verified``, ``verdicts``, ``extracted``."""
    record_id = record.get("id")
    if record_id is None:
        raise RecordError(f"record without 'id': {json.dumps(record)[:200]}")
    for key in ("question", "output", "labels", "verifiers"):
        if key not in record:
            raise RecordError(f"record {record_id!r}: missing field {key!r}")
    result = verify_labels(str(record_id), record["output"], record["labels"], record["verifiers"], thresholds)
    return {**record, **result}
