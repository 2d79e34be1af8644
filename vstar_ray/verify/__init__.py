"""The parser-verifier: a registry of verifier types and the record-level check.

Extend it with ``register("my_type", verify_fn, check_label_fn, defaults={...})``.
"""

from vstar_ray.verify.registry import (
    VERIFIERS,
    RecordError,
    Verifier,
    default_thresholds,
    load_thresholds,
    register,
    verify_labels,
    verify_record,
)

__all__ = [
    "VERIFIERS",
    "RecordError",
    "Verifier",
    "default_thresholds",
    "load_thresholds",
    "register",
    "verify_labels",
    "verify_record",
]
