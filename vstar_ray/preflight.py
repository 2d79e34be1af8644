"""Everything a run can check before expensive work starts, in seconds: the model loads (its config and
processor, no weights) and its prompts fit ``train.max_length``; the engine imports; the manifests, thresholds,
verifier plug-ins and benchmark files are readable. Each problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vstar_ray import prompts
from vstar_ray.config import Config, ConfigError, ManifestSource
from vstar_ray.console import say
from vstar_ray.data.manifest import validate_manifest
from vstar_ray.data.sources import check_source
from vstar_ray.errors import InputError


def resolve_demo(cfg: Config) -> Config:
    """With ``demo_kit`` set: build the kit if missing and point empty data/model/thresholds paths into it."""
    if not cfg.demo_kit:
        return cfg
    from vstar_ray.demo.kit import ensure_kit

    return in_kit(cfg, ensure_kit(cfg.demo_kit, log=say))


def in_kit(cfg: Config, kit: Path) -> Config:
    """``cfg`` with its empty data/model/thresholds paths pointed into the demo kit folder ``kit``."""
    data = dataclasses.replace(
        cfg.data,
        train_manifest=cfg.data.train_manifest or [ManifestSource(str(kit / "train.parquet"))],
        eval_manifest=cfg.data.eval_manifest or [ManifestSource(str(kit / "heldout.parquet"))],
    )
    model = dataclasses.replace(cfg.model, path=cfg.model.path or str(kit / "seed"))
    verify = dataclasses.replace(cfg.verify, thresholds=cfg.verify.thresholds or str(kit / "thresholds.yaml"))
    return dataclasses.replace(cfg, data=data, model=model, verify=verify)


MIN_ANSWER_TOKENS = 64  # room train.max_length must leave after the longest prompt


def check_model(cfg: Config, path: str, training: bool) -> None:
    """``path`` is a model transformers can load (its config and processor: seconds, no weights), and for training
    ``train.max_length`` holds a prompt with its video plus an answer. Raises ConfigError naming the key."""
    from vstar_ray import families, models

    if not path:
        raise ConfigError("model.path is empty (set it, or demo_kit for the demo)")
    try:
        kind = models.model_type(path, cfg.model.trust_remote_code)
        processor = models.load_processor(path, cfg.model.trust_remote_code)
        models.chat_format(processor)
        tokens = models.prompt_tokens(processor, cfg.data.num_frames, cfg.data.frame_size,
                                      prompts.answer_prompt("What is happening in the video? " * 4))
    except Exception as e:  # transformers raises OSError, ValueError, KeyError ... for what is not a usable model
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if "trust_remote_code" in str(e) or "custom code" in str(e):
            reason += " (set model.trust_remote_code: true only if you trust that code)"
        raise ConfigError(f"model.path {path!r} cannot be used: {reason}") from e
    family = families.family(kind)
    if family is None:
        say(f"note: model type {kind!r} is not one of the tested families ({', '.join(families.FAMILIES)})")
    elif family.trained_frames and cfg.data.num_frames != family.trained_frames:
        say(f"note: {family.name} was trained on {family.trained_frames} frames per clip; data.num_frames is "
            f"{cfg.data.num_frames}")
    if training and cfg.train.max_length < tokens["total"] + MIN_ANSWER_TOKENS:
        raise ConfigError(
            f"train.max_length={cfg.train.max_length} leaves no room for answers: a prompt takes {tokens['total']} "
            f"tokens with this model ({tokens['video']} of them for {cfg.data.num_frames} frames of "
            f"{cfg.data.frame_size} px); set it to at least {tokens['total'] + MIN_ANSWER_TOKENS} plus the answers' "
            f"length (generate.max_new_tokens={cfg.generate.max_new_tokens})")
    if training and cfg.train.max_length < tokens["total"] + cfg.generate.max_new_tokens:
        say(f"note: answers longer than {cfg.train.max_length - tokens['total']} tokens will be cut in training "
            f"(train.max_length={cfg.train.max_length}, a prompt takes {tokens['total']}, "
            f"generate.max_new_tokens={cfg.generate.max_new_tokens}); metrics count them as answers_truncated")


def check_engine(cfg: Config) -> None:
    """``generate.engine`` can be imported (and vLLM is installed where the config says); ConfigError if not."""
    from vstar_ray.generation.engines import load_engine

    try:
        load_engine(cfg.generate.engine)
        if cfg.generate.engine == "vllm":
            from vstar_ray.generation.engines.vllm_engine import check_available

            check_available(cfg.generate.vllm)
    except InputError as e:
        raise ConfigError(str(e)) from e


def load_verifier_plugins(cfg: Config) -> None:
    """``verify.plugins`` registered here, before manifests and thresholds that use their types are checked."""
    from vstar_ray.verify import PluginError, load_plugins

    try:
        load_plugins(cfg.verify.plugins)
    except PluginError as e:
        raise ConfigError(str(e)) from e


def check_inputs(cfg: Config) -> None:
    """Everything that can be checked before expensive work starts."""
    load_verifier_plugins(cfg)
    check_model(cfg, cfg.model.path, training=True)
    for key in ("train_manifest", "eval_manifest"):
        sources = getattr(cfg.data, key)
        if not sources:
            raise ConfigError(f"data.{key} is empty")
        for i, source in enumerate(sources):
            rows = validate_manifest(source.manifest if "://" in source.manifest else Path(source.manifest).expanduser())
            check_source(source, rows, f"data.{key}[{i}]")
    if cfg.data.video_root and "://" not in cfg.data.video_root and not Path(cfg.data.video_root).expanduser().is_dir():
        raise ConfigError(f"data.video_root {cfg.data.video_root!r} is not a folder")
    check_engine(cfg)
    if cfg.verify.thresholds:
        from vstar_ray.verify import load_thresholds

        load_thresholds(cfg.verify.thresholds)
    check_judging(cfg)


def check_judging(cfg: Config) -> None:
    """The benchmarks' files parse and their videos are there; what is judged has a judge, and a judge function
    imports (a judge's endpoint is not called here: a run that finds everything cached needs none)."""
    from vstar_ray.evaluation.judge import ORIGINAL_NOTE, load_function
    from vstar_ray.evaluation.suites import check_benchmark, judge_configured, needs_judge

    if cfg.judge.preset == "original" and judge_configured(cfg.judge):
        say(f"note: {ORIGINAL_NOTE}")

    try:
        if cfg.eval.protocol == "paper":
            needs_judge("eval.protocol paper", cfg.judge)
        for i, spec in enumerate(cfg.eval.benchmarks):
            check_benchmark(cfg, spec, f"eval.benchmarks[{i}]")
        if cfg.judge.backend == "callable" and cfg.judge.function:
            load_function(cfg.judge.function)
    except InputError as e:
        raise ConfigError(str(e)) from e
