"""Typed run configuration: frozen pydantic dataclasses loaded from YAML with ``--set key=value`` overrides.

Each key states its type, range and choices beside its default; pydantic checks them all when a config is
built (also by ``dataclasses.replace``). An unknown key, a value of the wrong type or out of range, or a
malformed ``--set`` is a ``ConfigError`` that names the dotted key and where it came from (the YAML file or
the ``--set``), raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import field
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from vstar_ray.config_eval import EvalConfig, JudgeConfig
from vstar_ray.config_types import SECTION, Bool, Int, Number, Text
from vstar_ray.errors import InputError


class ConfigError(InputError):
    """A configuration problem, with the offending key in the message."""


TRACKING = ("tensorboard", "wandb", "mlflow", "none")


@dataclass(frozen=True, config=SECTION)
class ManifestSource:
    """One labeled dataset of a run. In YAML a bare path is a source with the defaults."""

    manifest: Annotated[Text, Field(min_length=1)]  # parquet manifest (docs/data.md), a path or URI
    video_root: Text = ""  # its relative `video` paths resolve here; default: data.video_root, else the manifest's folder
    max_rows: Annotated[Int, Field(ge=0)] = 0  # at most this many of its rows (the first, after sampling); 0: all
    weight: Annotated[Number, Field(gt=0, le=1)] = 1.0  # the share of its rows a run samples (seeded by `seed`)


def _sources(value: Any) -> Any:
    """A path, a list of paths, or a list of ``ManifestSource`` mappings, as a list of mappings."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list) else [value]
    return [{"manifest": v} if isinstance(v, str) else v for v in items]


Sources = Annotated[list[ManifestSource], BeforeValidator(_sources)]


@dataclass(frozen=True, config=SECTION)
class DataConfig:
    # the manifests used to generate training data: a path, or a list of paths / ManifestSource mappings
    # (several datasets in one run, as VSTaR-1M mixes them; ids must be unique across them)
    train_manifest: Sources = field(default_factory=list)
    eval_manifest: Sources = field(default_factory=list)  # held-out manifests, scored every cycle
    video_root: Text = ""  # relative `video` paths resolve against this; default: the manifest's folder
    num_frames: Annotated[Int, Field(ge=1)] = 8  # frames sampled uniformly from each clip
    # frames are resized to frame_size x frame_size before they cross the object store
    frame_size: Annotated[Int, Field(ge=8)] = 224
    decode_batch_size: Annotated[Int, Field(ge=1)] = 8
    decode_num_cpus: Annotated[Number, Field(gt=0)] = 0.5  # logical CPUs per decode task
    # a clip still decoding after this is killed and becomes an error row; 0: no limit
    decode_timeout_s: Annotated[Number, Field(ge=0)] = 60.0
    # frame rate of clips stored as folders of frame images (no container states it); 0: unknown, and models that
    # write frame times into their prompt (Qwen3-VL, SmolVLM2) assume their default
    frame_folder_fps: Annotated[Number, Field(ge=0)] = 0.0
    # each clip decoded once: "run" (OUT/frame_cache), a folder or URI every node reads, or "off" (YAML's off/false
    # too) (data/frame_cache.py; a pass run on its own, with no run folder, decodes without one)
    frame_cache: Annotated[Text, BeforeValidator(lambda v: "off" if v is False else v)] = "run"
    frame_cache_format: Literal["lz4", "jpeg"] = "lz4"  # lz4: lossless; jpeg: a sixth of the bytes (quality 95)


@dataclass(frozen=True, config=SECTION)
class ModelConfig:
    path: Text = ""  # local folder or hub id, loaded with AutoModelForImageTextToText/AutoProcessor
    trust_remote_code: Bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bfloat16 on GPU, float32 on CPU


@dataclass(frozen=True, config=SECTION)
class VLLMConfig:
    """The ``vllm`` engine's settings (docs/engines.md)."""

    python: Text = ""  # a Python executable of a separate environment with vLLM (the CPU test recipe); empty: this one
    # GPUs per engine; generate.num_gpus must give each generator actor as many
    tensor_parallel_size: Annotated[Int, Field(ge=1)] = 1
    # share of the GPU vLLM takes for weights and KV cache while generating
    gpu_memory_utilization: Annotated[Number, Field(gt=0, le=1)] = 0.85
    max_model_len: Annotated[Int, Field(ge=0)] = 0  # 0: the model's own limit
    enforce_eager: Bool = False  # true: no CUDA graphs (faster start, slower decoding)
    cpu_kv_cache_gib: Annotated[Number, Field(gt=0)] = 1.0  # CPU builds of vLLM only: KV cache size


