"""Typed run configuration: dataclasses loaded from YAML with ``--set key=value`` overrides.

Every key is checked: an unknown key, a value of the wrong type or a malformed
``--set`` is a ``ConfigError`` that names the key, raised before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vstar_ray.errors import InputError


class ConfigError(InputError):
    """A configuration problem, with the offending key in the message."""


TRAIN_ON = ("verified", "unfiltered", "labels")
DTYPES = ("auto", "float32", "bfloat16", "float16")
PRECISIONS = ("auto", "bf16-mixed", "fp32", "bf16")
TRACKING = ("tensorboard", "wandb", "mlflow", "none")

# the range of every numeric key that has one: (least, most, least excluded); a float must also be finite
RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "data.num_frames": (1, None, False),
    "data.frame_size": (8, None, False),
    "data.decode_batch_size": (1, None, False),
    "data.decode_num_cpus": (0, None, True),
    "data.decode_timeout_s": (0, None, False),
    "data.frame_folder_fps": (0, None, False),
    "generate.batch_size": (1, None, False),
    "generate.max_new_tokens": (1, None, False),
    "generate.temperature": (0, None, True),
    "generate.num_gpus": (0, None, False),
    "generate.num_cpus": (0, None, False),
    "generate.min_actors": (1, None, False),
    "generate.max_actors": (1, None, False),
    "generate.start_timeout_s": (0, None, True),
    "generate.stall_timeout_s": (0, None, False),
    "generate.vllm.tensor_parallel_size": (1, None, False),
    "generate.vllm.gpu_memory_utilization": (0, 1, True),
    "generate.vllm.max_model_len": (0, None, False),
    "generate.vllm.cpu_kv_cache_gib": (0, None, True),
    "verify.num_cpus": (0, None, True),
    "train.epochs": (1, None, False),
    "train.lr": (0, 1, True),
    "train.warmup_ratio": (0, 1, False),
    "train.weight_decay": (0, None, False),
    "train.max_grad_norm": (0, None, False),
    "train.batch_size": (1, None, False),
    "train.global_batch_size": (0, None, False),
    "train.num_workers": (1, None, False),
    "train.cpus_per_worker": (0, None, True),
    "train.gpus_per_worker": (0, 1, True),
    "train.lora_r": (1, None, False),
    "train.lora_alpha": (0, None, True),
    "train.lora_dropout": (0, 1, False),
    "train.max_length": (16, None, False),
    "train.max_failures": (0, None, False),
    "eval.tempcompass_limit": (0, None, False),
    "cycles": (1, None, False),
    "early_stop_margin": (None, 1, False),
}


def check_ranges(cfg: "Config") -> None:
    """Every key of ``RANGES`` within its range (and finite); raises ConfigError naming the key."""
    for key, (low, high, open_low) in RANGES.items():
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value}")
        if low is not None and (value <= low if open_low else value < low):
            raise ConfigError(f"{key}: must be {'>' if open_low else '>='} {low:g}, got {value:g}")
        if high is not None and value > high:
            raise ConfigError(f"{key}: must be <= {high:g}, got {value:g}")


@dataclass(frozen=True)
class ManifestSource:
    """One labeled dataset of a run. In YAML a bare path is a source with the defaults."""

    manifest: str  # parquet manifest (DESIGN.md section 4), a path or URI
    video_root: str = ""  # its relative `video` paths resolve here; default: data.video_root, else the manifest's folder
    max_rows: int = 0  # at most this many of its rows (the first, after sampling); 0: all
    weight: float = 1.0  # the share of its rows a run samples (seeded by `seed`), in (0, 1]


@dataclass(frozen=True)
class DataConfig:
    # the manifests used to generate training data: a path, or a list of paths / ManifestSource mappings
    # (several datasets in one run, as VSTaR-1M mixes them; ids must be unique across them)
    train_manifest: list[ManifestSource] = field(default_factory=list)
    eval_manifest: list[ManifestSource] = field(default_factory=list)  # held-out manifests, scored every cycle
    video_root: str = ""  # relative `video` paths resolve against this; default: the manifest's folder
    num_frames: int = 8  # frames sampled uniformly from each clip
    frame_size: int = 224  # frames are resized to frame_size x frame_size before they cross the object store
    decode_batch_size: int = 8
    decode_num_cpus: float = 0.5  # logical CPUs per decode task
    decode_timeout_s: float = 60.0  # a clip still decoding after this is killed and becomes an error row; 0: no limit
    # frame rate of clips stored as folders of frame images (no container states it); 0: unknown, and models that
    # write frame times into their prompt (Qwen3-VL, SmolVLM2) assume their default
    frame_folder_fps: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # local folder or hub id, loaded with AutoModelForImageTextToText/AutoProcessor
    trust_remote_code: bool = False
    dtype: str = "auto"  # auto: bfloat16 on GPU, float32 on CPU


@dataclass(frozen=True)
class VLLMConfig:
    """The ``vllm`` engine's settings (docs/engines.md)."""

    python: str = ""  # a Python executable of a separate environment with vLLM (the CPU test recipe); empty: this one
    tensor_parallel_size: int = 1  # GPUs per engine; generate.num_gpus must give each generator actor as many
    gpu_memory_utilization: float = 0.85  # share of the GPU vLLM takes for weights and KV cache while generating
    max_model_len: int = 0  # 0: the model's own limit
    enforce_eager: bool = False  # true: no CUDA graphs (faster start, slower decoding)
    cpu_kv_cache_gib: float = 1.0  # CPU builds of vLLM only: KV cache size


