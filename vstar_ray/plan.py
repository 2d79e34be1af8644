"""``vstar plan``: what a run will need before anyone spends GPU-hours, from the model's config and the manifests.

The model is built on PyTorch's ``meta`` device from its ``config.json`` (no weights are read), so parameter
counts are exact for any family; a hub id this machine cannot reach falls back to the architecture of that
checkpoint recorded in ``families.REFERENCE_CONFIGS`` (said so in the output). Video tokens per clip come from
the family's patching (``families.video_tokens``). Every throughput figure is an ``Assumptions`` field that
``--assume key=value`` replaces; ``benchmarks/README.md`` explains each number and what validated it.

Memory per GPU (FSDP2 over ``train.num_workers`` GPUs):
- model states: parameters, gradients and AdamW's two moments, sharded: 4 + 4 + 8 bytes per trainable
  parameter with bf16-mixed or fp32 (ZeRO-3's 16 bytes per parameter), 2 + 2 + 4 with pure bf16; frozen
  parameters (LoRA) keep only their own bytes;
- activations of one micro-batch: per token and layer, what a pre-norm block saves for its backward pass,
  ``2 x (8 h + 4 i)`` bytes in bf16 (attention inputs and output, norms, the gated MLP's three projections;
  no s^2 term: SDPA saves no attention matrix); with activation checkpointing each block keeps only its
  input (``2 h`` bytes) and one block is recomputed at a time; plus the logits over the vocabulary (bf16,
  their float32 copy for the loss and its gradient: 10 bytes a token and vocabulary entry);
- the CUDA context, NCCL buffers and allocator fragmentation: ``Assumptions.overhead_gib``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from vstar_ray import families
from vstar_ray.config import Config, ConfigError

GIB = 2**30
STATE_BYTES = {"bf16-mixed": (4, 4, 8), "fp32": (4, 4, 8), "bf16": (2, 2, 4)}  # param, grad, AdamW per param


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid", strict=False))
class Assumptions:
    """Every figure a plan assumes rather than reads; each replaced with ``--assume key=value`` (a count or rate
    that is not positive, a share outside [0, 1], NaN or infinity is refused, naming the key)."""

    answer_tokens: Annotated[int, Field(gt=0)] = 150  # mean tokens of a reasoning answer (the paper's)
    prompt_text_tokens: Annotated[int, Field(ge=0)] = 60  # the question and chat template around the video
    rationalize_fraction: Share = 0.5  # videos whose direct answer fails and get a second generation
    kept_fraction: Share = 0.85  # videos kept for training (direct + rationalized)
    vllm_tokens_per_s: Positive = 2000.0  # output tokens/s per GPU, 7B, bf16, continuous batching, prefill included
    hf_tokens_per_s: Positive = 500.0  # the same with HF generate, batch 16, no continuous batching (~4x slower)
    mfu: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.40  # training: model FLOP utilisation
    gpu_tflops: Positive = 989.0  # dense bf16 peak per GPU (H100 SXM)
    gpu_memory_gib: Positive = 80.0  # per GPU
    overhead_gib: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 3.0  # CUDA context, NCCL, fragmentation
    load_minutes: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1.5  # a generator actor loading a 7B model
    videos: Annotated[int, Field(gt=0)] = 650_000  # training videos, when the manifest cannot be read (Kinetics)
    eval_videos: Annotated[int, Field(ge=0)] = 10_000  # held-out videos, likewise


def parse_assumptions(items: list[str], gpu_memory: str | None) -> Assumptions:
    values: dict = {}
    names = [f.name for f in dataclasses.fields(Assumptions)]
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in names:
            raise ConfigError(f"--assume {item!r}: expected key=value with key one of {', '.join(names)}")
        values[key] = value.strip()  # pydantic reads the number and checks its range
    if gpu_memory is not None:
        values["gpu_memory_gib"] = gpu_memory.strip().lower().removesuffix("ib").removesuffix("b").removesuffix("g")
    try:
        return Assumptions(**values)
    except ValidationError as e:
        error = e.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else "?"
        given = f"--gpu-memory {gpu_memory!r}" if key == "gpu_memory_gib" and gpu_memory is not None else (
            f"--assume {key}={values.get(key)}")
        raise ConfigError(f"{given}: {error['msg'][0].lower()}{error['msg'][1:]}") from None


def check_gpus(gpus: int) -> int:
    if gpus < 0:
        raise ConfigError(f"--gpus {gpus}: expected a positive number of GPUs (0: what the config asks for)")
    return gpus


@dataclass(frozen=True)
class ModelShape:
    source: str  # where the config came from
    model_type: str
    params: int
    trainable: int
    text_layers: int
    hidden: int
    intermediate: int
    vocab: int
    vision_layers: int
    vision_hidden: int
    vision_intermediate: int
    vision_patches: int  # patches the vision tower runs over per clip
    video_tokens: int  # tokens the clip becomes in the language model


def _config(path: str, trust_remote_code: bool):
    from transformers import AutoConfig

    from vstar_ray.models import adapter_chain

    base, _ = adapter_chain(path) if Path(path).exists() else (path, [])
    reference = families.REFERENCE_CONFIGS.get(path)
    try:  # a local folder or the hub cache first; the hub itself only for checkpoints not recorded here
        return (AutoConfig.from_pretrained(base, trust_remote_code=trust_remote_code, local_files_only=True),
                f"{base}/config.json")
    except (OSError, ValueError):
        pass
    try:
        if reference is not None:
            raise OSError("not on this machine")
        return AutoConfig.from_pretrained(base, trust_remote_code=trust_remote_code), f"{base}/config.json"
    except (OSError, ValueError) as e:
        if reference is None:
            raise ConfigError(f"model.path {path!r}: its config.json cannot be read ({str(e).splitlines()[0]}); "
                              f"download it without weights (hf download {path} --include '*.json') and point "
                              f"model.path at that folder") from e
        return reference(), f"the architecture of {path} recorded in vstar_ray/families.py (no config.json here)"


def model_shape(cfg: Config) -> ModelShape:
    """Exact parameter counts (the model built on the meta device) and the sizes activations scale with."""
    import torch
    from transformers import AutoModelForImageTextToText

    config, source = _config(cfg.model.path, cfg.model.trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config, trust_remote_code=cfg.model.trust_remote_code)
    params = sum(p.numel() for p in model.parameters())
    trainable = params
    if cfg.train.lora:
        from vstar_ray.training.weights import lora_targets

        modules = dict(model.named_modules())
        trainable = sum(cfg.train.lora_r * (modules[n].in_features + modules[n].out_features)
                        for n in lora_targets(model, list(cfg.train.lora_target_modules), cfg.train.lora_vision_tower))
    text = config.get_text_config()
    vision = getattr(config, "vision_config", None)
    tokens, patches = families.video_tokens(config, cfg.data.num_frames, cfg.data.frame_size)
    v_hidden = getattr(vision, "embed_dim", None) or getattr(vision, "hidden_size", 0)
    v_inter = getattr(vision, "intermediate_size", None) or int(v_hidden * getattr(vision, "mlp_ratio", 4))
    return ModelShape(source, config.model_type, params, trainable, text.num_hidden_layers, text.hidden_size,
                      text.intermediate_size, text.vocab_size,
                      getattr(vision, "depth", None) or getattr(vision, "num_hidden_layers", 0), v_hidden, v_inter,
                      patches, tokens)


def block_bytes_per_token(hidden: int, intermediate: int, element_bytes: int = 2) -> int:
    """What one pre-norm transformer block saves for backward, per token (see the module docstring)."""
    return element_bytes * (8 * hidden + 4 * intermediate)


def activation_bytes(shape: ModelShape, seq: int, batch: int, checkpointing: bool, element_bytes: int = 2) -> dict:
    text_block = block_bytes_per_token(shape.hidden, shape.intermediate, element_bytes) * seq * batch
    vision_block = (block_bytes_per_token(shape.vision_hidden, shape.vision_intermediate, element_bytes)
                    * shape.vision_patches * batch)
    if checkpointing:
        text = shape.text_layers * element_bytes * shape.hidden * seq * batch + text_block
        vision = shape.vision_layers * element_bytes * shape.vision_hidden * shape.vision_patches * batch + vision_block
    else:
        text, vision = shape.text_layers * text_block, shape.vision_layers * vision_block
    logits = 10 * seq * batch * shape.vocab
    return {"text": text, "vision": vision, "logits": logits, "total": text + vision + logits}


def training_memory(cfg: Config, shape: ModelShape, a: Assumptions, checkpointing: bool) -> dict:
    from vstar_ray.training.step import precision

    mode = precision(cfg.train, "cuda")
    p_bytes, g_bytes, o_bytes = STATE_BYTES[mode]
    shards = cfg.train.num_workers if cfg.train.fsdp else 1
    frozen = shape.params - shape.trainable if cfg.train.lora else 0
    states = (shape.trainable * (p_bytes + g_bytes + o_bytes) + frozen * p_bytes) / shards
    seq = min(cfg.train.max_length, shape.video_tokens + a.prompt_text_tokens + a.answer_tokens)
    acts = activation_bytes(shape, seq, cfg.train.batch_size, checkpointing)
    total = states + acts["total"] + a.overhead_gib * GIB
    return {"states": states, "activations": acts, "sequence": seq, "total": total,
            "fits": total <= a.gpu_memory_gib * GIB, "precision": mode, "shards": shards}


def generation_hours(cfg: Config, shape: ModelShape, a: Assumptions, videos: int, eval_videos: int, gpus: int) -> dict:
    """GPU-hours of the generation, held-out eval and model loads of the whole run, per engine."""
    answers = videos * (1 + (a.rationalize_fraction if cfg.rationalize else 0))
    out_tokens = min(a.answer_tokens, cfg.generate.max_new_tokens)
    evals = (cfg.cycles + 1) * eval_videos  # the seed, then every cycle's checkpoint
    loads = (2 * cfg.cycles + 1) * min(gpus, cfg.generate.max_actors) * a.load_minutes / 60
    hours = {}
    for engine, rate in (("vllm", a.vllm_tokens_per_s), ("hf", a.hf_tokens_per_s)):
        per_cycle = answers * out_tokens / rate / 3600
        hours[engine] = {"generate_per_cycle": per_cycle, "eval": evals * out_tokens / rate / 3600,
                         "loads": loads, "run": per_cycle * cfg.cycles + evals * out_tokens / rate / 3600 + loads}
    return {"answers_per_cycle": answers, "prefill_tokens": shape.video_tokens + a.prompt_text_tokens,
            "output_tokens": out_tokens, "engines": hours}


def training_hours(cfg: Config, shape: ModelShape, a: Assumptions, videos: int, seq: int, checkpointing: bool) -> float:
    """GPU-hours of the run's finetunes: 6 FLOP per parameter and token (8 with activations recomputed; a
    frozen base, LoRA, skips the weight gradients: 4 and 6)."""
    samples = videos * a.kept_fraction * cfg.train.epochs
    per_token = (4 if cfg.train.lora else 6) + (2 if checkpointing else 0)
    flop = per_token * shape.params * seq * samples * cfg.cycles
    return flop / (a.mfu * a.gpu_tflops * 1e12) / 3600


def rows(sources, fallback: int) -> tuple[int, str]:
    """Rows of a run's sources (caps and weights applied), or the assumption when a manifest cannot be read."""
    import pyarrow.parquet as pq

    total = 0
    for source in sources:
        try:
            n = round(pq.read_metadata(source.manifest).num_rows * source.weight)
        except (OSError, ValueError):
            return fallback, f"assumed: {source.manifest} cannot be read here"
        total += min(n, source.max_rows) if source.max_rows else n
    if not sources:
        return fallback, "assumed: no manifest"
    return total, ", ".join(s.manifest for s in sources)


