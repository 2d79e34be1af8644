"""Experiment tracking: what a run logs to TensorBoard (``OUT/tensorboard/``, on by default), Weights & Biases
and MLflow, through their own libraries (``tracking: tensorboard,wandb,mlflow`` or ``none``).

Logged: the training loss and learning rate of every optimizer step (one step axis over all cycles), and per
cycle the held-out accuracy overall and per label type, the yield, the kept and rejected counts and the stage
times. W&B runs offline unless ``WANDB_MODE`` says otherwise is not assumed: it follows its own settings
(``WANDB_MODE=offline`` writes to ``OUT/wandb/``); MLflow writes to ``sqlite:///OUT/mlflow.db`` unless
``MLFLOW_TRACKING_URI`` names a server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vstar_ray.config import Config, to_dict
from vstar_ray.console import quiet_loggers
from vstar_ray.io import flatten
from vstar_ray.results import CycleRecord, EvalResult

def backends(cfg: Config) -> list[str]:
    return [n.strip() for n in cfg.tracking.split(",") if n.strip() and n.strip() != "none"]


def eval_scalars(ev: EvalResult) -> dict[str, float]:
    """Held-out accuracy (overall, per label type), the judge's Accuracy / Score under the paper protocol (overall,
    per source) and every benchmark's figures."""
    scalars = {"eval/accuracy": ev.accuracy, **{f"eval/accuracy/{kind}": cell["accuracy"]
                                                for kind, cell in ev.by_type().items()}}
    if ev.judged:
        for name, cell in [("", ev.judged["overall"])] + [(f"/{s}", c) for s, c in ev.judged["by_source"].items()]:
            scalars |= {f"judged/accuracy{name}": cell["accuracy"], f"judged/score{name}": cell["score"]}
    for label, bench in ev.benchmarks.items():
        scalars |= {f"benchmark/{label}/{figure}": value for figure, value in bench["figures"].items()}
    return scalars


def cycle_scalars(record: CycleRecord) -> dict[str, float]:
    scalars = eval_scalars(record.eval_result())
    scalars |= {"generate/yield": record.yield_, "generate/kept_direct": record.kept_direct,
                "generate/kept_rationalized": record.kept_rationalized, "generate/rejected": record.rejected,
                "generate/failed_videos": record.failed_videos}
    scalars |= {f"time/{stage}_s": seconds for stage, seconds in record.timings.items() if "." not in stage}
    return scalars


class Tracker:
    """Opened once per run invocation; ``log_steps`` and ``log_cycle`` write to every configured backend."""

    def __init__(self, cfg: Config, out: Path):
        self.names = backends(cfg)
        self.tb = self.wandb = self.mlflow = None
        if "tensorboard" in self.names:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        if "wandb" in self.names:
            import wandb

            self.wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "vstar-ray"), name=out.name, dir=str(out),
                                    config=to_dict(cfg), resume="allow", id=_run_id(out, "wandb"))
        if "mlflow" in self.names:
            import mlflow

            quiet_loggers()  # mlflow installs a console handler of its own on import
            mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}"))
            mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "vstar-ray"))
            self.mlflow = mlflow
            run_id = _run_id(out, "mlflow", create=False)
            active = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(run_name=out.name)
            (out / ".mlflow_run_id").write_text(active.info.run_id)
            if not run_id:
                mlflow.log_params({k: str(v)[:500] for k, v in flatten(to_dict(cfg)).items()})

    def _scalars(self, scalars: dict[str, float], step: int) -> None:
        if self.tb is not None:
            for key, value in scalars.items():
                self.tb.add_scalar(key, value, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log({**scalars, "step": step})
        if self.mlflow is not None:
            self.mlflow.log_metrics(scalars, step=step)

    def log_steps(self, steps: list[dict], first_step: int) -> int:
        """One finetune's optimizer steps (``train/loss``, ``train/lr``), numbered on from ``first_step``;
        returns the step after the last."""
        for i, s in enumerate(steps):
            self._scalars({"train/loss": s["loss"], "train/lr": s["lr"]}, first_step + i)
        return first_step + len(steps)

    def log_baseline(self, ev: EvalResult) -> None:
        self._scalars(eval_scalars(ev), 0)

    def log_cycle(self, record: CycleRecord) -> None:
        self._scalars(cycle_scalars(record), record.cycle)

    def close(self) -> None:
        """Close every tracker, each one even when another fails (a full disk); then raise the first failure."""
        closers = [self._close_tensorboard] if self.tb is not None else []
        closers += [self.wandb.finish] if self.wandb is not None else []
        closers += [self.mlflow.end_run] if self.mlflow is not None else []
        failures = []
        for close in closers:
            try:
                close()
            except Exception as e:  # noqa: BLE001  (raised below, after the others closed)
                failures.append(e)
        if failures:
            raise failures[0]

    def _close_tensorboard(self) -> None:
        try:
            self.tb.close()
        except OSError:  # its last flush failed: tensorboardX would retry at exit and print a traceback
            for writer in (self.tb.all_writers or {}).values():
                writer.event_writer._closed = True  # noqa: SLF001
            raise


def _run_id(out: Path, backend: str, create: bool = True) -> str | None:
    """The same W&B / MLflow run for every invocation of one run folder (a resume continues its curves)."""
    path = out / f".{backend}_run_id"
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    import uuid

    run_id = uuid.uuid4().hex[:16]
    path.write_text(run_id)
    return run_id


def read_steps(path: Path) -> list[dict]:
    """The steps a finetune's rank 0 appended (``train.steps.jsonl``); a restarted worker group writes the steps
    after its checkpoint again: the last line of each step wins."""
    if not path.exists():
        return []
    steps: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a killed worker
            continue
        steps[record["step"]] = record
    return [steps[k] for k in sorted(steps)]