@dataclass(frozen=True, config=SECTION)
class GenerateConfig:
    batch_size: Annotated[Int, Field(ge=1)] = 8  # videos per generate() call
    max_new_tokens: Annotated[Int, Field(ge=1)] = 128
    temperature: Annotated[Number, Field(gt=0)] = 0.2  # paper default; eval always decodes greedily
    do_sample: Bool = True
    num_gpus: Annotated[Number, Field(ge=0)] = 0.0  # per generator actor
    num_cpus: Annotated[Number, Field(ge=0)] = 1.0  # per generator actor
    min_actors: Annotated[Int, Field(ge=1)] = 1
    max_actors: Annotated[Int, Field(ge=1)] = 1
    engine: Text = "hf"  # hf (batched transformers generate), vllm, or package.module:Class (docs/engines.md)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    # a run's generator actors start once and serve every pass; they must be up within this (an autoscaling cluster
    # brings nodes up first), else the run fails naming generate.num_cpus/num_gpus
    start_timeout_s: Annotated[Number, Field(gt=0)] = 600.0
    # a pass in which no row moves through any stage for this long fails, naming the stage it stopped at; 0: no limit
    stall_timeout_s: Annotated[Number, Field(ge=0)] = 1800.0

    def __post_init__(self) -> None:
        if self.max_actors < self.min_actors:
            raise ValueError(f"max_actors ({self.max_actors}) is below min_actors ({self.min_actors})")


@dataclass(frozen=True, config=SECTION)
class VerifyConfig:
    thresholds: Text = ""  # thresholds.yaml; empty means the defaults of docs/verifiers.md (the demo: its kit's)
    embedding_model: Text = "sentence-transformers/all-MiniLM-L6-v2"  # sentence types; loaded only if used
    # files or modules whose verify_<type> functions add label types, loaded in every worker (docs/verifiers.md)
    plugins: list[Text] = field(default_factory=list)
    # a plug-in that raises on one record: that record fails and the others go on (record), or the run stops (fail)
    plugin_errors: Literal["record", "fail"] = "record"
    num_cpus: Annotated[Number, Field(gt=0)] = 0.25


@dataclass(frozen=True, config=SECTION)
class TrainConfig:
    epochs: Annotated[Int, Field(ge=1)] = 1
    lr: Annotated[Number, Field(gt=0, le=1)] = 2e-5
    warmup_ratio: Annotated[Number, Field(ge=0, le=1)] = 0.03
    weight_decay: Annotated[Number, Field(ge=0)] = 0.0
    max_grad_norm: Annotated[Number, Field(ge=0)] = 1.0
    batch_size: Annotated[Int, Field(ge=1)] = 4  # per worker and micro-batch
    # samples per optimizer step over all workers, reached by accumulating micro-batches (a multiple of
    # batch_size x num_workers); 0: one micro-batch per worker per step
    global_batch_size: Annotated[Int, Field(ge=0)] = 0
    num_workers: Annotated[Int, Field(ge=1)] = 2
    # leave CPUs free for the Ray Data ingest that feeds the workers
    cpus_per_worker: Annotated[Number, Field(gt=0)] = 1.0
    use_gpu: Bool = False
    # with use_gpu: GPUs per worker. A fraction colocates a worker with a generator actor on one GPU (the
    # generator frees its memory while training runs): e.g. generate.num_gpus 0.6 + gpus_per_worker 0.4
    gpus_per_worker: Annotated[Number, Field(gt=0, le=1)] = 1.0
    fsdp: Bool = True  # FSDP2 fully_shard over all workers
    # auto: bf16-mixed on GPUs (bfloat16 compute; float32 parameters, optimizer state and gradient reduction),
    # fp32 on CPU; bf16: parameters and optimizer state in bfloat16 too (small updates are lost to rounding)
    precision: Literal["auto", "bf16-mixed", "fp32", "bf16"] = "auto"
    # recompute each transformer block's activations in the backward pass; null: on when use_gpu
    activation_checkpointing: Bool | None = None
    lora: Bool = False
    lora_r: Annotated[Int, Field(ge=1)] = 16
    lora_alpha: Annotated[Int, Field(gt=0)] = 32
    lora_dropout: Annotated[Number, Field(ge=0, le=1)] = 0.05
    lora_target_modules: list[Text] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lora_vision_tower: Bool = False  # LoRA adapts the language model only; true: the vision tower's layers too
    # tokens per sample, prompt and video included; a sample is never cut inside them: a longer one loses the end of
    # its answer (metrics: answers_truncated), and a run whose prompts alone do not fit is refused at start
    max_length: Annotated[Int, Field(ge=16)] = 1024
    restart_from_pretrained: Bool = True  # STaR: every cycle finetunes the pretrained model
    # also train each kept rationalized answer under its hint prompt, so that a small model keeps following
    # hints in later cycles (Video-STaR trains rationalized answers under the plain question only)
    hinted_copies: Bool = False
    # the prompt a sample trains under: question (the bare question, as the paper trains, so the model reasons when
    # asked plainly) or answer_prompt (the question with the step-by-step request the answers were generated with)
    prompt: Literal["question", "answer_prompt"] = "question"
    max_failures: Annotated[Int, Field(ge=0)] = 1  # Ray Train FailureConfig


