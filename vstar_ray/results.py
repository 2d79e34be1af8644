"""The results a run records, typed: what a pass counted (``PassSummary``), a finetune (``TrainResult``), an
evaluation of one model (``EvalResult``), one cycle (``CycleRecord``) and the whole run (``RunRecord``,
``metrics.json``). Each is built in one place and written and read only through ``to_json``/``from_json``;
``report``, ``tracking`` and ``evaluation.ablations`` read these types, never keys of dicts.
docs/architecture.md lists the JSON they write.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from vstar_ray.verify.plugins import plugin_error_kind

R = TypeVar("R", bound="Record")


class Record:
    """``to_json`` writes every field; ``from_json`` reads the fields it knows (records of older versions too)."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[R], data: dict) -> R:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Counts(Record):
    """Generation counts over a set of rows (a pass, or the rows of one source in it)."""

    videos: int = 0
    failed_videos: int = 0  # could not be decoded (or verified): their reason is in the row's error
    generated: int = 0  # videos answered
    answers: int = 0  # answers generated: a direct answer per video, plus a rationalization per failed one
    kept_direct: int = 0
    kept_rationalized: int = 0
    kept_label: int = 0  # template answers stating the label (train_on: labels)
    rejected: int = 0  # answered, but nothing kept

    @property
    def kept(self) -> int:
        return self.kept_direct + self.kept_rationalized

    @property
    def yield_(self) -> float:
        """Kept answers / answers generated: the share of the generation work that ends up trained on."""
        return self.kept / self.answers if self.answers else 0.0

    @classmethod
    def of_table(cls, table: pa.Table) -> "Counts":
        def total(mask) -> int:
            return int(pc.sum(mask).as_py() or 0)

        failed = total(pc.not_equal(table["error"], ""))
        generated = table.num_rows - failed
        rationalized = (total(pc.not_equal(table["rationalize_prompt"], ""))
                        if "rationalize_prompt" in table.column_names else 0)
        label = total(pc.equal(table["kept_from"], "label"))
        return cls(videos=table.num_rows, failed_videos=failed, generated=generated - label,
                   answers=generated - label + rationalized,
                   kept_direct=total(pc.equal(table["kept_from"], "direct")),
                   kept_rationalized=total(pc.equal(table["kept_from"], "rationalized")), kept_label=label,
                   rejected=generated - total(table["kept"]))

    def counts(self) -> "Counts":
        return Counts(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Counts)})


def frame_counts(table: pa.Table) -> dict:
    """Where a pass's frames came from (``data.decode.SOURCE_COLUMNS``): ``decoded`` from the video files,
    ``cache_hits`` from ``data.frame_cache``, ``cache_damaged`` entries that did not verify and were decoded again."""
    sources = table["frames_from"].to_pylist() if "frames_from" in table.column_names else []
    damaged = int(pc.sum(table["cache_damaged"]).as_py() or 0) if "cache_damaged" in table.column_names else 0
    return {"decoded": sources.count("file"), "cache_hits": sources.count("cache"), "cache_damaged": damaged}


@dataclass
class PassSummary(Counts):
    """A finished generation or evaluation pass (``generation.pipeline.summarize``)."""

    accuracy: float = 0.0  # direct answers verified / videos answered (the held-out accuracy of an eval pass)
    busy_seconds: dict = field(default_factory=dict)  # stage -> summed seconds over rows
    nodes: dict = field(default_factory=dict)  # stage -> node ids that ran it
    generator_busy: dict = field(default_factory=dict)  # generation.pipeline.generator_busy
    by_source: dict = field(default_factory=dict)  # manifest source -> Counts (as JSON)
    seconds: float = 0.0
    resumed_rows: int = 0  # rows a killed run of this pass had committed, kept on --resume
    dropped_shards: int = 0  # committed shards found unreadable (checksum, truncation) on resume: rows made again
    frames: dict = field(default_factory=dict)  # frame_counts(): clips decoded from files, read from the frame cache
    # "verify_colour (my_verifiers.py:7): ZeroDivisionError" -> rows a verifier plug-in raised on (counted failed)
    plugin_errors: dict = field(default_factory=dict)

    @classmethod
    def of_pass(cls, table: pa.Table, busy_seconds: dict, nodes: dict, generator_busy: dict, seconds: float,
                resumed_rows: int, dropped_shards: int = 0) -> "PassSummary":
        counts = Counts.of_table(table)
        sources = table["source"].to_pylist() if "source" in table.column_names else [""] * table.num_rows
        by_source = {}
        for source in sorted(set(s or "" for s in sources)):
            rows = table.filter(pa.array([(s or "") == source for s in sources]))
            by_source[source] = Counts.of_table(rows).to_json()
        kinds = [plugin_error_kind(e) for e in table["error"].to_pylist() if e]
        return cls(**dataclasses.asdict(counts),
                   accuracy=round(counts.kept_direct / counts.generated, 4) if counts.generated else 0.0,
                   busy_seconds=busy_seconds, nodes=nodes, generator_busy=generator_busy, by_source=by_source,
                   seconds=round(seconds, 2), resumed_rows=resumed_rows, dropped_shards=dropped_shards,
                   plugin_errors=dict(collections.Counter(k for k in kinds if k).most_common()),
                   frames=frame_counts(table))

    def line(self, name: str) -> str:
        return (f"{name}: {self.videos} videos, kept {self.kept_direct} direct + {self.kept_rationalized} rationalized "
                f"of {self.answers} answers (yield {self.yield_:.2f}), {self.failed_videos} failed"
                + (f", {self.resumed_rows} resumed" if self.resumed_rows else "")
                + (f", {self.dropped_shards} unreadable shards made again" if self.dropped_shards else "")
                + f", {self.seconds:.1f}s"
                + "".join(f"\n  {n} rows failed in plug-in {kind}" for kind, n in self.plugin_errors.items()))


