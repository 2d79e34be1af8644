"""The parser-verifier: a registry of verifier types and the record-level check.

Extend it with a plug-in file (``verify.plugins``, ``plugins.py``): its ``verify_<type>`` functions are
registered in every process that verifies. ``register()`` adds a type in the calling process only.
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
from vstar_ray.verify.plugins import PluginError, PluginFailed, load_plugins, plugin_error_kind
from vstar_ray.verify.sentences import set_embedding_model

__all__ = [
    "VERIFIERS",
    "PluginError",
    "PluginFailed",
    "RecordError",
    "Verifier",
    "default_thresholds",
    "load_plugins",
    "load_thresholds",
    "parse_labels",
    "plugin_error_kind",
    "register",
    "set_embedding_model",
    "verify_labels",
    "verify_many",
    "verify_record",
    "verify_records",
]
