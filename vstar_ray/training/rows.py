"""Which rows of a generation pass a cycle trains on, under which prompt and with which answer: the one owner of
that rule (``training_rows``). ``train.json`` (``write_train_json``), the trainer's dataset
(``training_dataset``) and the sample count in the metrics all read its output, so ``train.json`` holds exactly
the samples the model is trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import ray

from vstar_ray import prompts
from vstar_ray.config import Config
from vstar_ray.data.decode import VIDEO_COLUMNS, decoded, read_manifest
from vstar_ray.data.manifest import video_root_for
from vstar_ray.io import atomic_write_text

SELECTION_COLUMNS = ("kept_from", "kept_answer", "answer", "error")  # what the rule reads, besides the prompt's
PROMPT_COLUMNS = ("question", "labels")
TRAIN_JSON_COLUMNS = ("id", "video", "start", "end", "source")


def trained_sources(final_cycle: bool, keep_rationalized: str) -> set[str]:
    """Which kept answers a cycle trains on: rationalized ones too, except in the final cycle if configured;
    template label answers (``train_on: labels``) always."""
    if final_cycle and keep_rationalized == "intermediate":
        return {"direct", "label"}
    return {"direct", "rationalized", "label"}


@dataclass(frozen=True)
class TrainingRows:
    """The samples of one finetune, in order: rows of the pass (``index``), each with its answer and whether it
    is trained under its hint prompt (a hinted copy of a kept rationalization, ``train.hinted_copies``)."""

    index: np.ndarray  # row positions in the pass's columns; a hinted copy repeats its row
    answer: np.ndarray  # the answer each sample trains on
    hinted: np.ndarray  # bool: under the rationalization hint prompt, not the plain question

    def __len__(self) -> int:
        return len(self.index)

    style: str = "question"  # train.prompt: the prompt a plain sample trains under

    def prompt(self, columns: dict, k: int) -> str:
        """The prompt sample ``k`` trains under (the human turn of its conversation)."""
        i = int(self.index[k])
        if self.hinted[k]:
            return prompts.rationalize_prompt(columns["question"][i], json.loads(columns["labels"][i]))
        return prompts.prompt_for(columns["question"][i], self.style)


def training_rows(columns: dict, cfg: Config, final_cycle: bool) -> TrainingRows:
    """The rule. ``train_on: verified`` and ``labels``: the kept answer of rows kept from ``trained_sources``,
    plus (``train.hinted_copies``) each kept rationalization a second time under its hint prompt.
    ``unfiltered`` (the no-filter ablation): every decoded row's direct answer, verified or not."""
    kept_from = np.asarray(columns["kept_from"], dtype=object) if "kept_from" in columns else None
    if cfg.train_on == "unfiltered":
        answers = np.asarray(columns["answer"], dtype=object)
        keep = np.array([not e and bool(a) for e, a in zip(columns["error"], answers)], dtype=bool)
        hinted = np.zeros(len(keep), dtype=bool)
    else:
        sources = trained_sources(final_cycle, cfg.keep_rationalized)
        answers = np.asarray(columns["kept_answer"], dtype=object)
        keep = np.array([k in sources for k in kept_from], dtype=bool)
        hinted = keep & (kept_from == "rationalized") if cfg.train.hinted_copies and cfg.train_on == "verified" \
            else np.zeros(len(keep), dtype=bool)
    plain, copies = keep.nonzero()[0], hinted.nonzero()[0]
    index = np.concatenate([plain, copies]).astype(np.int64)
    return TrainingRows(index, answers[index], np.concatenate([np.zeros(len(plain), bool), np.ones(len(copies), bool)]),
                        cfg.train.prompt)


def read_pass(generated: str | Path, columns: tuple[str, ...]) -> dict:
    """The columns of a finished pass that are there (a labels-only pass has no prompts of its own)."""
    names = pq.ParquetDataset(str(generated)).schema.names
    return pq.read_table(str(generated), columns=[c for c in columns if c in names]).to_pydict()


def count_trained(cfg: Config, generated: str | Path, final_cycle: bool) -> int:
    return len(training_rows(read_pass(generated, SELECTION_COLUMNS), cfg, final_cycle))


def _cell(columns: dict, key: str, i: int):
    return columns[key][i] if key in columns else None


def write_train_json(cfg: Config, generated: Path, out: Path, final_cycle: bool) -> int:
    """The samples a cycle trains on as LLaVA conversations (VSTaR-1M format): the human turn is the prompt the
    sample trains under (``train.prompt``: the bare question or the answer prompt, never the hint unless it is a
    hinted copy), the gpt turn its answer."""
    columns = read_pass(generated, TRAIN_JSON_COLUMNS + PROMPT_COLUMNS + SELECTION_COLUMNS)
    rows = training_rows(columns, cfg, final_cycle)
    records = []
    for k in range(len(rows)):
        i = int(rows.index[k])
        record = {
            "id": columns["id"][i] + ("#hinted" if rows.hinted[k] else ""),
            "video": columns["video"][i],
            "conversations": [{"from": "human", "value": "<video>\n" + rows.prompt(columns, k)},
                              {"from": "gpt", "value": rows.answer[k]}],
            "kept_from": _cell(columns, "kept_from", i) or "unfiltered",
            "source": _cell(columns, "source", i) or "",
        }
        if rows.hinted[k]:
            record["hinted"] = True
        for key in ("start", "end"):  # the clip window inside a longer video, when the manifest has one
            value = _cell(columns, key, i)
            if value is not None and value == value:
                record[key] = value
        records.append(record)
    atomic_write_text(out, json.dumps(records, indent=1) + "\n")
    return len(records)


def answer_stats(train_json: Path, examples: int = 3) -> dict:
    """Mean length (words) of the answers a cycle trains on, and the first few, for the report."""
    records = json.loads(train_json.read_text())
    answers = [r["conversations"][1]["value"] for r in records if not r.get("hinted")]
    return {
        "answers": len(answers),
        "mean_words": round(sum(len(a.split()) for a in answers) / len(answers), 1) if answers else 0.0,
        "examples": [{"id": r["id"], "from": r["kept_from"], "answer": r["conversations"][1]["value"]}
                     for r in records[:examples]],
    }


def training_dataset(cfg: Config, generated_dir: str | Path, manifest: str, final_cycle: bool) -> ray.data.Dataset:
    """The samples of ``training_rows`` with their prompts, decoded for training."""

    def select(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = training_rows(batch, cfg, final_cycle)
        out = {c: batch[c][rows.index] for c in ("id", "video", "start", "end") if c in batch}
        out["kept_answer"] = rows.answer
        out["prompt"] = np.array([rows.prompt(batch, k) for k in range(len(rows))], dtype=object)
        return out

    # start/end included: train on the clip that was answered
    ds = read_manifest(cfg, str(generated_dir), ["id", "video", "start", "end", *PROMPT_COLUMNS, *SELECTION_COLUMNS])
    ds = ds.map_batches(select, num_cpus=cfg.verify.num_cpus)
    ds = decoded(cfg, ds, video_root_for(manifest, cfg.data.video_root))
    # every op states its CPUs: the default (1) may exceed what the training workers leave to Ray Data
    ds = ds.filter(lambda row: not row["error"], num_cpus=cfg.verify.num_cpus)
    return ds.select_columns([*VIDEO_COLUMNS, "frames_from", "prompt", "kept_answer"], num_cpus=cfg.verify.num_cpus)
