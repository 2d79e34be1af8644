"""One generation pass over a manifest, as a Ray Data chain.

    read manifest ─► decode (CPU tasks) ─► answer (actor pool) ─► verify (CPU)
                 ─► rationalize failures (actor pool) ─► verify (CPU) ─► parquet

``mode="eval"`` decodes greedily and skips rationalization. The output folder is written
to a temporary name and renamed when complete, so a half-written pass is never mistaken
for a finished one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data import ActorPoolStrategy

from vstar_ray.config import Config
from vstar_ray.generate import Generator
from vstar_ray.io import replace_dir
from vstar_ray.manifest import video_root_for
from vstar_ray.stages import VIDEO_COLUMNS, decode_batch, finalize_batch, verify_batch
from vstar_ray.verify import load_thresholds

STAGE_SECONDS = ("decode_s", "answer_s", "verify_direct_s", "rationalize_s", "verify_rationalized_s")
STAGE_NODES = ("decode_node", "answer_node", "rationalize_node")
GENERATOR_CALLS = ("answer_call", "rationalize_call")
ROWS_PER_DECODE_TASK_BATCHES = 4  # decode batches per input block (one decode task each)


def generator_busy(calls: list[str]) -> dict:
    """How much of each generator actor's warm wall time went into ``generate()``.

    ``calls`` are the per-row ``*_call`` records ``[actor, start, end, generate_s]`` (one per batch,
    repeated on its rows). An actor's span runs from the start of its first batch to the end of its
    last (model loading is before the span), so ``fraction`` is the busy share of the warm pipeline."""
    per_actor: dict[str, set] = {}
    for record in calls:
        if record:
            actor, start, end, generate_s = json.loads(record)
            per_actor.setdefault(actor, set()).add((start, end, generate_s))
    busy = sum(g for batches in per_actor.values() for _, _, g in batches)
    in_call = sum(e - s for batches in per_actor.values() for s, e, _ in batches)
    span = sum(max(e for _, e, _ in b) - min(s for s, _, _ in b) for b in per_actor.values())
    return {
        "actors": len(per_actor),
        "calls": sum(len(b) for b in per_actor.values()),
        "generate_s": round(busy, 2),
        "span_s": round(span, 2),
        "fraction": round(busy / span, 4) if span > 0 else None,
        "in_call_fraction": round(in_call / span, 4) if span > 0 else None,
    }


def _generator_args(cfg: Config, model_path: str) -> tuple[dict, dict]:
    gen = cfg.generate
    generator_args = dict(
        model_path=model_path,
        max_new_tokens=gen.max_new_tokens,
        do_sample=gen.do_sample,
        temperature=gen.temperature,
        dtype=cfg.model.dtype,
        trust_remote_code=cfg.model.trust_remote_code,
        seed=cfg.seed,
        engine=gen.engine,
    )
    actors = dict(
        compute=ActorPoolStrategy(min_size=gen.min_actors, max_size=gen.max_actors),
        num_gpus=gen.num_gpus,
        num_cpus=gen.num_cpus,
        batch_size=gen.batch_size,
        scheduling_strategy="SPREAD",  # generator actors across nodes rather than packed onto the first
    )
    return generator_args, actors


def _decoded(cfg: Config, ds: ray.data.Dataset, video_root: str) -> ray.data.Dataset:
    data = cfg.data
    return ds.map_batches(
        decode_batch,
        fn_kwargs=dict(video_root=video_root, num_frames=data.num_frames, size=data.frame_size,
                       timeout_s=data.decode_timeout_s, folder_fps=data.frame_folder_fps),
        batch_size=data.decode_batch_size,
        num_cpus=data.decode_num_cpus,
        scheduling_strategy="SPREAD",  # decode across nodes
        # Ray Data fuses a task into the next actor op when their remote args match (the scheduling
        # strategy is inherited); a retry count only tasks have keeps decoding out of the generator
        # actor (DESIGN.md 5: a hanging decoder must never stall generation), and retries a decode
        # task whose worker crashed.
        max_retries=3,
    )


def build_dataset(cfg: Config, manifest: str, model_path: str, mode: str) -> ray.data.Dataset:
    """The pass as one readable chain of ``map_batches`` calls; each shows where it runs."""
    rationalize = mode == "train" and cfg.rationalize
    thresholds = load_thresholds(cfg.verify.thresholds)
    generator_args, actors = _generator_args(cfg, model_path)
    ds = _decoded(cfg, read_manifest(cfg, manifest), video_root_for(manifest, cfg.data.video_root))
    ds = ds.map_batches(Generator, fn_constructor_kwargs={**generator_args, "mode": "eval" if mode == "eval" else "answer"},
                        **actors)
    ds = ds.map_batches(verify_batch, fn_kwargs=dict(prefix="direct", answer_column="answer", thresholds=thresholds,
                                                      embedding_model=cfg.verify.embedding_model),
                        num_cpus=cfg.verify.num_cpus)
    if rationalize:
        ds = ds.map_batches(Generator, fn_constructor_kwargs={**generator_args, "mode": "rationalize"}, **actors)
        ds = ds.map_batches(verify_batch, fn_kwargs=dict(prefix="rationalized", answer_column="rationalized_answer",
                                                         thresholds=thresholds,
                                                         embedding_model=cfg.verify.embedding_model),
                            num_cpus=cfg.verify.num_cpus)
    return ds.map_batches(finalize_batch, fn_kwargs=dict(rationalized=rationalize), num_cpus=cfg.verify.num_cpus)


def answer_prompts(cfg: Config, rows: str, video_root: str, model_path: str, out_dir: str | Path) -> float:
    """Greedy answers to rows that carry their own ``prompt`` (benchmarks); writes ``out_dir`` atomically.
    Same decode stage and generator pool as a generation pass. Returns the wall seconds."""
    start = time.time()
    generator_args, actors = _generator_args(cfg, model_path)
    ds = _decoded(cfg, read_manifest(cfg, rows), video_root)
    ds = ds.map_batches(Generator, fn_constructor_kwargs={**generator_args, "mode": "raw"}, **actors)
    _write(cfg, ds.drop_columns(list(VIDEO_COLUMNS), num_cpus=cfg.verify.num_cpus), out_dir)
    return time.time() - start


def read_manifest(cfg: Config, path: str) -> ray.data.Dataset:
    """Parquet rows as a Dataset. Reads and writes are light: they ask for ``verify.num_cpus``, not
    Ray Data's default whole CPU, which no node may have free while the generator actors are up.
    Ray 2.60's default read path lists files in a task that always asks for 1 CPU and ignores
    ``num_cpus``; on a cluster of 1-CPU nodes with SPREAD generator actors that task never ran
    (tests/test_job_submit.py), so the read uses the previous datasource, which honours it."""
    import pyarrow.dataset as pds

    # One block per few decode batches: a manifest file is otherwise one block, decoded by one task
    # (no parallel decoding) into output blocks that grow with the dataset (the memory benchmark's
    # object-store peak grew 3.4x from 1,000 to 4,000 videos before this).
    num_rows = pds.dataset(path, format="parquet").count_rows()
    blocks = max(1, math.ceil(num_rows / (ROWS_PER_DECODE_TASK_BATCHES * cfg.data.decode_batch_size)))
    ctx = ray.data.DataContext.get_current()
    previous, ctx.use_datasource_v2 = ctx.use_datasource_v2, False
    try:
        return ray.data.read_parquet(path, num_cpus=cfg.verify.num_cpus, override_num_blocks=blocks)
    finally:
        ctx.use_datasource_v2 = previous


def _write(cfg: Config, ds: ray.data.Dataset, out_dir: str | Path) -> None:
    """Executes ``ds`` into a temporary folder renamed to ``out_dir`` when complete: a half-written pass is
    never mistaken for a finished one."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.write_parquet(str(tmp), ray_remote_args={"num_cpus": cfg.verify.num_cpus})
    replace_dir(tmp, out_dir)