def _tracking(value: Any) -> Any:
    if isinstance(value, str):
        unknown = [n.strip() for n in value.split(",") if n.strip() not in TRACKING]
        if unknown:
            raise ValueError(f"unknown {unknown}; choose from {', '.join(TRACKING)} (comma-separated)")
    return value


@dataclass(frozen=True, config=SECTION)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    cycles: Annotated[Int, Field(ge=1)] = 3
    seed: Int = 0
    rationalize: Bool = True
    # intermediate: the final model trains on direct answers only (the paper)
    keep_rationalized: Literal["all", "intermediate"] = "all"
    # what each cycle trains on: verified (Video-STaR) | unfiltered (every direct answer, verified or not:
    # the no-filter ablation) | labels (template answers that state the label, no generation: the paper's
    # Video-LLaVA+ baseline)
    train_on: Literal["verified", "unfiltered", "labels"] = "verified"
    # stop when eval accuracy improves by less than this; < 0 never stops
    early_stop_margin: Annotated[Number, Field(le=1)] = -1.0
    demo_kit: Text = ""  # when set, the demo kit is built there if missing, and empty paths point into it
    # the cluster adds nodes on demand (KubeRay, ray up): a config the current nodes cannot hold waits for them
    # (generate.start_timeout_s) instead of being refused at start
    autoscaling: Bool = False
    # where runs are tracked, comma-separated: tensorboard (OUT/tensorboard/), wandb, mlflow, or none
    tracking: Annotated[Text, BeforeValidator(_tracking)] = "tensorboard"


_CONFIG = TypeAdapter(Config)


def load_config(path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file (or start from defaults when ``path`` is None) and apply ``key=value`` overrides."""
    from vstar_ray.config_errors import describe
    from vstar_ray.io import read_yaml

    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(path, "config", ConfigError) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: top level must be a mapping")
    overridden = [apply_override(raw, item) for item in overrides]
    try:
        return _CONFIG.validate_python(raw)
    except ValidationError as e:
        raise ConfigError(describe(e, path, overridden)) from None


def apply_override(raw: dict[str, Any], item: str) -> str:
    """Apply one ``a.b=value`` override to a raw config mapping (the value is parsed as YAML); returns the key."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value")
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: {part!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: cannot parse value: {e}") from e
    return key.strip()


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    from vstar_ray.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def with_frame_cache(cfg: Config, out: str | os.PathLike) -> Config:
    """``data.frame_cache`` for a command that writes ``out``: ``run`` as ``OUT/frame_cache``, a relative folder
    made absolute here (Ray's workers do not share the driver's working directory), a URI or ``off`` as given."""
    location = cfg.data.frame_cache
    if location == "off" or "://" in location:
        return cfg
    folder = os.path.join(str(out), "frame_cache") if location == "run" else location
    folder = os.path.abspath(os.path.expanduser(folder))
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, frame_cache=folder))


__all__ = ["Config", "ConfigError", "DataConfig", "GenerateConfig", "ManifestSource",
           "ModelConfig", "TrainConfig", "VLLMConfig", "VerifyConfig", "load_config", "save_config", "to_dict",
           "with_frame_cache"]
