"""The figures a GPU user needs, in one run of a few minutes on one GPU, without Ray, vLLM, a video decoder or a
network: the project's own model loading (``vstar_ray.models``), optimizer step (``vstar_ray.training.step``) and
HF generation code, on models built from a config with random weights, and synthetic clips.

1. training: a Qwen2-VL at 7B size (the architecture of ``configs/qwen2vl_7b_kinetics.yaml``'s model), FSDP2
   bf16-mixed (float32 master weights), with and without activation checkpointing: peak memory against
   ``vstar plan``'s estimate for the same settings, tokens/s and MFU;
2. generation: HF ``generate`` at batch sizes 1/8/32, in videos/s and tokens/s, against ``vstar plan``'s
   ``hf_tokens_per_s``;
3. every family: each tiny test model takes one bf16-mixed training step and one generation on the device.

    python benchmarks/gpu_check.py                          # on a GPU: the 7B figures (about 5 minutes on an H200)
    python benchmarks/gpu_check.py --size tiny --device cpu  # the same code at tiny sizes (the test suite runs it)

It prints one table (and ``--out FILE.json``). ``benchmarks/README.md`` ("GPU figures") says how to run it on a
bare GPU machine and holds its figures. A part that fails (out of memory, a family's dtype bug) is a row that says
so; the other parts still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

for _key, _value in {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                     "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"}.items():
    os.environ.setdefault(_key, _value)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import tiny_families  # noqa: E402  (the project's tiny models of every family)
from vstar_ray import families, models, plan  # noqa: E402
from vstar_ray.config import load_config  # noqa: E402
from vstar_ray.training import step as train_step  # noqa: E402

CONFIG = ROOT / "configs" / "qwen2vl_7b_kinetics.yaml"
GIB = 2**30
PROMPT = "Question: What is happening in the video? Can you explain step-by-step?"
WORDS = "the clip shows two people who grip hands and push until one arm goes down so it is arm wrestling".split()


def _answer(tokens: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(tokens))


def _clips(n: int, frames: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8) for _ in range(n)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak(device: torch.device) -> tuple[float, float]:
    if device.type != "cuda":
        return float("nan"), float("nan")
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _qwen2_vl(size: str, frame_size: int, work: Path):
    """(model config, processor): the tiny test Qwen2-VL's processor (its tokenizer and chat template) at
    ``frame_size``; at 7B size the model config is the recorded Qwen2-VL-7B architecture with that tokenizer's ids."""
    tiny = tiny_families.built("qwen2_vl", str(work))
    processor = models.load_processor(str(tiny))
    pixels = {"shortest_edge": frame_size * frame_size, "longest_edge": frame_size * frame_size}
    processor.video_processor.size = pixels
    processor.image_processor.size = pixels
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny)
    if size == "7b":
        reference = families.REFERENCE_CONFIGS["Qwen/Qwen2-VL-7B-Instruct"]()
        for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
            setattr(reference, key, getattr(config, key))
        config = reference
    return config, processor, tiny


def _build(config, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model


def _init_process_group(device: torch.device) -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1)