@dataclass
class TrainJson(Record):
    """A cycle's ``train.json``: the samples it trains on (``training.rows.write_train_json``)."""

    records: int = 0
    seconds: float = 0.0

    def line(self, name: str) -> str:
        return f"{name}: {self.records} samples, {self.seconds:.1f}s"


TRAIN_FIGURES = ("steps", "samples", "loss_first", "loss_last", "samples_per_s", "tokens_per_s", "answers_truncated",
                 "samples_too_long", "resumed_from_epoch", "precision", "activation_checkpointing",
                 "accumulation_steps", "decoded", "cache_hits")


@dataclass
class TrainResult(Record):
    """A finetune: what the workers reported with their last checkpoint (``training.loop``)."""

    base_model: str = ""
    steps: int | None = None
    samples: int | None = None  # training samples (hinted copies included)
    loss_first: float | None = None
    loss_last: float | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    answers_truncated: int | None = None
    samples_too_long: int | None = None
    resumed_from_epoch: int | None = None
    precision: str | None = None
    activation_checkpointing: bool | None = None
    accumulation_steps: int | None = None
    decoded: int | None = None  # clips decoded from video files over every epoch, all workers
    cache_hits: int | None = None  # clips read from the frame cache, likewise
    epoch: int | None = None
    node_ids: list = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> dict:
        """``base_model`` and the figures of ``TRAIN_FIGURES`` (a cycle's ``train`` entry)."""
        return {"base_model": self.base_model, **{k: getattr(self, k) for k in TRAIN_FIGURES}}

    def line(self, name: str) -> str:
        return (f"{name}: {self.steps} steps on {self.samples} samples, loss {self.loss_first or 0:.3f} -> "
                f"{self.loss_last or 0:.3f}, {self.seconds:.1f}s")


@dataclass
class EvalResult(Record):
    """The evaluation of one model: held-out QA scored by the verifier (and the suites configured in ``eval``)."""

    accuracy: float = 0.0  # held-out videos whose greedy answer verifies / videos answered
    videos: int = 0  # held-out videos
    failed_videos: int = 0
    scores: dict = field(default_factory=dict)  # evaluation.heldout.score_eval: overall, by_type, by_source (95% CIs)
    # eval.protocol paper: the judge's Accuracy / Score (and the verifier's accuracy) overall, by source, by type
    judged: dict | None = None
    nodes: dict = field(default_factory=dict)  # stage -> node ids of the eval pass
    benchmarks: dict = field(default_factory=dict)  # label -> evaluation.benchmark.BenchmarkResult (as JSON)
    frames: dict = field(default_factory=dict)  # PassSummary.frames of the held-out pass
    seconds: float = 0.0

    def by_type(self) -> dict[str, dict]:
        return self.scores.get("by_type", {})

    def by_source(self) -> dict[str, dict]:
        return self.scores.get("by_source", {})

    def line(self, name: str) -> str:
        return f"{name}: held-out accuracy {self.accuracy:.3f} on {self.videos} videos, {self.seconds:.1f}s"


