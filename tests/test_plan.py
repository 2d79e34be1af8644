"""``vstar plan``: its parameter counts against published model sizes, its model-state memory against the ZeRO
paper, its activation estimate against what a real block saves for backward, and the table it prints."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.helpers import tiny_families
from vstar_ray import families, models, plan
from vstar_ray.config import load_config


def meta_params(config) -> int:
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        return sum(p.numel() for p in AutoModelForImageTextToText.from_config(config).parameters())


def test_recorded_7b_architectures_have_their_published_sizes():
    # Qwen2-VL-7B: a 675M ViT + a 7.6B LLM = 8.3B (Wang et al. 2024, arXiv:2409.12191, Table 1)
    assert meta_params(families.REFERENCE_CONFIGS["Qwen/Qwen2-VL-7B-Instruct"]()) / 1e9 == pytest.approx(8.3, rel=0.01)
    # Video-LLaVA-7B: Vicuna-7B (Llama-2-7B, 6.74B) + image and video CLIP ViT-L/14 towers (0.30B each) + projector
    assert meta_params(families.REFERENCE_CONFIGS["LanguageBind/Video-LLaVA-7B-hf"]()) / 1e9 == pytest.approx(
        6.74 + 2 * 0.30 + 0.02, rel=0.01)


def test_qwen2_vl_7b_sees_576_tokens_for_8_frames_at_336_px():
    """4 groups of 2 frames x 12 x 12 merged 28 px patches, as the Qwen2-VL report's 2x2 merge gives."""
    config = families.REFERENCE_CONFIGS["Qwen/Qwen2-VL-7B-Instruct"]()
    assert families.video_tokens(config, 8, 336) == (576, 2304)


@pytest.mark.parametrize("family", tiny_families.FAMILIES)
def test_video_tokens_from_patching_match_the_family_s_own_processor(family, tmp_path_factory):
    """The formula against the real processor of each family (Qwen3-VL's shrinks frames to a per-clip pixel
    budget: the tiny one's is 64 x 64 pixels)."""
    from transformers import AutoConfig

    path = tiny_families.built(family, str(tmp_path_factory.getbasetemp() / "families"))
    size = tiny_families.TEST_FRAME_SIZE[family]
    processor = models.load_processor(str(path))
    budget = processor.video_processor.size["longest_edge"] if family == "qwen3_vl" else None
    for frames in (2, 8):
        counted = models.prompt_tokens(processor, frames, size)["video"]
        assert families.video_tokens(AutoConfig.from_pretrained(path), frames, size, budget)[0] == counted


def test_model_states_match_zero_s_figure_for_7_5b_on_64_gpus():
    """ZeRO (Rajbhandari et al., SC20, Fig. 1): a 7.5B model with mixed-precision Adam holds 16 bytes per
    parameter = 120 GB; sharded over 64 GPUs (ZeRO stage 3, as FSDP) 1.9 GB per GPU."""
    cfg = load_config(None, ["train.num_workers=64", "train.use_gpu=true"])
    shape = plan.ModelShape("test", "x", 7_500_000_000, 7_500_000_000, 32, 4096, 11008, 32000, 0, 0, 0, 0, 0)
    states = plan.training_memory(cfg, shape, plan.Assumptions(), checkpointing=True)["states"]
    assert states / 1e9 == pytest.approx(1.875, rel=1e-6)  # 120 GB / 64


def saved_bytes_per_block(model, inputs) -> list[int]:
    """Bytes each decoder block of the language model saves for its backward pass (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    state, per_block = {}, []

    def pack(t):
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in state["seen"] and key[0] not in params:
            state["seen"].add(key)
            state["bytes"] += key[1]
        return t

    def enter(module, args):
        state.update(seen=set(), bytes=0, ctx=torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t))
        state["ctx"].__enter__()

    def leave(module, args, out):
        state["ctx"].__exit__(None, None, None)
        per_block.append(state["bytes"])

    blocks = model.get_decoder().layers
    hooks = [b.register_forward_pre_hook(enter) for b in blocks] + [b.register_forward_hook(leave) for b in blocks]
    model(**inputs)
    for h in hooks:
        h.remove()
    return per_block


@pytest.mark.parametrize("checkpointing,low,high", [(False, 0.85, 1.15), (True, 0.99, 1.01)])
def test_the_activation_estimate_against_what_a_block_saves(tmp_path_factory, checkpointing, low, high):
    """Measured on a tiny Qwen2-VL in float32 (4-byte elements): the estimate is ~10% below what a block saves
    without checkpointing (small-dimension extras: rotary tables, masks), and exact with it."""
    path = str(tiny_families.built("qwen2_vl", str(tmp_path_factory.getbasetemp() / "families")))
    model, processor = models.load_model(path).train(), models.load_processor(path)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    frames = [np.random.default_rng(0).integers(0, 255, (8, 56, 56, 3), dtype=np.uint8)]
    batch = models.training_batch(processor, frames, ["Question: what happens in this video? " * 6],
                                  ["An answer that is long enough to count. " * 8], 4096)
    seq = batch.inputs["input_ids"].shape[1]
    text = model.config.get_text_config()
    estimate = (4 * text.hidden_size * seq if checkpointing
                else plan.block_bytes_per_token(text.hidden_size, text.intermediate_size, 4) * seq)
    measured = saved_bytes_per_block(model, batch.inputs)
    assert all(low <= m / estimate <= high for m in measured), (measured, estimate)


def test_vstar_plan_prints_the_table_for_the_shipped_7b_config():
    proc = subprocess.run([sys.executable, "-m", "vstar_ray", "plan", "--config", "configs/qwen2vl_7b_kinetics.yaml",
                           "--gpus", "16", "--gpu-memory", "80GiB", "--assume", "answer_tokens=200"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "8.29B parameters" in out and "576 video tokens" in out and "| on (configured) |" in out
    assert "| vllm |" in out and "| hf |" in out and "answer_tokens=200" in out and "wall time on 16 GPUs" in out
    bad = subprocess.run([sys.executable, "-m", "vstar_ray", "plan", "--config", "configs/qwen2vl_7b_kinetics.yaml",
                          "--assume", "speed=3"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--assume 'speed=3'" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["--gpus", "-3"], "--gpus -3: expected a positive number of GPUs"),
    (["--gpu-memory", "0GiB"], "--gpu-memory '0GiB': input should be greater than 0"),
    (["--gpu-memory", "nanGiB"], "--gpu-memory 'nanGiB': input should be a finite number"),
    (["--assume", "hf_tokens_per_s=-5"], "--assume hf_tokens_per_s=-5: input should be greater than 0"),
    (["--assume", "mfu=0"], "--assume mfu=0: input should be greater than 0"),
    (["--assume", "kept_fraction=1.5"], "--assume kept_fraction=1.5: input should be less than or equal to 1"),
    (["--assume", "videos=2.5"], "--assume videos=2.5: input should be a valid integer"),
])
def test_numbers_that_make_no_sense_are_refused_naming_the_flag(args, message, capsys):
    """A negative wall time from --gpus -3, negative GPU-hours and mfu=0's ZeroDivisionError, before."""
    from vstar_ray.cli import main

    assert main(["plan", "--config", "configs/qwen2vl_7b_kinetics.yaml", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