def training(args, device: torch.device, work: Path) -> list[dict]:
    """Steps of the 7B (or tiny) Qwen2-VL, FSDP2 bf16-mixed on one device, checkpointing on then off."""
    config, processor, tiny = _qwen2_vl(args.size, args.frame_size, work)
    overrides = [f"data.num_frames={args.frames}", f"data.frame_size={args.frame_size}", "train.num_workers=1",
                 f"train.batch_size={args.batch_size}", "train.lora=false", "train.precision=bf16-mixed"]
    if args.size == "tiny":
        overrides.append(f"model.path={tiny}")
    cfg = load_config(str(CONFIG), overrides)
    shape = plan.model_shape(cfg)
    a = plan.Assumptions()
    batch = models.training_batch(processor, _clips(args.batch_size, args.frames, args.frame_size),
                                  [PROMPT] * args.batch_size, [_answer(a.answer_tokens)] * args.batch_size, 8192)
    seq = batch.inputs["input_ids"].shape[1]
    tokens = int(batch.inputs["attention_mask"].sum())
    rows = []
    _init_process_group(device)
    model = _build(config, device, torch.float32)
    params = sum(p.numel() for p in model.parameters())
    train_step.shard(model, 1, device.type, "bf16-mixed")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for checkpointing in (True, False):
        row = {"part": "training", "checkpointing": checkpointing, "params_b": params / 1e9, "sequence": seq,
               "batch": args.batch_size}
        try:
            if checkpointing:
                train_step.enable_activation_checkpointing(model)
            else:
                model.gradient_checkpointing_disable()
            _reset(device)
            times = []
            for _ in range(args.steps):
                _sync(device)
                start = time.perf_counter()
                loss = train_step.step(model, [batch], optimizer, 1.0, device, "bf16-mixed")
                _sync(device)
                times.append(time.perf_counter() - start)
            seconds = float(np.mean(times[1:] if len(times) > 1 else times))  # the first step warms up
            allocated, reserved = _peak(device)
            m = plan.training_memory(cfg, shape, a, checkpointing)
            estimate = m["states"] + plan.activation_bytes(shape, seq, args.batch_size, checkpointing)["total"]
            row.update(loss=loss, step_s=seconds, tokens_per_s=tokens / seconds,
                       mfu=6 * params * tokens / seconds / (a.gpu_tflops * 1e12),
                       peak_allocated_gib=allocated, peak_reserved_gib=reserved, plan_gib=estimate / GIB,
                       plan_with_overhead_gib=(estimate + a.overhead_gib * GIB) / GIB, ok=bool(np.isfinite(loss)))
        except torch.OutOfMemoryError as e:
            row.update(ok=False, error=f"out of memory: {str(e).splitlines()[0]}")
            optimizer.zero_grad(set_to_none=True)
        rows.append(row)
    del model, optimizer
    _reset(device)
    return rows


def generation(args, device: torch.device, work: Path) -> list[dict]:
    """HF ``generate`` (the project's ``models.generate``) with a fixed answer length, bf16 on a GPU."""
    config, processor, _ = _qwen2_vl(args.size, args.frame_size, work)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = _build(config, device, dtype).eval()
    new_tokens = args.answer_tokens
    model.generation_config.min_new_tokens = new_tokens  # random weights: no early end of turn
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    assumed = plan.Assumptions().hf_tokens_per_s
    rows = []
    for batch_size in args.generate_batches:
        row = {"part": "generation", "batch": batch_size, "new_tokens": new_tokens}
        try:
            clips = _clips(batch_size, args.frames, args.frame_size, seed=batch_size)
            models.generate(model, processor, clips[:1], [PROMPT], 2, False, 1.0)  # warm-up
            _reset(device)
            _sync(device)
            start = time.perf_counter()
            answers = models.generate(model, processor, clips, [PROMPT] * batch_size, new_tokens, False, 1.0)
            _sync(device)
            seconds = time.perf_counter() - start
            row.update(seconds=seconds, videos_per_s=batch_size / seconds,
                       tokens_per_s=batch_size * new_tokens / seconds, plan_tokens_per_s=assumed,
                       peak_allocated_gib=_peak(device)[0], ok=len(answers) == batch_size)
        except torch.OutOfMemoryError as e:
            row.update(ok=False, error=f"out of memory: {str(e).splitlines()[0]}")
        rows.append(row)
    del model
    _reset(device)
    return rows


def every_family(args, device: torch.device, work: Path) -> list[dict]:
    """Each tiny family: one bf16-mixed training step (autocast over float32 weights, as one GPU trains) and one
    bf16 generation, on the device."""
    meta = models.video_metadata(30.0, [18, 56, 93, 131, 168, 206, 243, 281], 300)
    rows = []
    for family in tiny_families.FAMILIES:
        row = {"part": "family", "family": family}
        try:
            path = str(tiny_families.built(family, str(work)))
            size = tiny_families.TEST_FRAME_SIZE[family]
            clips = _clips(2, 8, size)
            processor = models.load_processor(path)
            model = models.load_model(path, device=str(device), dtype="float32").train()
            batch = models.training_batch(processor, clips, [PROMPT] * 2, [_answer(12)] * 2, 4096, [meta, meta])
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            loss = train_step.step(model, [batch], optimizer, 1.0, device, "bf16-mixed")
            del model, optimizer
            model = models.load_model(path, device=str(device), dtype="bfloat16").eval()
            answers = models.generate(model, processor, clips[:1], [PROMPT], 8, False, 1.0, [meta])
            row.update(loss=loss, dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
                       ok=bool(np.isfinite(loss)) and len(answers) == 1)
            del model
        except Exception as e:  # a family's dtype or device bug is this row's finding, not the end of the check
            row.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            traceback.print_exc(file=sys.stderr)
        rows.append(row)
    return rows


