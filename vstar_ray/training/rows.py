"""Which rows of a generation pass a cycle trains on, and the answer and prompt each trains on: the one
owner of that rule, called by ``train.json`` (``run.write_train_json``), by the trainer's dataset and by
the counts in the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import ray

from vstar_ray.config import Config
from vstar_ray.data.manifest import video_root_for
from vstar_ray.generation.pipeline import read_manifest
from vstar_ray.generation.stages import VIDEO_COLUMNS, decode_batch


def trained_sources(final_cycle: bool, keep_rationalized: str) -> set[str]:
    """Which kept answers a cycle trains on: rationalized ones too, except in the final cycle if configured;
    template label answers (``train_on: labels``) always."""
    if final_cycle and keep_rationalized == "intermediate":
        return {"direct", "label"}
    return {"direct", "rationalized", "label"}


SELECTION_COLUMNS = ("kept_from", "kept_answer", "answer", "error")


def training_pairs(columns: dict, train_on: str, sources: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of a generated pass a cycle trains on, and the answer each trains on.

    ``verified`` and ``labels``: the kept answer of rows kept from ``sources``. ``unfiltered`` (the
    no-filter ablation): every decoded row's direct answer, verified or not."""
    if train_on == "unfiltered":
        answers = np.asarray(columns["answer"], dtype=object)
        keep = np.array([not e and bool(a) for e, a in zip(columns["error"], answers)], dtype=bool)
        return keep, answers
    keep = np.array([k in sources for k in columns["kept_from"]], dtype=bool)
    return keep, np.asarray(columns["kept_answer"], dtype=object)


def hinted_copies(columns: dict, keep: np.ndarray, cfg: Config) -> np.ndarray:
    """Of the rows ``training_pairs`` keeps, those whose rationalized answer is trained a second time under
    its hint prompt (``train.hinted_copies``)."""
    if not (cfg.train.hinted_copies and cfg.train_on == "verified"):
        return np.zeros(len(keep), dtype=bool)
    return keep & (np.asarray(columns["kept_from"], dtype=object) == "rationalized")


def training_dataset(cfg: Config, generated_dir: str | Path, manifest: str, final_cycle: bool) -> ray.data.Dataset:
    """The rows a cycle trains on (``training_pairs``) under their question, and ``hinted_copies`` under
    their hint prompt, decoded again for training."""
    from vstar_ray import prompts

    sources = trained_sources(final_cycle, cfg.keep_rationalized)

    def select(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keep, answers = training_pairs(batch, cfg.train_on, sources)
        plain, hinted = keep.nonzero()[0], hinted_copies(batch, keep, cfg).nonzero()[0]
        rows = np.concatenate([plain, hinted])
        out = {c: batch[c][rows] for c in ("id", "video", "start", "end", "question") if c in batch}
        out["kept_answer"] = answers[rows]
        out["prompt"] = np.array(
            [prompts.answer_prompt(batch["question"][i]) for i in plain]
            + [prompts.rationalize_prompt(batch["question"][i], json.loads(batch["labels"][i])) for i in hinted],
            dtype=object)
        return out

    # start/end included: train on the clip that was answered
    ds = read_manifest(cfg, str(generated_dir), ["id", "video", "start", "end", "question", "labels",
                                                 *SELECTION_COLUMNS])
    ds = ds.map_batches(select, num_cpus=cfg.verify.num_cpus)
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs=dict(video_root=video_root_for(manifest, cfg.data.video_root), num_frames=cfg.data.num_frames,
                       size=cfg.data.frame_size, timeout_s=cfg.data.decode_timeout_s,
                       folder_fps=cfg.data.frame_folder_fps),
        batch_size=cfg.data.decode_batch_size,
        num_cpus=cfg.data.decode_num_cpus,
    )
    # every op states its CPUs: the default (1) may exceed what the training workers leave to Ray Data
    ds = ds.filter(lambda row: not row["error"], num_cpus=cfg.verify.num_cpus)
    return ds.select_columns([*VIDEO_COLUMNS, "prompt", "kept_answer"], num_cpus=cfg.verify.num_cpus)


def count_trained(cfg: Config, generated_dir: str | Path, final_cycle: bool) -> int:
    import pyarrow.parquet as pq

    columns = pq.read_table(str(generated_dir), columns=list(SELECTION_COLUMNS)).to_pydict()
    keep, _ = training_pairs(columns, cfg.train_on, trained_sources(final_cycle, cfg.keep_rationalized))
    return int(keep.sum() + hinted_copies(columns, keep, cfg).sum())
