"""The results a run records, typed: what a pass counted (``PassSummary``) and one cycle's entry of
``metrics.json`` (``CycleRecord``). Each is built in one place (``PassSummary.of_pass``, ``CycleRecord.of_stages``)
and read back with ``from_json``; DESIGN.md section 4 describes the JSON they write.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Counts:
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


@dataclass
class PassSummary(Counts):
    accuracy: float = 0.0  # direct answers verified / videos answered (the held-out accuracy of an eval pass)
    busy_seconds: dict = field(default_factory=dict)  # stage -> summed seconds over rows
    nodes: dict = field(default_factory=dict)  # stage -> node ids that ran it
    generator_busy: dict = field(default_factory=dict)  # pipeline.generator_busy
    by_source: dict = field(default_factory=dict)  # manifest source -> Counts (as JSON)
    seconds: float = 0.0
    resumed_rows: int = 0  # rows a killed run of this pass had committed, kept on --resume

    @classmethod
    def of_pass(cls, table: pa.Table, busy_seconds: dict, nodes: dict, generator_busy: dict, seconds: float,
                resumed_rows: int) -> "PassSummary":
        counts = Counts.of_table(table)
        sources = table["source"].to_pylist() if "source" in table.column_names else [""] * table.num_rows
        by_source = {}
        for source in sorted(set(s or "" for s in sources)):
            rows = table.filter(pa.array([(s or "") == source for s in sources]))
            by_source[source] = dataclasses.asdict(Counts.of_table(rows))
        return cls(**dataclasses.asdict(counts),
                   accuracy=round(counts.kept_direct / counts.generated, 4) if counts.generated else 0.0,
                   busy_seconds=busy_seconds, nodes=nodes, generator_busy=generator_busy, by_source=by_source,
                   seconds=round(seconds, 2), resumed_rows=resumed_rows)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "PassSummary":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


@dataclass
class CycleRecord:
    """One cycle of ``metrics.json``: its generation counts, the held-out scores of its checkpoint, timings."""

    cycle: int
    videos: int
    failed_videos: int
    generated: int
    answers: int
    kept_direct: int
    kept_rationalized: int
    rejected: int
    resumed_rows: int
    by_source: dict  # manifest source -> counts, as in PassSummary
    eval_accuracy: float
    eval: dict  # evaluate.score_eval: overall, by_type, by_source with 95% CIs
    trained_answers: dict  # cycles.kept_answer_stats
    seconds: float
    timings: dict  # stage -> seconds (generate, train, eval, generate.<stage>_busy)
    generator_busy: dict
    nodes: dict  # stage -> node ids
    train: dict  # base_model and the finetune's figures
    tempcompass: dict | None = None  # accuracy per task, when the suite is configured

    @property
    def yield_(self) -> float:
        kept = self.kept_direct + self.kept_rationalized
        return kept / self.answers if self.answers else 0.0

    @classmethod
    def of_stages(cls, k: int, gen: PassSummary, trained: dict, ev: dict, base_model: str,
                  trained_answers: dict) -> "CycleRecord":
        """``gen``: the generation pass; ``trained``: the finetune's result; ``ev``: the held-out eval (and
        TempCompass) of the new checkpoint."""
        return cls(
            cycle=k, videos=gen.videos, failed_videos=gen.failed_videos, generated=gen.generated, answers=gen.answers,
            kept_direct=gen.kept_direct, kept_rationalized=gen.kept_rationalized, rejected=gen.rejected,
            resumed_rows=gen.resumed_rows, by_source=gen.by_source, eval_accuracy=ev["accuracy"],
            eval=ev.get("scores", {}), trained_answers=trained_answers,
            seconds=round(gen.seconds + trained["seconds"] + ev["seconds"], 2),
            timings={"generate": gen.seconds, "train": trained["seconds"], "eval": ev["seconds"],
                     **{f"generate.{s}_busy": v for s, v in gen.busy_seconds.items()}},
            generator_busy=gen.generator_busy,
            nodes={**{f"generate.{s}": v for s, v in gen.nodes.items()},
                   **{f"eval.{s}": v for s, v in ev["nodes"].items()}, "train": trained.get("node_ids", [])},
            train={"base_model": base_model, **{key: trained.get(key) for key in TRAIN_FIGURES}},
            tempcompass=ev.get("tempcompass"))

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if data["tempcompass"] is None:
            del data["tempcompass"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "CycleRecord":
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


TRAIN_FIGURES = ("steps", "samples", "loss_first", "loss_last", "samples_per_s", "tokens_per_s", "answers_truncated",
                 "samples_too_long", "resumed_from_epoch", "precision", "activation_checkpointing",
                 "accumulation_steps")