def _f(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def table(results: dict) -> str:
    lines = [f"# gpu_check: {results['device_name']}, torch {results['torch']}, transformers {results['transformers']}, "
             f"size {results['size']}, {results['frames']} frames of {results['frame_size']} px", "",
             "| part | setting | result | figures |", "|---|---|---|---|"]
    for r in results["rows"]:
        status = "ok" if r["ok"] else f"FAILED: {r.get('error', 'not finite')}"
        if r["part"] == "training":
            setting = (f"FSDP2 bf16-mixed, checkpointing {'on' if r['checkpointing'] else 'off'}, "
                       f"{r['params_b']:.2f}B params, batch {r['batch']} x {r['sequence']} tokens")
            figures = "" if "step_s" not in r else (
                f"{r['step_s']:.2f} s/step, {r['tokens_per_s']:,.0f} tokens/s, MFU {r['mfu']:.1%}; peak "
                f"{_f(r['peak_allocated_gib'])} GiB allocated / {_f(r['peak_reserved_gib'])} reserved, plan "
                f"{_f(r['plan_gib'])} GiB (+ overhead {_f(r['plan_with_overhead_gib'])})")
        elif r["part"] == "generation":
            setting = f"HF generate, batch {r['batch']}, {r['new_tokens']} new tokens"
            figures = "" if "seconds" not in r else (
                f"{r['videos_per_s']:.2f} videos/s, {r['tokens_per_s']:,.0f} tokens/s (plan assumes "
                f"{r['plan_tokens_per_s']:,.0f} at batch 16), peak {_f(r['peak_allocated_gib'])} GiB")
        else:
            setting = f"{r['family']}: a bf16-mixed step, a bf16 generation"
            figures = "" if "loss" not in r else f"loss {r['loss']:.3f}, generated in {r['dtype']}"
        lines.append(f"| {r['part']} | {setting} | {status} | {figures} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("7b", "tiny"), default="7b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--frame-size", type=int, default=None, help="448 at 7B size, 56 tiny")
    parser.add_argument("--batch-size", type=int, default=1, help="training micro-batch")
    parser.add_argument("--steps", type=int, default=3, help="training steps per setting (the first warms up)")
    parser.add_argument("--generate-batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--answer-tokens", type=int, default=150)
    parser.add_argument("--parts", nargs="+", default=["training", "generation", "families"],
                        choices=["training", "generation", "families"])
    parser.add_argument("--out", type=Path, help="the figures as JSON")
    args = parser.parse_args(argv)
    args.frame_size = args.frame_size or (448 if args.size == "7b" else 56)
    device = torch.device(args.device)
    import transformers

    results = {"device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "transformers": transformers.__version__, "size": args.size,
               "frames": args.frames, "frame_size": args.frame_size, "rows": []}
    parts = {"training": training, "generation": generation, "families": every_family}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        for name in args.parts:
            start = time.time()
            try:
                results["rows"] += parts[name](args, device, Path(work))
            except Exception as e:  # a part that cannot run at all: said, and the next part runs
                traceback.print_exc(file=sys.stderr)
                results["rows"].append({"part": name, "family": "", "ok": False, "checkpointing": False,
                                        "params_b": 0.0, "batch": 0, "sequence": 0, "new_tokens": 0,
                                        "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"})
            print(f"[gpu_check] {name}: {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    print(table(results), end="")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=float))
    return 0 if all(r["ok"] for r in results["rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
