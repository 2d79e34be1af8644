"""The model a finetune starts from: the base model's weights, wrapped with LoRA when configured, or a checkpoint
of this finetune to resume."""

from __future__ import annotations

import torch

from vstar_ray import models
from vstar_ray.config import Config, ConfigError


def lora_targets(model, suffixes: list[str], vision_tower: bool) -> list[str]:
    """The linear layers LoRA adapts: those named by ``suffixes`` (``q_proj``, ...) in the language model, and in
    the vision tower too only with ``train.lora_vision_tower``. Families name their vision layers alike or not
    (CLIP and SigLIP towers have ``q_proj``, Qwen's ``qkv``), so matching names alone would adapt the vision
    tower of some families and not of others."""
    decoder = model.get_decoder()
    inside = {name for name, module in model.named_modules() if module is decoder}
    names = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in suffixes
             and (vision_tower or any(name.startswith(prefix + ".") for prefix in inside))]
    if not names:
        raise ConfigError(f"train.lora_target_modules {suffixes} match no linear layer of {type(model).__name__}'s "
                          f"language model")
    return names


def load_weights(cfg: Config, base_model: str, path: str, device, dtype: str, resuming: bool):
    """The model to train: the base model (wrapped with LoRA if configured), or a checkpoint to resume.

    A LoRA adapter records ``base_model`` as its base, even when that is an earlier cycle's adapter (cycles that
    continue from the last model): ``models.load_model`` merges the whole chain back."""
    t = cfg.train
    model = models.load_model(base_model if t.lora and resuming else path, str(device), dtype,
                              cfg.model.trust_remote_code)
    if t.lora:
        if resuming:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, path, is_trainable=True)
        else:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(
                r=t.lora_r, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                target_modules=lora_targets(model, list(t.lora_target_modules), t.lora_vision_tower)))
        model.peft_config["default"].base_model_name_or_path = base_model
    return model
