"""The parser-verifier: a registry of verifier types and the record-level check.

Extend it with ``register("my_type", verify_fn, check_label_fn, defaults={...})``.
"""

from vstar_ray.verify.registry import (
    VERIFIERS,
    RecordError,
    Verifier,
    default_thresholds,
    load_thresholds,
    parse_labels,
    register,
    verify_labels,
    verify_many,
    verify_record,
    verify_records,
)
from vstar_ray.verify.sentences import set_embedding_model

__all__ = [
    "VERIFIERS",
    "RecordError",
    "Verifier",
    "default_thresholds",
    "load_thresholds",
    "parse_labels",
    "register",
    "set_embedding_model",
    "verify_labels",
    "verify_many",
    "verify_record",
    "verify_records",
]
