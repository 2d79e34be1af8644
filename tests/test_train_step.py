"""What one optimizer step does (``vstar_ray.training.step``), on a tiny real Qwen2-VL on CPU: activation
checkpointing changes nothing but memory, float32 master weights keep the small updates pure bfloat16 loses,
and accumulating micro-batches equals one batch that many times larger."""

import copy

import numpy as np
import pytest
import torch

from tests.helpers import tiny_families
from vstar_ray import models
from vstar_ray.training import step as train_step
from vstar_ray.config import ConfigError, load_config

PROMPTS = ["Question: What is happening?", "Question: Describe the clip.", "Question: What colour is it?",
           "Question: When does it appear?"]
ANSWERS = ["Two people grip hands.", "A red disc appears at the end of the clip.", "It is blue.",
           "From 0.2 to 0.6 of the clip."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_families.built("qwen2_vl", str(tmp_path_factory.mktemp("tiny")))
    processor = models.load_processor(str(path))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (8, 56, 56, 3), dtype=np.uint8) for _ in PROMPTS]
    return path, processor, frames


def batch(processor, frames, rows):
    return models.training_batch(processor, [frames[i] for i in rows], [PROMPTS[i] for i in rows],
                                 [ANSWERS[i] for i in rows], 1024)


def test_activation_checkpointing_gives_the_same_losses(tiny):
    path, processor, frames = tiny
    losses = {}
    for on in (False, True):
        torch.manual_seed(0)
        model = models.load_model(str(path)).train()
        if on:
            train_step.enable_activation_checkpointing(model)
            assert model.is_gradient_checkpointing
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        losses[on] = [train_step.step(model, [batch(processor, frames, [0, 1])], optimizer, 1.0,
                                      torch.device("cpu"), "fp32") for _ in range(3)]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5, abs=1e-6)
    assert losses[False][2] < losses[False][0]  # it trains


def test_float32_master_weights_keep_updates_that_bfloat16_parameters_lose(tiny):
    """AdamW's first steps move each weight by about lr; at lr 1e-6 on weights of ~0.02-0.05 that is a relative
    update of ~2e-5, below bfloat16's resolution (2^-8): pure bf16 parameters round it away."""
    path, processor, frames = tiny
    changed = {}
    for mode in ("bf16", "bf16-mixed"):
        model = models.load_model(str(path), dtype=train_step.load_dtype(mode)).train()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
        for _ in range(3):
            train_step.step(model, [batch(processor, frames, [0, 1])], optimizer, 0.0, torch.device("cpu"), mode)
        name = "model.language_model.layers.0.mlp.down_proj.weight"
        weight = dict(model.named_parameters())[name]
        assert weight.dtype == (torch.bfloat16 if mode == "bf16" else torch.float32)
        changed[mode] = float((weight.detach() != before[name]).float().mean())
    assert changed["bf16"] < 0.05 and changed["bf16-mixed"] > 0.95, changed


def test_accumulating_micro_batches_equals_one_larger_batch(tiny):
    """Two micro-batches of two, the loss normalised over the step's label tokens, give the gradient of one
    batch of four (SGD with lr 1 makes the update the gradient itself)."""
    path, processor, frames = tiny
    base = models.load_model(str(path)).train()
    updates = []
    for micro in ([[0, 1, 2, 3]], [[0, 1], [2, 3]], [[0], [1], [2], [3]]):
        model = copy.deepcopy(base)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        loss = train_step.step(model, [batch(processor, frames, rows) for rows in micro], optimizer, 0.0,
                               torch.device("cpu"), "fp32")
        updates.append((loss, {n: before[n] - p.detach() for n, p in model.named_parameters()}))
    (loss4, whole), *parts = updates
    for loss, update in parts:
        assert loss == pytest.approx(loss4, rel=1e-5)
        for name, g in whole.items():
            assert torch.allclose(update[name], g, rtol=1e-4, atol=1e-7), name


def test_precision_and_accumulation_settings():
    t = load_config(None).train
    assert train_step.precision(t, "cuda") == "bf16-mixed" and train_step.precision(t, "cpu") == "fp32"
    assert train_step.load_dtype("bf16-mixed") == "float32" and train_step.load_dtype("bf16") == "bfloat16"
    assert not train_step.activation_checkpointing(t)
    assert train_step.activation_checkpointing(load_config(None, ["train.use_gpu=true"]).train)
    assert train_step.accumulation_steps(load_config(None, ["train.global_batch_size=32"]).train, 2) == 4
    with pytest.raises(ConfigError, match="train.global_batch_size=30 is not a multiple of train.batch_size=4 x 2"):
        train_step.accumulation_steps(load_config(None, ["train.global_batch_size=30"]).train, 2)
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fp8"])
