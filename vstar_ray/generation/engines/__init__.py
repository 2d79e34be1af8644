"""Generation engines: what a generator actor (``generation.pool.GeneratorActor``) holds to answer batches of
clips. ``hf`` (the default, ``hf_engine``) is batched transformers ``generate``; ``vllm`` (``vllm_engine``) runs
vLLM in the actor's process or in an environment of its own; ``generate.engine: package.module:Class`` selects
your own (docs/engines.md).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from vstar_ray.errors import InputError


class Engine(Protocol):
    """Built as ``Engine(model_path, dtype, trust_remote_code, **options)``; ``generate`` returns one answer per
    prompt (``frames[i]``: a (T, H, W, 3) uint8 clip; ``metadata[i]``: its timing as the processors'
    ``video_metadata``, or None when the source's frame rate is unknown). An engine may define ``close()``: a
    generator actor calls it before it loads another checkpoint or frees its memory for training; and it may
    take a per-call ``seed`` argument (vLLM seeds each request)."""

    def generate(self, frames: list[np.ndarray], prompts: list[str], max_new_tokens: int, do_sample: bool,
                 temperature: float, metadata: list[dict | None] | None = None) -> list[str]: ...


def load_engine(spec: str) -> type:
    """``hf``, ``vllm`` or ``package.module:Class``; raises InputError naming the spec when it cannot be imported."""
    if spec == "hf":
        from vstar_ray.generation.engines.hf_engine import HFEngine

        return HFEngine
    if spec == "vllm":
        from vstar_ray.generation.engines.vllm_engine import VLLMEngine

        return VLLMEngine
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise InputError(f"generate.engine {spec!r}: expected 'hf', 'vllm' or 'package.module:Class'")
    try:
        engine = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise InputError(f"generate.engine {spec!r} cannot be loaded: {e}") from e
    if not callable(getattr(engine, "generate", None)):
        raise InputError(f"generate.engine {spec!r} has no generate() method")
    return engine
