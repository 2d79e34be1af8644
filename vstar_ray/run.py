"""The Video-STaR loop (docs/architecture.md, "The algorithm"), stage by stage, resumable.

    seed       evaluate the pretrained model on the held-out set (and the configured suites)
    for each cycle k:
        generate   answer -> verify -> rationalize failures -> verify     (the newest model)
        train_json the samples the cycle trains on, in LLaVA conversation format
        train      finetune from the pretrained model (or the last one) on them
        evaluate   the new checkpoint, as the seed was
        stop early when held-out accuracy improves by less than ``early_stop_margin``

Each finished stage is recorded in ``DIR/state.json`` (``run_folder.RunState``), after its outputs, so
``--resume`` skips it and reproduces the same metrics. ``preflight`` checks the inputs before any of it.
"""

from __future__ import annotations

import time
from pathlib import Path

from vstar_ray import preflight, report
from vstar_ray.config import Config, ConfigError, with_frame_cache
from vstar_ray.console import link_ray_logs, say
from vstar_ray.data.sources import mix
from vstar_ray.evaluation.suites import evaluate
from vstar_ray.generation.pool import GeneratorPool
from vstar_ray.io import atomic_write_json, make_dir, read_json
from vstar_ray.resources import init_ray
from vstar_ray.results import CycleRecord, PassSummary, RunRecord, TrainJson, TrainResult
from vstar_ray.run_folder import RunLock, RunState, record_config

GENERATORS = "generators.json"  # per invocation of a run: its generator processes (pid, node, models loaded)


def run(cfg: Config, out: str | Path, resume: bool = False, allow_changed_config: bool = False) -> RunRecord:
    """Run (or resume) Video-STaR into ``out``; returns what ``out/metrics.json`` holds.

    One process writes ``out`` at a time (``run_folder.RunLock``); a resume with a different config is
    refused unless ``allow_changed_config``. Every pass resumes inside itself (``generation.pipeline``)."""
    from vstar_ray.tracking import Tracker

    out = Path(out).resolve()
    make_dir(out, "the run folder")
    with RunLock(out):
        if (out / "state.json").exists() and not resume:
            raise ConfigError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        cfg = preflight.resolve_demo(cfg)
        preflight.check_inputs(cfg)
        changes = record_config(out, cfg, resume, allow_changed_config)
        if changes:
            say(f"note: continuing with a changed config ({'; '.join(changes)}); see config_history/")
        cfg = with_frame_cache(cfg, out)
        train, heldout = (mix(getattr(cfg.data, f"{split}_manifest"), out / "data" / f"{split}.parquet",
                              cfg.data.video_root, cfg.seed) for split in ("train", "eval"))
        init_ray()
        link_ray_logs(out)
        with GeneratorPool.start(cfg, training=True, log=say) as pool:
            tracker = Tracker(cfg, out)
            try:
                record = cycles(cfg, out, RunState(out), pool, tracker, train, heldout, resume)
            except BaseException:
                _close(out, pool, tracker, failing=True)
                raise
            _close(out, pool, tracker, failing=False)
        record.write(out / "metrics.json")
        report.write(out, record)
    print(report.table(record), flush=True)
    return record


def _close(out: Path, pool: GeneratorPool, tracker, failing: bool) -> None:
    """Close the trackers and record which processes served this invocation (one per actor, each model loaded in
    place). After a failure, a failure here (the disk that filled up) is noted and the first error is what the
    user sees."""
    try:
        tracker.close()
        history = read_json(out / GENERATORS) if (out / GENERATORS).exists() else []
        atomic_write_json(out / GENERATORS, history + [{"started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                        "processes": pool.processes()}])
    except Exception as e:
        if not failing:
            raise
        say(f"note: could not record {out / GENERATORS} after the failure below: {e}")


def cycles(cfg: Config, out: Path, state: RunState, pool: GeneratorPool, tracker, train: str, heldout: str,
           resume: bool) -> RunRecord:
    """The seed's evaluation and the cycles over the run's (mixed) ``train`` and ``heldout`` manifests; every
    pass uses ``pool``'s actors; what ran in this invocation is logged to ``tracker``."""
    from vstar_ray.generation.pipeline import label_pass, run_pass
    from vstar_ray.tracking import read_steps
    from vstar_ray.training.finetune import STEPS_FILE, finetune
    from vstar_ray.training.rows import answer_stats, write_train_json

    pretrained = cfg.model.path
    record = RunRecord(evaluate(cfg, state, "baseline", pretrained, out / "baseline", heldout, pool, resume))
    if "baseline/eval" in state.ran:
        tracker.log_baseline(record.baseline)
    current, best, step = pretrained, record.baseline.accuracy, 0
    for k in range(1, cfg.cycles + 1):
        cdir, final, name = out / f"cycle_{k}", k == cfg.cycles, f"cycle_{k}"

        def generate() -> PassSummary:  # answer -> verify -> rationalize failures -> verify, with the newest model
            if cfg.train_on == "labels":  # the Video-LLaVA+ baseline: the labels themselves, nothing generated
                return label_pass(train, cdir / "generated")
            return run_pass(cfg, train, current, cdir / "generated", "train", pool=pool, resume=resume,
                            label=f"{name}/generate")

        def finetune_released(base: str) -> TrainResult:
            pool.release()  # the generators give their memory to the trainers; the next pass loads the new model
            return finetune(cfg, cdir / "generated", train, base, cdir / "checkpoint", out / "ray_train", final,
                            name=name)

        gen = state.stage(f"{name}/generate", PassSummary, generate)
        state.stage(f"{name}/train_json", TrainJson,
                    lambda: TrainJson(write_train_json(cfg, cdir / "generated", cdir / "train.json", final)))
        base = pretrained if cfg.train.restart_from_pretrained else current
        trained = state.stage(f"{name}/train", TrainResult, lambda: finetune_released(base))
        if f"{name}/train" in state.ran:
            tracker.log_steps(read_steps(out / "ray_train" / name / STEPS_FILE), step)
        step += trained.steps or 0
        current = str(cdir / "checkpoint")
        ev = evaluate(cfg, state, name, current, cdir, heldout, pool, resume)
        cycle = CycleRecord.of_stages(k, gen, trained, ev, answer_stats(cdir / "train.json"))
        record.cycles.append(cycle)
        atomic_write_json(cdir / "metrics.json", cycle.to_json())
        record.write(out / "metrics.json")
        report.write(out, record)
        say(cycle.line())
        if f"{name}/eval" in state.ran:
            tracker.log_cycle(cycle)
        if cfg.early_stop_margin >= 0 and ev.accuracy < best + cfg.early_stop_margin and not final:
            say(f"stopping early: accuracy {ev.accuracy:.3f} did not improve on {best:.3f} by {cfg.early_stop_margin}")
            break
        best = max(best, ev.accuracy)
    return record
