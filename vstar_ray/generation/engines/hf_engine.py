"""Generation engines: what a generator actor (``generation.pool.GeneratorActor``) holds to answer batches.

``hf`` (the default) is batched transformers ``generate``; ``generate.engine: package.module:Class`` selects
another (README, "Generation engines").
"""

from __future__ import annotations

import importlib

import numpy as np
import torch

from vstar_ray import models
from vstar_ray.errors import InputError


class HFEngine:
    """The default engine: batched transformers ``generate`` with left padding, one model per actor.

    An engine is any class built as ``Engine(model_path, dtype, trust_remote_code)`` whose
    ``generate(frames, prompts, max_new_tokens, do_sample, temperature, metadata)`` returns one answer per
    prompt (``frames[i]``: a (T, H, W, 3) uint8 clip; ``metadata[i]``: its timing as the processors'
    ``video_metadata``, or None when the source's frame rate is unknown). An engine may define ``close()``:
    a generator actor calls it before it loads another checkpoint or frees its memory for training."""

    def __init__(self, model_path: str, dtype: str = "auto", trust_remote_code: bool = False):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = models.load_model(model_path, self.device, dtype, trust_remote_code).eval()
        self.processor = models.load_processor(model_path, trust_remote_code)

    def generate(self, frames: list[np.ndarray], prompts: list[str], max_new_tokens: int, do_sample: bool,
                 temperature: float, metadata: list[dict | None] | None = None) -> list[str]:
        return models.generate(self.model, self.processor, frames, prompts, max_new_tokens, do_sample, temperature,
                               metadata)


def load_engine(spec: str) -> type:
    """``hf``, ``vllm`` or ``package.module:Class``; raises InputError naming the spec when it cannot be imported."""
    if spec == "hf":
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
