"""What a run evaluates on the seed model and after every cycle, each suite a resumable stage of its own: held-out
QA (always) and TempCompass (when ``eval.tempcompass_questions`` is set)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from vstar_ray.config import Config
from vstar_ray.evaluation.heldout import held_out
from vstar_ray.results import EvalResult, Record
from vstar_ray.run_folder import RunState


@dataclass
class SuiteResult(Record):
    """A benchmark suite's headline figures (TempCompass: accuracy per task)."""

    accuracy: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def line(self, name: str) -> str:
        return f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in self.accuracy.items()) + f", {self.seconds:.1f}s"


def tempcompass_suite(cfg: Config, model: str, folder: Path, pool=None) -> SuiteResult:
    from vstar_ray.evaluation import tempcompass

    start = time.time()
    result = tempcompass.run(cfg, cfg.eval.tempcompass_questions, cfg.eval.tempcompass_videos, model, folder,
                             tasks=tempcompass.parse_tasks(cfg.eval.tempcompass_tasks), limit=cfg.eval.tempcompass_limit,
                             pool=pool)
    return SuiteResult({task: r["accuracy"] for task, r in result["tasks"].items()}, round(time.time() - start, 2))


def evaluate(cfg: Config, state: RunState, name: str, model: str, folder: Path, heldout: str, pool,
             resume: bool) -> EvalResult:
    """``model`` on the held-out manifest and the configured suites, into ``folder``; stages ``<name>/eval``, ..."""
    ev = state.stage(f"{name}/eval", EvalResult, lambda: held_out(cfg, heldout, model, folder, pool=pool,
                                                                   resume=resume, label=f"{name}/eval"))
    if cfg.eval.tempcompass_questions:
        tc = state.stage(f"{name}/tempcompass", SuiteResult,
                         lambda: tempcompass_suite(cfg, model, folder / "tempcompass", pool))
        ev = dataclasses.replace(ev, tempcompass=tc.accuracy, seconds=ev.seconds + tc.seconds)
    return ev