@dataclass(frozen=True)
class GenerateConfig:
    batch_size: int = 8  # videos per generate() call
    max_new_tokens: int = 128
    temperature: float = 0.2  # paper default; eval always decodes greedily
    do_sample: bool = True
    num_gpus: float = 0.0  # per generator actor
    num_cpus: float = 1.0  # per generator actor
    min_actors: int = 1
    max_actors: int = 1
    engine: str = "hf"  # hf (batched transformers generate), vllm, or package.module:Class (docs/engines.md)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)
    # a run's generator actors start once and serve every pass; they must be up within this (an autoscaling cluster
    # brings nodes up first), else the run fails naming generate.num_cpus/num_gpus
    start_timeout_s: float = 600.0
    # a pass in which no row moves through any stage for this long fails, naming the stage it stopped at; 0: no limit
    stall_timeout_s: float = 1800.0


@dataclass(frozen=True)
class VerifyConfig:
    thresholds: str = ""  # thresholds.yaml; empty means the defaults of DESIGN.md section 3 (the demo: its kit's)
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"  # sentence types; loaded only if used
    # files or modules whose verify_<type> functions add label types, loaded in every worker (docs/verifiers.md)
    plugins: list[str] = field(default_factory=list)
    num_cpus: float = 0.25


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    lr: float = 2e-5
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 4  # per worker and micro-batch
    # samples per optimizer step over all workers, reached by accumulating micro-batches (a multiple of
    # batch_size x num_workers); 0: one micro-batch per worker per step
    global_batch_size: int = 0
    num_workers: int = 2
    cpus_per_worker: float = 1.0  # leave CPUs free for the Ray Data ingest that feeds the workers
    use_gpu: bool = False
    # with use_gpu: GPUs per worker. A fraction colocates a worker with a generator actor on one GPU (the
    # generator frees its memory while training runs): e.g. generate.num_gpus 0.6 + gpus_per_worker 0.4
    gpus_per_worker: float = 1.0
    fsdp: bool = True  # FSDP2 fully_shard over all workers
    # auto: bf16-mixed on GPUs (bfloat16 compute; float32 parameters, optimizer state and gradient reduction),
    # fp32 on CPU; bf16: parameters and optimizer state in bfloat16 too (small updates are lost to rounding)
    precision: str = "auto"
    # recompute each transformer block's activations in the backward pass; null: on when use_gpu
    activation_checkpointing: bool | None = None
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lora_vision_tower: bool = False  # LoRA adapts the language model only; true: the vision tower's layers too
    # tokens per sample, prompt and video included; a sample is never cut inside them: a longer one loses the end of
    # its answer (metrics: answers_truncated), and a run whose prompts alone do not fit is refused at start
    max_length: int = 1024
    restart_from_pretrained: bool = True  # STaR: every cycle finetunes the pretrained model
    # also train each kept rationalized answer under its hint prompt, so that a small model keeps following
    # hints in later cycles (Video-STaR trains rationalized answers under the plain question only)
    hinted_copies: bool = False
    max_failures: int = 1  # Ray Train FailureConfig


