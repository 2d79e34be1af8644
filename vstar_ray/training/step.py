"""What one optimizer step does on a training worker: precision, activation checkpointing, FSDP2 sharding and
gradient accumulation. Plain functions, tested on CPU (``tests/test_train_step.py``).

- ``train.precision``: ``bf16-mixed`` (the default on GPUs) computes in bfloat16 while the parameters, the AdamW
  state and the gradient reduction stay float32 (FSDP2 ``MixedPrecisionPolicy``; ``torch.autocast`` without
  FSDP). Updates of ~2e-5 of a weight's size survive, where pure bfloat16 parameters round them away.
  ``fp32`` (the default on CPU, where gloo lacks bfloat16 collectives) and pure ``bf16`` are explicit choices.
- ``train.activation_checkpointing`` (on by default with GPUs): each transformer block's activations are
  recomputed in the backward pass (transformers' non-reentrant checkpointing, which works under FSDP2 and
  with LoRA), trading ~30% more compute for activation memory that no longer grows with the layer count.
- ``train.global_batch_size``: micro-batches of ``train.batch_size`` per worker are accumulated until the
  global batch is reached, so the optimisation does not depend on the number of GPUs. The loss of a step is
  the mean over every label token of its micro-batches, exactly as one batch that size would compute it.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch

from vstar_ray.config import ConfigError, TrainConfig
from vstar_ray.models import TrainingBatch

PIXEL_KEYS = ("pixel_values_videos", "pixel_values")


def precision(t: TrainConfig, device_type: str) -> str:
    """``train.precision`` with ``auto`` resolved: bf16-mixed on GPUs, fp32 on CPU."""
    if t.precision != "auto":
        return t.precision
    return "bf16-mixed" if device_type == "cuda" else "fp32"


def load_dtype(mode: str) -> str:
    """The dtype the parameters (and the optimizer state) are kept in."""
    return "bfloat16" if mode == "bf16" else "float32"


def activation_checkpointing(t: TrainConfig) -> bool:
    return t.use_gpu if t.activation_checkpointing is None else t.activation_checkpointing


def enable_activation_checkpointing(model) -> None:
    """Recompute each block's activations in the backward pass (non-reentrant: FSDP2 and LoRA safe)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(base, "supports_gradient_checkpointing", False):
        raise ConfigError(f"train.activation_checkpointing: {type(base).__name__} does not support it")
    base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    base.config.use_cache = False


def shard(model, world: int, device_type: str, mode: str) -> None:
    """FSDP2: shard every transformer block the model declares unsplittable, then the root; with bf16-mixed,
    compute in bfloat16 and reduce gradients in float32 over float32 parameters."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device_type, (world,))
    policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if mode == "bf16-mixed" else MixedPrecisionPolicy())
    block_names = set(getattr(model, "_no_split_modules", None) or [])
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    block_names |= set(getattr(base, "_no_split_modules", None) or [])
    for module in list(model.modules()):
        if type(module).__name__ in block_names:
            fully_shard(module, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)


def accumulation_steps(t: TrainConfig, world: int) -> int:
    """Micro-batches per optimizer step: ``train.global_batch_size`` / (``train.batch_size`` x workers)."""
    if t.global_batch_size == 0:
        return 1
    per_step = t.batch_size * world
    if t.global_batch_size % per_step:
        raise ConfigError(f"train.global_batch_size={t.global_batch_size} is not a multiple of train.batch_size="
                          f"{t.batch_size} x {world} workers ({per_step})")
    return t.global_batch_size // per_step


def step(model, micro_batches: Sequence[TrainingBatch], optimizer, max_grad_norm: float, device,
         mode: str) -> float:
    """One optimizer step over ``micro_batches``; returns its loss (mean over all their label tokens)."""
    tokens = sum(mb.label_tokens for mb in micro_batches)
    norm = torch.tensor(max(1, tokens), device=device)  # never NaN, also when no label is left
    dtype = next(p for p in model.parameters()).dtype
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if mode == "bf16-mixed" and not _sharded(model)
                else contextlib.nullcontext())
    total = 0.0
    for i, mb in enumerate(micro_batches):
        if hasattr(model, "set_requires_gradient_sync"):  # FSDP2: reduce gradients after the last micro-batch only
            model.set_requires_gradient_sync(i == len(micro_batches) - 1)
        inputs = {k: v.to(device) for k, v in mb.inputs.items()}
        for key in PIXEL_KEYS:
            if key in inputs:
                inputs[key] = inputs[key].to(dtype)
        with autocast:
            loss = model(**inputs, num_items_in_batch=norm).loss  # sum over label tokens / all of the step's
        loss.backward()
        total += float(loss.detach())
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def _sharded(model) -> bool:
    return hasattr(model, "set_requires_gradient_sync")