def run_pass(cfg: Config, manifest: str, model_path: str, out_dir: str | Path, mode: str) -> dict:
    """Run one pass and write ``out_dir`` (parquet shards); returns its counts, timings and nodes."""
    start = time.time()
    _write(cfg, build_dataset(cfg, manifest, model_path, mode), out_dir)
    return summarize(out_dir, wall_s=time.time() - start)


def label_pass(manifest: str, out_dir: str | Path) -> dict:
    """The ``train_on: labels`` baseline's "pass": no model; every manifest row is kept with a template answer
    that states its label (``The answer is <label>.``). Same columns as a generation pass where they apply."""
    from vstar_ray import questions

    start = time.time()
    table = pq.read_table(manifest)
    answers = [f"The answer is {questions.render_label(json.loads(labels))}." for labels in table["labels"].to_pylist()]
    n = table.num_rows
    table = (table.append_column("error", pa.array([""] * n)).append_column("answer", pa.array([""] * n))
             .append_column("kept", pa.array([True] * n)).append_column("kept_from", pa.array(["label"] * n))
             .append_column("kept_answer", pa.array(answers, pa.string())))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pq.write_table(table, tmp / "part-0.parquet")
    replace_dir(tmp, out_dir)
    return {"videos": n, "failed_videos": 0, "generated": 0, "answers": 0, "kept_direct": 0, "kept_rationalized": 0,
            "kept_label": n, "rejected": 0, "accuracy": 0.0, "busy_seconds": {}, "nodes": {}, "generator_busy": {},
            "seconds": round(time.time() - start, 2)}


def summarize(out_dir: str | Path, wall_s: float | None = None) -> dict:
    table = pq.read_table(out_dir)
    error = pc.not_equal(table["error"], "")
    failed = int(pc.sum(error).as_py() or 0)
    n = table.num_rows
    generated = n - failed
    # every answer generated: one direct answer per decoded video, one more per rationalization
    rationalized = (int(pc.sum(pc.not_equal(table["rationalize_prompt"], "")).as_py() or 0)
                    if "rationalize_prompt" in table.column_names else 0)
    kept = table["kept"]
    kept_from = table["kept_from"]
    kept_direct = int(pc.sum(pc.equal(kept_from, "direct")).as_py() or 0)
    kept_rationalized = int(pc.sum(pc.equal(kept_from, "rationalized")).as_py() or 0)
    busy = {c.removesuffix("_s"): round(float(pc.sum(table[c]).as_py() or 0), 2)
            for c in STAGE_SECONDS if c in table.column_names}
    nodes = {c.removesuffix("_node"): sorted({v for v in table[c].to_pylist() if v})
             for c in STAGE_NODES if c in table.column_names}
    summary = {
        "videos": n,
        "failed_videos": failed,
        "generated": generated,
        "answers": generated + rationalized,
        "kept_direct": kept_direct,
        "kept_rationalized": kept_rationalized,
        "rejected": generated - int(pc.sum(kept).as_py() or 0),
        "accuracy": round(kept_direct / generated, 4) if generated else 0.0,
        "busy_seconds": busy,
        "nodes": nodes,
        "generator_busy": {c.removesuffix("_call"): generator_busy(table[c].to_pylist())
                           for c in GENERATOR_CALLS if c in table.column_names},
    }
    if wall_s is not None:
        summary["seconds"] = round(wall_s, 2)
    return summary