@dataclass(frozen=True)
class EvalConfig:
    """Suites evaluated on the seed model and after every cycle (the held-out manifest always)."""

    tempcompass_questions: str = ""  # folder with TempCompass's multi-choice.json, yes_no.json, ...; empty: off
    tempcompass_videos: str = ""  # folder with <video_id>.mp4
    tempcompass_tasks: str = ""  # comma-separated subset of multi-choice,yes_no,caption_matching,captioning
    tempcompass_limit: int = 0  # at most this many questions (0: all)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    cycles: int = 3
    seed: int = 0
    rationalize: bool = True
    keep_rationalized: str = "all"  # all | intermediate (paper: final model trained on direct answers only)
    # what each cycle trains on: verified (Video-STaR) | unfiltered (every direct answer, verified or not:
    # the no-filter ablation) | labels (template answers that state the label, no generation: the paper's
    # Video-LLaVA+ baseline)
    train_on: str = "verified"
    early_stop_margin: float = -1.0  # stop when eval accuracy improves by less than this; < 0 never stops
    demo_kit: str = ""  # when set, the demo kit is built there if missing, and empty paths point into it
    # the cluster adds nodes on demand (KubeRay, ray up): a config the current nodes cannot hold waits for them
    # (generate.start_timeout_s) instead of being refused at start
    autoscaling: bool = False
    # where runs are tracked, comma-separated: tensorboard (OUT/tensorboard/), wandb, mlflow, or none (docs/tracking)
    tracking: str = "tensorboard"

    def __post_init__(self) -> None:
        if self.keep_rationalized not in ("all", "intermediate"):
            raise ConfigError(f"keep_rationalized: expected 'all' or 'intermediate', got {self.keep_rationalized!r}")
        if self.train_on not in TRAIN_ON:
            raise ConfigError(f"train_on: expected one of {', '.join(TRAIN_ON)}, got {self.train_on!r}")
        if self.model.dtype not in DTYPES:
            raise ConfigError(f"model.dtype: expected one of {', '.join(DTYPES)}, got {self.model.dtype!r}")
        unknown = [n.strip() for n in self.tracking.split(",") if n.strip() not in TRACKING]
        if unknown:
            raise ConfigError(f"tracking: unknown {unknown}; choose from {', '.join(TRACKING)} (comma-separated)")
        if self.train.precision not in PRECISIONS:
            raise ConfigError(f"train.precision: expected one of {', '.join(PRECISIONS)}, got {self.train.precision!r}")
        if self.generate.max_actors < self.generate.min_actors:
            raise ConfigError(f"generate.max_actors ({self.generate.max_actors}) is below generate.min_actors "
                              f"({self.generate.min_actors})")
        check_ranges(self)


def load_config(path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML file (or start from defaults when ``path`` is None) and apply ``key=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path} is not valid YAML: {e}") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: top level must be a mapping")
    for item in overrides:
        apply_override(raw, item)
    return from_dict(Config, raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``a.b=value`` override to a raw config mapping; the value is parsed as YAML."""
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


def from_dict(cls: type, raw: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        keys = ", ".join(f"{prefix}{k}" for k in unknown)
        raise ConfigError(f"unknown config key(s): {keys} (known: {', '.join(sorted(names))})")
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}") for name, value in raw.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or 'config'}: {e}") from e


def _coerce(tp: Any, value: Any, key: str) -> Any:
    if tp == list[ManifestSource]:  # a path, a list of paths, or a list of ManifestSource mappings
        if value in (None, ""):
            return []
        items = value if isinstance(value, list) else [value]
        sources = [from_dict(ManifestSource, {"manifest": v} if isinstance(v, str) else v, f"{key}[{i}].")
                   for i, v in enumerate(items)]
        for i, source in enumerate(sources):
            if not source.manifest:
                raise ConfigError(f"{key}[{i}].manifest: empty")
            if not 0 < source.weight <= 1:
                raise ConfigError(f"{key}[{i}].weight: must be in (0, 1], got {source.weight}")
            if source.max_rows < 0:
                raise ConfigError(f"{key}[{i}].max_rows: must be >= 0, got {source.max_rows}")
        return sources
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, key + ".")
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    from vstar_ray.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
