"""What a run scores on the seed model and after every cycle, each a resumable stage of its own: held-out QA (always;
verified, or judged under ``eval.protocol: paper``) and each judged benchmark of ``eval.benchmarks``, with one
judge and its cache for all of them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vstar_ray.config import Config
from vstar_ray.config_eval import BenchmarkSpec, JudgeConfig
from vstar_ray.errors import InputError
from vstar_ray.evaluation.benchmark import BenchmarkResult
from vstar_ray.evaluation.heldout import held_out
from vstar_ray.results import EvalResult
from vstar_ray.run_folder import RunState


def judge_configured(cfg: JudgeConfig) -> bool:
    return bool({"openai": cfg.base_url and cfg.model, "actors": cfg.model, "callable": cfg.function}[cfg.backend])


def needs_judge(what: str, cfg: JudgeConfig) -> None:
    if not judge_configured(cfg):
        key = {"openai": "judge.base_url and judge.model", "actors": "judge.model",
               "callable": "judge.function"}[cfg.backend]
        raise InputError(f"{what} is judged by an LLM: set {key} (judge.backend={cfg.backend}; docs/evaluation.md)")


def run_benchmark(cfg: Config, spec: BenchmarkSpec, model: str, out: Path, pool=None, judge=None,
                  rescore: bool = False) -> BenchmarkResult:
    """One benchmark of ``spec`` for ``model`` into ``out`` (``results.json``, ``results.md``, ``predictions.jsonl``)."""
    from vstar_ray.evaluation import openqa, tempcompass, videochatgpt
    from vstar_ray.evaluation.judge import Judge

    if spec.name != "tempcompass":
        needs_judge(f"--benchmark {spec.name}", cfg.judge)
    if judge is None and judge_configured(cfg.judge):
        judge = Judge(cfg.judge)
    common = dict(out=out, label=spec.title, limit=spec.limit, pool=pool, judge=judge, rescore=rescore)
    if spec.name == "openqa":
        return openqa.run(cfg, spec.questions, spec.answers, spec.videos, model, **common)
    if spec.name == "videochatgpt":
        return videochatgpt.run(cfg, spec.questions, spec.videos, model, **common)
    return tempcompass.run(cfg, spec.questions, spec.videos, model, tasks=tempcompass.parse_tasks(spec.tasks),
                           **common)


def check_benchmark(cfg: Config, spec: BenchmarkSpec, where: str) -> None:
    """The benchmark's files parse and its videos folder exists (seconds, before any work); ``where`` names the
    config key or flag that gave it."""
    from vstar_ray.evaluation import openqa, tempcompass, videochatgpt

    if spec.name != "tempcompass":
        needs_judge(f"{where} ({spec.name})", cfg.judge)
    if not Path(spec.videos).is_dir():
        raise InputError(f"{where}: videos {spec.videos!r} is not a folder")
    try:
        if spec.name == "openqa":
            if not spec.answers:
                raise InputError("openqa needs answers (test_a.json)")
            openqa.load(spec.questions, spec.answers)
        elif spec.name == "videochatgpt":
            videochatgpt.load(spec.questions)
        else:
            tempcompass.load_questions(spec.questions, tempcompass.parse_tasks(spec.tasks))
    except InputError as e:
        raise InputError(f"{where}: {e}") from e


def evaluate(cfg: Config, state: RunState, name: str, model: str, folder: Path, heldout: str, pool,
             resume: bool) -> EvalResult:
    """``model`` on the held-out manifest and every benchmark, into ``folder``; stages ``<name>/eval``,
    ``<name>/<benchmark label>``."""
    from vstar_ray.evaluation.judge import Judge

    judge = Judge(cfg.judge) if judge_configured(cfg.judge) else None
    try:
        ev = state.stage(f"{name}/eval", EvalResult, lambda: held_out(
            cfg, heldout, model, folder, pool=pool, resume=resume, label=f"{name}/eval", judge=judge))
        results = {}
        for spec in cfg.eval.benchmarks:
            result = state.stage(f"{name}/{spec.title}", BenchmarkResult, lambda spec=spec: run_benchmark(
                cfg, spec, model, folder / "benchmarks" / spec.title, pool, judge))
            results[spec.title] = result.to_json()
    finally:
        if judge is not None:
            judge.close()
    seconds = ev.seconds + sum(r["seconds"] for r in results.values())
    return dataclasses.replace(ev, benchmarks=results, seconds=seconds)