def plan(cfg: Config, gpus: int, a: Assumptions) -> str:
    """The plan as text: memory per GPU (with and without activation checkpointing), then generation and
    training GPU-hours and wall time on ``gpus`` GPUs."""
    from vstar_ray.training.step import activation_checkpointing

    shape = model_shape(cfg)
    videos, videos_from = rows(cfg.data.train_manifest, a.videos)
    eval_videos, eval_from = rows(cfg.data.eval_manifest, a.eval_videos)
    gib = lambda b: f"{b / GIB:,.1f} GiB"  # noqa: E731
    lines = [f"# vstar plan: {cfg.model.path} ({shape.model_type}), {gpus} GPUs of {a.gpu_memory_gib:g} GiB",
             "", f"model: {shape.params / 1e9:.2f}B parameters ({shape.trainable / 1e9:.3f}B trained"
             f"{', LoRA r=' + str(cfg.train.lora_r) if cfg.train.lora else ''}); config: {shape.source}",
             f"clip: {cfg.data.num_frames} frames of {cfg.data.frame_size} px = {shape.video_tokens} video tokens "
             f"({shape.vision_patches} vision patches)",
             f"videos: {videos:,} to train on ({videos_from}), {eval_videos:,} held out ({eval_from})",
             cache_line(cfg, videos + eval_videos), "",
             f"## Training memory per GPU (FSDP2 over train.num_workers={cfg.train.num_workers}, "
             f"micro-batch train.batch_size={cfg.train.batch_size})", "",
             "| activation checkpointing | model states | activations (text / vision / logits) | overhead | total | "
             f"fits {a.gpu_memory_gib:g} GiB |", "|---|---|---|---|---|---|"]
    configured = activation_checkpointing(dataclasses.replace(cfg.train, use_gpu=True))
    for on in (True, False):
        m = training_memory(cfg, shape, a, on)
        acts = m["activations"]
        lines.append(f"| {'on' if on else 'off'}{' (configured)' if on == configured else ''} | {gib(m['states'])} | "
                     f"{gib(acts['total'])} ({gib(acts['text'])} / {gib(acts['vision'])} / {gib(acts['logits'])}) | "
                     f"{a.overhead_gib:g} GiB | {gib(m['total'])} | {'yes' if m['fits'] else 'NO'} |")
    m = training_memory(cfg, shape, a, configured)
    lines += ["", f"precision {m['precision']}; a sample is {m['sequence']} tokens (prompt with video + answer, "
              f"capped by train.max_length={cfg.train.max_length})", ""]
    g = generation_hours(cfg, shape, a, videos, eval_videos, gpus)
    train_h = training_hours(cfg, shape, a, videos, m["sequence"], configured)
    lines += [f"## GPU-hours for {cfg.cycles} cycles", "",
              f"per video: {g['prefill_tokens']} prefill tokens, {g['output_tokens']} output tokens; "
              f"{g['answers_per_cycle']:,.0f} answers a cycle (rationalize_fraction {a.rationalize_fraction})", "",
              "| engine | generation / cycle | held-out evals | model loads | training | run | "
              f"wall time on {gpus} GPUs |", "|---|---|---|---|---|---|---|"]
    for engine, h in g["engines"].items():
        total = h["run"] + train_h
        lines.append(f"| {engine} | {h['generate_per_cycle']:,.1f} | {h['eval']:,.1f} | {h['loads']:,.1f} | "
                     f"{train_h:,.1f} | {total:,.1f} | {total / gpus:,.1f} h |")
    lines += ["", "assumptions (--assume key=value): "
              + ", ".join(f"{f.name}={getattr(a, f.name)}" for f in dataclasses.fields(Assumptions))]
    return "\n".join(lines) + "\n"


def cache_line(cfg: Config, clips: int) -> str:
    """What ``data.frame_cache`` will hold: every clip of the run once (data/frame_cache.py)."""
    from vstar_ray.data.frame_cache import FORMATS, size_bytes

    d = cfg.data
    if d.frame_cache == "off":
        return "frame cache: off (data.frame_cache); every pass, epoch and eval decodes its clips again"
    where = "OUT/frame_cache" if d.frame_cache == "run" else d.frame_cache
    sizes = {f: size_bytes(clips, d.num_frames, d.frame_size, f) / GIB for f in FORMATS}
    other = ", ".join(f"{f}: {g:,.1f} GiB" for f, g in sizes.items() if f != d.frame_cache_format)
    return (f"frame cache: {clips:,} clips in {where}, about {sizes[d.frame_cache_format]:,.1f} GiB as "
            f"{d.frame_cache_format} ({other}); delete the folder to empty it")


def gpus_default(cfg: Config) -> int:
    return max(cfg.train.num_workers if cfg.train.use_gpu else 0,
               math.ceil(cfg.generate.max_actors * cfg.generate.num_gpus), 1)
