"""Verifier registry, thresholds and the record contract of docs/architecture.md ("Contracts")."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from vstar_ray.errors import InputError
from vstar_ray.verify import checks, sentences


class RecordError(InputError):
    """A record that cannot be verified; the message names its id."""


@dataclass(frozen=True)
class Verifier:
    verify: Callable[..., tuple[bool, Any]]  # (answer, label, **thresholds) -> (ok, extracted)
    check_label: Callable[[Any], None]  # raises ValueError for a malformed label
    defaults: dict[str, float] = field(default_factory=dict)
    # optional: called once with every (answer, label) of a batch before the per-record checks
    # (the sentence types embed all their texts in one batched call there)
    prepare: Callable[[list[tuple[str, Any]]], None] | None = None
    # the search range of each threshold for ``vstar tune``: param -> (low, high, log scale)
    ranges: dict[str, tuple[float, float, bool]] = field(default_factory=dict)
    # the values a threshold may take at all: param -> (low, high); every threshold is finite and >= 0
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)

    def check_threshold(self, param: str, value: float) -> str | None:
        """Why ``value`` cannot be ``param``'s threshold, or None."""
        low, high = self.limits.get(param, (0.0, math.inf))
        if not math.isfinite(value) or not low <= value <= high:
            return f"must be a finite number in [{low:g}, {high:g}], got {value!r}"
        return None


VERIFIERS: dict[str, Verifier] = {}


def register(
    name: str,
    verify: Callable,
    check_label: Callable,
    defaults: dict[str, float] | None = None,
    prepare: Callable[[list[tuple[str, Any]]], None] | None = None,
    ranges: dict[str, tuple[float, float, bool]] | None = None,
    limits: dict[str, tuple[float, float]] | None = None,
) -> None:
    VERIFIERS[name] = Verifier(verify, check_label, dict(defaults or {}), prepare, dict(ranges or {}),
                               dict(limits or {}))


UNIT = (0.0, 1.0)
register("class", checks.verify_class, checks.check_class_label, {"similarity": 80.0},
         ranges={"similarity": (50.0, 100.0, False)}, limits={"similarity": (0.0, 100.0)})
register("float", checks.verify_float, checks.check_float_label, {"rel_tol": 0.05, "abs_tol": 1e-6},
         ranges={"rel_tol": (0.001, 0.5, True)})  # abs_tol only matters for a zero label: not tuned
register("timestamp", checks.verify_timestamp, checks.check_timestamp_label, {"abs_tol": 0.1},
         ranges={"abs_tol": (0.01, 0.5, False)}, limits={"abs_tol": UNIT})
register("temporal_range", checks.verify_temporal_range, checks.check_temporal_range_label, {"iou": 0.5},
         ranges={"iou": (0.05, 0.95, False)}, limits={"iou": UNIT})
register("bbox", checks.verify_bbox, checks.check_bbox_label, {"iou": 0.5}, ranges={"iou": (0.05, 0.95, False)},
         limits={"iou": UNIT})
register("same_or_not", checks.verify_same_or_not, checks.check_same_or_not_label, {})
register("sentence", sentences.verify_sentence, sentences.check_sentence_label, {"cosine": 0.6},
         prepare=sentences.prepare_sentences, ranges={"cosine": (0.1, 0.95, False)}, limits={"cosine": (-1.0, 1.0)})
register("sentence_sequence", sentences.verify_sentence_sequence, sentences.check_sentence_sequence_label,
         {"cosine": 0.25}, prepare=sentences.prepare_sentences, ranges={"cosine": (0.05, 0.9, False)},
         limits={"cosine": (-1.0, 1.0)})


def default_thresholds() -> dict[str, dict[str, float]]:
    return {name: dict(v.defaults) for name, v in VERIFIERS.items()}