@dataclass
class CycleRecord(Counts):
    """One cycle of ``metrics.json``: its generation counts, its finetune, the held-out scores of its checkpoint."""

    cycle: int = 0
    resumed_rows: int = 0
    dropped_shards: int = 0  # PassSummary.dropped_shards of the cycle's generation
    by_source: dict = field(default_factory=dict)  # manifest source -> Counts, as in PassSummary
    eval_accuracy: float = 0.0
    eval: dict = field(default_factory=dict)  # EvalResult.scores
    trained_answers: dict = field(default_factory=dict)  # training.rows.answer_stats
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)  # stage -> seconds (generate, train, eval, generate.<stage>_busy)
    generator_busy: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)  # stage -> node ids
    train: dict = field(default_factory=dict)  # TrainResult.figures()
    judged: dict | None = None  # EvalResult.judged (eval.protocol: paper)
    benchmarks: dict = field(default_factory=dict)  # EvalResult.benchmarks
    plugin_errors: dict = field(default_factory=dict)  # PassSummary.plugin_errors of the cycle's generation
    frames: dict = field(default_factory=dict)  # {"generate": PassSummary.frames, "eval": EvalResult.frames}

    @classmethod
    def of_stages(cls, k: int, gen: PassSummary, trained: TrainResult, ev: EvalResult,
                  trained_answers: dict) -> "CycleRecord":
        return cls(
            **gen.counts().to_json(), cycle=k, resumed_rows=gen.resumed_rows, dropped_shards=gen.dropped_shards,
            by_source=gen.by_source,
            eval_accuracy=ev.accuracy, eval=ev.scores, trained_answers=trained_answers,
            seconds=round(gen.seconds + trained.seconds + ev.seconds, 2),
            timings={"generate": gen.seconds, "train": trained.seconds, "eval": ev.seconds,
                     **{f"generate.{s}_busy": v for s, v in gen.busy_seconds.items()}},
            generator_busy=gen.generator_busy,
            nodes={**{f"generate.{s}": v for s, v in gen.nodes.items()},
                   **{f"eval.{s}": v for s, v in ev.nodes.items()}, "train": trained.node_ids},
            train=trained.figures(), judged=ev.judged, benchmarks=ev.benchmarks, plugin_errors=gen.plugin_errors,
            frames={"generate": gen.frames, "eval": ev.frames})

    def eval_result(self) -> EvalResult:
        return EvalResult(accuracy=self.eval_accuracy, scores=self.eval, judged=self.judged, benchmarks=self.benchmarks,
                          frames=self.frames.get("eval", {}))

    def line(self) -> str:
        return (f"cycle {self.cycle}: kept {self.kept_direct} direct + {self.kept_rationalized} rationalized of "
                f"{self.answers} answers (yield {self.yield_:.2f}), held-out accuracy {self.eval_accuracy:.3f}")


@dataclass
class RunRecord(Record):
    """``metrics.json``: the seed model's evaluation and every finished cycle."""

    baseline: EvalResult = field(default_factory=EvalResult)
    cycles: list[CycleRecord] = field(default_factory=list)

    def to_json(self) -> dict:
        base = self.baseline
        baseline: dict[str, Any] = {"eval_accuracy": base.accuracy, "eval": base.scores, "videos": base.videos,
                                    "failed_videos": base.failed_videos, "nodes": base.nodes, "seconds": base.seconds,
                                    "judged": base.judged, "benchmarks": base.benchmarks, "frames": base.frames}
        return {"baseline": baseline, "cycles": [c.to_json() for c in self.cycles]}

    @classmethod
    def from_json(cls, data: dict) -> "RunRecord":
        b = data["baseline"]
        baseline = EvalResult(accuracy=b["eval_accuracy"], videos=b.get("videos", 0),
                              failed_videos=b.get("failed_videos", 0), scores=b.get("eval", {}),
                              nodes=b.get("nodes", {}), judged=b.get("judged"), benchmarks=b.get("benchmarks", {}),
                              seconds=b.get("seconds", 0.0), frames=b.get("frames", {}))
        return cls(baseline, [CycleRecord.from_json(c) for c in data["cycles"]])

    def accuracies(self) -> list[float]:
        """Held-out accuracy of the seed model, then after each cycle."""
        return [self.baseline.accuracy] + [c.eval_accuracy for c in self.cycles]

    def evaluations(self) -> list[tuple[str, EvalResult]]:
        """``("seed", baseline)``, then ``("1", cycle 1's evaluation)``, ...: one row per model of a table."""
        return [("seed", self.baseline)] + [(str(c.cycle), c.eval_result()) for c in self.cycles]

    def write(self, path: Path) -> None:
        from vstar_ray.io import atomic_write_json

        atomic_write_json(path, self.to_json())

    @classmethod
    def read(cls, path: Path) -> "RunRecord":
        from vstar_ray.io import read_json

        return cls.from_json(read_json(path, "metrics"))
