"""The Video-STaR loop (DESIGN.md section 1), stage by stage, resumable.

    baseline: evaluate the pretrained model on the held-out manifest
    for each cycle k:
        generate   answer -> verify -> rationalize failures -> verify     (newest model)
        train.json kept pairs in LLaVA conversation format
        train      finetune from the pretrained model (or the last one) on the kept pairs
        evaluate   held-out accuracy of the new checkpoint
        stop early when accuracy improves by less than ``early_stop_margin``

Each finished stage is recorded in ``DIR/state.json`` (written atomically, after the stage's
outputs), so ``--resume`` skips it and reproduces the same metrics.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pyarrow.parquet as pq

from vstar_ray import prompts, report
from vstar_ray.console import link_ray_logs, say
from vstar_ray.config import Config, ConfigError, ManifestSource
from vstar_ray.generation.pool import GeneratorPool
from vstar_ray.io import atomic_write_json, atomic_write_text, make_dir, read_json
from vstar_ray.data.manifest import validate_manifest
from vstar_ray.results import CycleRecord, PassSummary
from vstar_ray.resources import init_ray
from vstar_ray.run_folder import RunLock, record_config
from vstar_ray.data.sources import mix


class RunState:
    """``state.json``: the results of finished stages, keyed by name."""

    def __init__(self, out: Path):
        self.path = out / "state.json"
        self.stages: dict[str, dict] = read_json(self.path)["stages"] if self.path.exists() else {}

    def done(self, name: str) -> bool:
        return name in self.stages

    def record(self, name: str, result: dict) -> dict:
        self.stages[name] = result
        atomic_write_json(self.path, {"stages": self.stages, "updated": time.time()})
        return result


def log(message: str) -> None:
    say(message)


def stage_line(name: str, result: dict) -> str:
    """A finished stage in one line, with what it counted."""
    seconds = f"{result.get('seconds', 0):.1f}s"
    if name.endswith("/generate"):
        s = PassSummary.from_json(result)
        return (f"{name}: {s.videos} videos, kept {s.kept_direct} direct + {s.kept_rationalized} rationalized of "
                f"{s.answers} answers (yield {s.yield_:.2f}), {s.failed_videos} failed"
                + (f", {s.resumed_rows} resumed" if s.resumed_rows else "") + f", {seconds}")
    if name.endswith("/eval"):
        return f"{name}: held-out accuracy {result['accuracy']:.3f} on {result['generated']} videos, {seconds}"
    if name.endswith("/train"):
        return (f"{name}: {result.get('steps')} steps on {result.get('samples')} samples, loss "
                f"{result.get('loss_first') or 0:.3f} -> {result.get('loss_last') or 0:.3f}, {seconds}")
    return f"{name}: done, {seconds}"


def resolve_demo(cfg: Config) -> Config:
    """With ``demo_kit`` set: build the kit if missing and point empty data/model/thresholds paths into it."""
    if not cfg.demo_kit:
        return cfg
    from vstar_ray.demo.kit import ensure_kit

    return in_kit(cfg, ensure_kit(cfg.demo_kit, log=log))


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
        log(f"note: model type {kind!r} is not one of the tested families ({', '.join(families.FAMILIES)})")
    elif family.trained_frames and cfg.data.num_frames != family.trained_frames:
        log(f"note: {family.name} was trained on {family.trained_frames} frames per clip; data.num_frames is "
            f"{cfg.data.num_frames}")
    if training and cfg.train.max_length < tokens["total"] + MIN_ANSWER_TOKENS:
        raise ConfigError(
            f"train.max_length={cfg.train.max_length} leaves no room for answers: a prompt takes {tokens['total']} "
            f"tokens with this model ({tokens['video']} of them for {cfg.data.num_frames} frames of "
            f"{cfg.data.frame_size} px); set it to at least {tokens['total'] + MIN_ANSWER_TOKENS} plus the answers' "
            f"length (generate.max_new_tokens={cfg.generate.max_new_tokens})")
    if training and cfg.train.max_length < tokens["total"] + cfg.generate.max_new_tokens:
        log(f"note: answers longer than {cfg.train.max_length - tokens['total']} tokens will be cut in training "
            f"(train.max_length={cfg.train.max_length}, a prompt takes {tokens['total']}, "
            f"generate.max_new_tokens={cfg.generate.max_new_tokens}); metrics count them as answers_truncated")


def check_engine(cfg: Config) -> None:
    """``generate.engine`` can be imported (and vLLM is installed where the config says); ConfigError if not."""
    from vstar_ray.generation.engines.hf_engine import load_engine

    try:
        load_engine(cfg.generate.engine)
        if cfg.generate.engine == "vllm":
            from vstar_ray.generation.engines.vllm_engine import check_available

            check_available(cfg.generate.vllm)
    except ValueError as e:
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
        for source in sources:
            validate_manifest(source.manifest if "://" in source.manifest else Path(source.manifest).expanduser())
    check_engine(cfg)
    if cfg.verify.thresholds:
        from vstar_ray.verify import load_thresholds

        load_thresholds(cfg.verify.thresholds)
    if cfg.eval.tempcompass_questions:
        from vstar_ray.evaluation import tempcompass

        try:
            tempcompass.load_questions(cfg.eval.tempcompass_questions, tempcompass.parse_tasks(cfg.eval.tempcompass_tasks))
        except tempcompass.TempCompassError as e:
            raise ConfigError(f"eval.tempcompass_questions: {e}") from e
        if not Path(cfg.eval.tempcompass_videos).is_dir():
            raise ConfigError(f"eval.tempcompass_videos: {cfg.eval.tempcompass_videos!r} is not a folder")


def write_train_json(cfg: Config, generated: Path, out: Path, final_cycle: bool) -> int:
    """The pairs a cycle trains on as LLaVA conversations (VSTaR-1M format); the human turn is the question
    without hint."""
    from vstar_ray.training.rows import SELECTION_COLUMNS, trained_sources, training_pairs

    wanted = ["id", "video", "start", "end", "source", "question", *SELECTION_COLUMNS]
    names = pq.ParquetDataset(generated).schema.names
    columns = pq.read_table(generated, columns=[c for c in wanted if c in names]).to_pydict()
    keep, answers = training_pairs(columns, cfg.train_on, trained_sources(final_cycle, cfg.keep_rationalized))
    for key in ("start", "end"):  # the clip window inside a longer video, when the manifest has one
        columns.setdefault(key, [None] * len(keep))
    records = []
    for i in map(int, keep.nonzero()[0]):
        record = {
            "id": columns["id"][i],
            "video": columns["video"][i],
            "conversations": [
                {"from": "human", "value": "<video>\n" + prompts.answer_prompt(columns["question"][i])},
                {"from": "gpt", "value": answers[i]},
            ],
            "kept_from": columns["kept_from"][i] or "unfiltered",
            "source": (columns.get("source") or [""] * len(keep))[i] or "",
        }
        for key in ("start", "end"):
            value = columns[key][i]
            if value is not None and value == value:
                record[key] = value
        records.append(record)
    atomic_write_text(out, json.dumps(records, indent=1) + "\n")
    return len(records)


def kept_answer_stats(train_json: Path, examples: int = 3) -> dict:
    """Mean length (words) of the answers a cycle trains on, and the first few, for the report."""
    records = json.loads(train_json.read_text())
    answers = [r["conversations"][1]["value"] for r in records]
    return {
        "answers": len(answers),
        "mean_words": round(sum(len(a.split()) for a in answers) / len(answers), 1) if answers else 0.0,
        "examples": [{"id": r["id"], "from": r["kept_from"], "answer": r["conversations"][1]["value"]}
                     for r in records[:examples]],
    }


def held_out_eval(cfg: Config, manifest: str, model: str, folder: Path, report_name: str = "eval_report.md",
                  pool=None, resume: bool = False, label: str = "eval") -> dict:
    """The greedy held-out pass, its per-type/per-source scores with 95% CIs, and ``folder/<report_name>``."""
    from vstar_ray.evaluation.heldout import write_report
    from vstar_ray.generation.pipeline import run_pass

    summary = run_pass(cfg, manifest, model, folder / "eval", "eval", pool=pool, resume=resume, label=label)
    return {**summary, "scores": write_report(folder / "eval", folder / report_name, f"Held-out evaluation: {model}")}


def tempcompass_eval(cfg: Config, model: str, folder: Path, pool=None) -> dict:
    from vstar_ray.evaluation import tempcompass

    start = time.time()
    result = tempcompass.run(cfg, cfg.eval.tempcompass_questions, cfg.eval.tempcompass_videos, model, folder,
                             tasks=tempcompass.parse_tasks(cfg.eval.tempcompass_tasks), limit=cfg.eval.tempcompass_limit,
                             pool=pool)
    return {"accuracy": {task: r["accuracy"] for task, r in result["tasks"].items()},
            "seconds": round(time.time() - start, 2)}


GENERATORS = "generators.json"  # per invocation of a run: its generator processes (pid, node, models loaded)


def run(cfg: Config, out: str | Path, resume: bool = False, allow_changed_config: bool = False) -> dict:
    """Run (or resume) Video-STaR into ``out``; returns the contents of ``out/metrics.json``.

    One process writes ``out`` at a time (``run_folder.RunLock``); a resume with a different config is
    refused unless ``allow_changed_config``. Every pass resumes inside itself (``pipeline.run_pass``)."""
    out = Path(out).resolve()
    make_dir(out, "the run folder")
    with RunLock(out):
        if (out / "state.json").exists() and not resume:
            raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        cfg = resolve_demo(cfg)
        check_inputs(cfg)
        changes = record_config(out, cfg, resume, allow_changed_config)
        if changes:
            log(f"note: continuing with a changed config ({'; '.join(changes)}); see config_history/")
        state = RunState(out)
        manifests = {split: mix(getattr(cfg.data, f"{split}_manifest"), out / "data" / f"{split}.parquet",
                                cfg.data.video_root, cfg.seed) for split in ("train", "eval")}
        init_ray()
        link_ray_logs(out)
        from vstar_ray.tracking import Tracker

        with GeneratorPool.start(cfg, training=True, log=log) as pool:
            tracker = Tracker(cfg, out)
            try:
                metrics = _cycles(cfg, out, state, pool, resume, tracker, manifests["train"], manifests["eval"])
            finally:  # which processes served this invocation: one per actor, each model loaded in place
                tracker.close()
                history = read_json(out / GENERATORS) if (out / GENERATORS).exists() else []
                atomic_write_json(out / GENERATORS, history + [{"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                                "processes": pool.processes()}])
        atomic_write_json(out / "metrics.json", metrics)
        report.write(out, metrics)
    print(report.table(metrics), flush=True)
    return metrics


def _cycles(cfg: Config, out: Path, state: RunState, pool, resume: bool, tracker, manifest: str, heldout: str) -> dict:
    """Baseline and cycles over the run's (mixed) ``manifest`` and ``heldout`` manifest, each stage skipped when
    ``state`` has it; every pass uses ``pool``'s actors; what ran in this invocation is logged to ``tracker``."""
    from vstar_ray.generation.pipeline import label_pass, run_pass
    from vstar_ray.tracking import read_steps
    from vstar_ray.training.finetune import STEPS_FILE, finetune

    pretrained = cfg.model.path
    ran: set[str] = set()

    def stage(name: str, fn):
        if state.done(name):
            log(f"{name}: done earlier, skipped")
            return state.stages[name]
        log(f"{name}: running")
        start = time.time()
        result = fn()
        result.setdefault("seconds", round(time.time() - start, 2))
        ran.add(name)
        log(stage_line(name, result))
        return state.record(name, result)

    def suites(name: str, model: str, folder: Path) -> dict:
        """Held-out QA (scored per label type and source) and, when configured, TempCompass."""
        ev = stage(f"{name}/eval", lambda: held_out_eval(cfg, heldout, model, folder, pool=pool, resume=resume,
                                                         label=f"{name}/eval"))
        if cfg.eval.tempcompass_questions:
            tc = stage(f"{name}/tempcompass", lambda: tempcompass_eval(cfg, model, folder / "tempcompass", pool))
            ev = {**ev, "tempcompass": tc["accuracy"], "seconds": ev["seconds"] + tc["seconds"]}
        return ev

    def finetune_released(cdir: Path, base: str, final: bool, k: int) -> dict:
        pool.release()  # the generators give their memory to the trainers; the next pass loads the new model
        return finetune(cfg, cdir / "generated", manifest, base, cdir / "checkpoint", out / "ray_train", final,
                        name=f"cycle_{k}")

    baseline = suites("baseline", pretrained, out / "baseline")
    metrics = {"baseline": {"eval_accuracy": baseline["accuracy"], "eval": baseline.get("scores", {}),
                            **{k: v for k, v in baseline.items() if k != "scores"}}, "cycles": []}
    if "baseline/eval" in ran:
        tracker.log_baseline(baseline["accuracy"], baseline.get("scores", {}).get("by_type", {}))
    current, best, step = pretrained, baseline["accuracy"], 0
    for k in range(1, cfg.cycles + 1):
        cdir, final = out / f"cycle_{k}", k == cfg.cycles
        gen = stage(f"cycle_{k}/generate", lambda: label_pass(manifest, cdir / "generated")  # nothing to generate
                    if cfg.train_on == "labels"
                    else run_pass(cfg, manifest, current, cdir / "generated", "train", pool=pool, resume=resume,
                                  label=f"cycle_{k}/generate"))
        stage(f"cycle_{k}/train_json",
              lambda: {"records": write_train_json(cfg, cdir / "generated", cdir / "train.json", final)})
        base = pretrained if cfg.train.restart_from_pretrained else current
        trained = stage(f"cycle_{k}/train", lambda: finetune_released(cdir, base, final, k))
        if f"cycle_{k}/train" in ran:
            tracker.log_steps(read_steps(out / "ray_train" / f"cycle_{k}" / STEPS_FILE), step)
        step += trained.get("steps") or 0
        current = str(cdir / "checkpoint")
        ev = suites(f"cycle_{k}", current, cdir)
        record = CycleRecord.of_stages(k, PassSummary.from_json(gen), trained, ev, base,
                                       kept_answer_stats(cdir / "train.json"))
        entry = record.to_json()
        metrics["cycles"].append(entry)
        atomic_write_json(cdir / "metrics.json", entry)
        atomic_write_json(out / "metrics.json", metrics)
        report.write(out, metrics)
        log(report.cycle_line(record))
        if f"cycle_{k}/eval" in ran:
            tracker.log_cycle(record)
        if cfg.early_stop_margin >= 0 and ev["accuracy"] < best + cfg.early_stop_margin and not final:
            log(f"stopping early: accuracy {ev['accuracy']:.3f} did not improve on {best:.3f} "
                f"by {cfg.early_stop_margin}")
            break
        best = max(best, ev["accuracy"])
    return metrics