def load_thresholds(path: str | Path | None) -> dict[str, dict[str, float]]:
    """Defaults, overridden by a ``thresholds.yaml`` of the form ``{type: {param: value}}``."""
    thresholds = default_thresholds()
    if not path:
        return thresholds
    from vstar_ray.io import read_yaml

    raw = read_yaml(path, "thresholds") or {}
    if not isinstance(raw, dict):
        raise InputError(f"thresholds {path}: expected a mapping of verifier type -> parameters")
    for name, params in raw.items():
        if name not in VERIFIERS:
            raise InputError(f"thresholds {path}: unknown verifier type {name!r} (known: {sorted(VERIFIERS)})")
        if not isinstance(params, dict):
            raise InputError(f"thresholds {path}: {name} must map parameter names to numbers")
        for key, value in params.items():
            if key not in thresholds[name]:
                raise InputError(f"thresholds {path}: unknown parameter {name}.{key}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"thresholds {path}: {name}.{key} must be a number, got {value!r}")
            why = VERIFIERS[name].check_threshold(key, float(value))
            if why:
                raise InputError(f"thresholds {path}: {name}.{key} {why}")
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


def parse_labels(record_id: str, answer: Any, labels: Any, verifiers: Any) -> list[tuple[str, str, Any]]:
    """Validates a record's labels: ``[(name, verifier type, label)]``, or a RecordError naming the record."""
    labels = _as_mapping(labels, "labels", record_id)
    verifiers = _as_mapping(verifiers, "verifiers", record_id)
    if not labels:
        raise RecordError(f"record {record_id!r}: labels is empty")
    missing = sorted(set(labels) - set(verifiers))
    if missing:
        raise RecordError(f"record {record_id!r}: no verifier given for label(s) {missing}")
    if not isinstance(answer, str):
        raise RecordError(f"record {record_id!r}: output must be a string, got {type(answer).__name__}")
    parsed = []
    for name, label in labels.items():
        kind = verifiers[name]
        verifier = VERIFIERS.get(kind) if isinstance(kind, str) else None
        if verifier is None:
            raise RecordError(f"record {record_id!r}: unknown verifier type {kind!r} for label {name!r}")
        try:
            verifier.check_label(label)
        except ValueError as e:
            raise RecordError(f"record {record_id!r}: label {name!r}: {e}") from e
        parsed.append((name, kind, label))
    return parsed


def _check(answer: str, parsed: list[tuple[str, str, Any]], thresholds: dict) -> dict[str, Any]:
    verdicts, extracted = {}, {}
    for name, kind, label in parsed:
        ok, found = VERIFIERS[kind].verify(answer, label, **thresholds.get(kind, {}))
        verdicts[name], extracted[name] = bool(ok), found
    return {"verified": all(verdicts.values()), "verdicts": verdicts, "extracted": extracted}


def verify_labels(
    record_id: str, answer: Any, labels: Any, verifiers: Any, thresholds: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    """Check ``answer`` against every label (AND). Returns ``verified``, ``verdicts``, ``extracted``."""
    return verify_many([(record_id, answer, labels, verifiers)], thresholds)[0]


def verify_many(
    items: list[tuple[str, Any, Any, Any]], thresholds: dict[str, dict[str, float]] | None = None,
    raise_errors: bool = True,
) -> list[dict[str, Any] | RecordError]:
    """Verify many ``(id, answer, labels, verifiers)`` at once (batched where a type has ``prepare``).

    With ``raise_errors=False`` a bad item yields its RecordError in place and the others are verified.
    """
    thresholds = thresholds or default_thresholds()
    parsed: list[Any] = []
    for record_id, answer, labels, verifiers in items:
        try:
            parsed.append(parse_labels(str(record_id), answer, labels, verifiers))
        except RecordError as e:
            if raise_errors:
                raise
            parsed.append(e)
    by_kind: dict[str, list[tuple[str, Any]]] = {}
    for (_, answer, _, _), p in zip(items, parsed):
        if not isinstance(p, RecordError):
            for _, kind, label in p:
                by_kind.setdefault(kind, []).append((answer, label))
    for kind, pairs in by_kind.items():
        if VERIFIERS[kind].prepare is not None:
            VERIFIERS[kind].prepare(pairs)
    results: list[dict[str, Any] | RecordError] = []
    for (record_id, answer, _, _), p in zip(items, parsed):
        if not isinstance(p, RecordError):
            try:
                p = _check(answer, p, thresholds)
            except RecordError as e:  # a plug-in verifier that raised on this record (plugins.PluginFailed)
                p = type(e)(f"record {str(record_id)!r}: {e}")
                if raise_errors:
                    raise p from e.__cause__
        results.append(p)
    return results


def _record_item(record: Any) -> tuple[str, Any, Any, Any]:
    if not isinstance(record, dict):
        raise RecordError(f"record must be a JSON object, got {type(record).__name__}")
    record_id = record.get("id")
    if record_id is None:
        raise RecordError(f"record without 'id': {json.dumps(record)[:200]}")
    for key in ("question", "output", "labels", "verifiers"):
        if key not in record:
            raise RecordError(f"record {record_id!r}: missing field {key!r}")
    return str(record_id), record["output"], record["labels"], record["verifiers"]


def verify_records(
    records: list[Any], thresholds: dict[str, dict[str, float]] | None = None, skip_invalid: bool = False
) -> list[dict[str, Any]]:
    """The ``vstar verify`` contract over many records: each repeated plus ``verified``, ``verdicts``,
    ``extracted``. A bad record raises a RecordError naming it, or with ``skip_invalid`` comes back
    with an ``error`` field instead (the others are verified)."""
    items: list[Any] = []
    for record in records:
        try:
            items.append(_record_item(record))
        except RecordError as e:
            if not skip_invalid:
                raise
            items.append(e)
    good = [item for item in items if not isinstance(item, RecordError)]
    results = iter(verify_many(good, thresholds, raise_errors=not skip_invalid))
    out = []
    for record, item in zip(records, items):
        result = item if isinstance(item, RecordError) else next(results)
        base = record if isinstance(record, dict) else {}
        out.append({**base, "error": str(result)} if isinstance(result, RecordError) else {**base, **result})
    return out


def verify_record(record: dict[str, Any], thresholds: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The ``vstar verify`` contract for one record: repeated, plus ``verified``, ``verdicts``, ``extracted``."""
    return verify_records([record], thresholds)[0]
