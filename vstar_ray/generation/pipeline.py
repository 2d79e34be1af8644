"""One generation pass over a manifest, as a Ray Data chain.

    read manifest ─► decode (CPU tasks) ─► answer (generator actors) ─► verify (CPU)
                 ─► rationalize failures (generator actors) ─► verify (CPU) ─► commit (parquet shards)

``mode="eval"`` decodes greedily and skips rationalization; ``mode="raw"`` answers each row's own prompt
(benchmarks). Which stages a pass has is ``stages.STAGES``. The generator actors belong to the run
(``pool.GeneratorPool``): a pass reaches them through light tasks, so passes start no model process of their own.

A pass survives being killed. Every finished batch is committed as its own parquet shard in
``.<out>.partial/`` (temporary name, then rename); when every row is there the folder becomes ``out``.
``resume=True`` keeps the shards a killed pass committed and generates only the rows missing from them
(``resumed_rows`` in the summary). ``watch.execute`` turns a pass in which no row moves into a ``PassStalled``
error naming the stage where rows stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data import TaskPoolStrategy

from vstar_ray import prompts
from vstar_ray.config import Config
from vstar_ray.console import Progress, say
from vstar_ray.data.decode import VIDEO_COLUMNS, decoded, read_manifest
from vstar_ray.data.manifest import video_root_for
from vstar_ray.errors import WorkFailed
from vstar_ray.generation.pool import GeneratorPool, PassGenerators
from vstar_ray.generation.stages import (SHARD_PREFIX, STAGES, commit_batch, counted, finalize_batch, generate_batch,
                                         pass_stages, stage, verify_batch)
from vstar_ray.generation.watch import PassStalled, execute, generator_busy
from vstar_ray.io import TEMPORARY, atomic_dir, replace_dir
from vstar_ray.results import PassSummary, frame_counts
from vstar_ray.verify import load_thresholds
from vstar_ray.verify.plugins import resolve as plugin_specs

IN_FLIGHT_PER_ACTOR = 2  # generate_batch tasks waiting per generator actor and per generation stage
RATIONALIZE_ROWS_PER_CALL = 8  # a rationalize task takes this many generation batches of rows
CLIENT_CPUS = 0.01  # a generate_batch task only waits on the actors

__all__ = ["PassStalled", "build_dataset", "run_pass", "label_pass", "answer_prompts", "summarize"]


def _asked(cfg: Config, ds: ray.data.Dataset, generators: PassGenerators, mode: str, actors: int) -> ray.data.Dataset:
    """Rows go to the run's generator actors (``generators``) from light tasks that wait on them; a few
    batches per actor are in flight, so no actor waits for work. A rationalize task takes several
    generation batches' worth of rows: only their failures are generated for."""
    style = prompts.eval_style(cfg.eval) if mode == "eval" else "answer_prompt"  # answers are generated step-by-step
    return ds.map_batches(
        generate_batch,
        fn_kwargs=dict(generators=generators, mode=mode, style=style),
        batch_size=cfg.generate.batch_size * (RATIONALIZE_ROWS_PER_CALL if mode == "rationalize" else 1),
        compute=TaskPoolStrategy(size=IN_FLIGHT_PER_ACTOR * actors),
        num_cpus=CLIENT_CPUS,
        max_retries=3,
    )


def _verified(cfg: Config, ds: ray.data.Dataset, generators: PassGenerators, name: str, thresholds: dict):
    prefix, column = ("direct", "answer") if name == "verify" else ("rationalized", "rationalized_answer")
    return ds.map_batches(counted(verify_batch, name, generators),
                          fn_kwargs=dict(prefix=prefix, answer_column=column, seconds_column=stage(name).seconds,
                                         thresholds=thresholds, embedding_model=cfg.verify.embedding_model,
                                         plugins=plugin_specs(cfg.verify.plugins),
                                         plugin_errors=cfg.verify.plugin_errors),
                          num_cpus=cfg.verify.num_cpus)


def build_dataset(cfg: Config, rows: str, video_root: str, generators: PassGenerators, mode: str, actors: int,
                  folder: str) -> ray.data.Dataset:
    """The pass as one readable chain of ``map_batches`` calls (the stages of ``pass_stages``); each shows where
    it runs. Its output is one row per committed shard (``commit_batch``): the rows themselves are in ``folder``."""
    names = [s.name for s in pass_stages(mode, cfg.rationalize)]
    thresholds = load_thresholds(cfg.verify.thresholds)
    ds = decoded(cfg, read_manifest(cfg, rows), video_root, lambda fn: counted(fn, "decode", generators))  # CPU
    ds = _asked(cfg, ds, generators, "answer" if mode == "train" else mode, actors)        # generator actors
    if "verify" in names:
        ds = _verified(cfg, ds, generators, "verify", thresholds)                          # CPU
    if "rationalize" in names:
        ds = _asked(cfg, ds, generators, "rationalize", actors)                            # generator actors
        ds = _verified(cfg, ds, generators, "verify_rationalized", thresholds)             # CPU
    if "verify" in names:
        ds = ds.map_batches(finalize_batch, fn_kwargs=dict(rationalized="rationalize" in names),
                            num_cpus=cfg.verify.num_cpus)
    else:
        ds = ds.drop_columns(list(VIDEO_COLUMNS), num_cpus=cfg.verify.num_cpus)
    return ds.map_batches(counted(commit_batch, "commit", generators), fn_kwargs=dict(folder=folder),
                          num_cpus=cfg.verify.num_cpus)                                   # parquet shards


def _pool(cfg: Config, pool: GeneratorPool | None):
    """The run's pool, or one for this pass alone (``vstar generate``/``eval``), closed after it."""
    return nullcontext(pool) if pool is not None else GeneratorPool.start(cfg, training=False)


def read_shard(path: Path) -> pa.Table:
    """A committed shard read in full, its pages' checksums verified (``stages.commit_batch`` writes them)."""
    return pq.read_table(path, page_checksum_verification=True)


def committed_ids(folder: Path, label: str = "") -> tuple[set[str], int]:
    """Ids in the shards a pass committed, each shard read in full, and how many shards were dropped: an unreadable
    shard (a crash while the disk wrote it, a truncated or damaged file) is named on the console and in the log,
    deleted, and its rows are generated again."""
    ids, dropped = _committed(folder, label)
    return set(ids), dropped


def _committed(folder: Path, label: str) -> tuple[list[str], int]:
    """``committed_ids`` with every id as often as it was committed."""
    ids: list[str] = []
    dropped = 0
    for unfinished in folder.glob(f".{SHARD_PREFIX}*{TEMPORARY}*"):  # a shard whose writer was killed
        unfinished.unlink()
    for shard in sorted(folder.glob(f"{SHARD_PREFIX}*.parquet")):
        try:
            ids += read_shard(shard)["id"].to_pylist()
        except Exception as e:  # pyarrow raises OSError, ArrowInvalid, ... for a damaged file
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            say(f"{label or folder.name}: committed shard {shard} is unreadable ({reason}); its rows are "
                f"generated again")
            shard.unlink()
            dropped += 1
    return ids, dropped


def run_pass(cfg: Config, manifest: str, model_path: str, out_dir: str | Path, mode: str,
             pool: GeneratorPool | None = None, resume: bool = False, video_root: str | None = None,
             label: str = "") -> PassSummary:
    """Run one pass and write ``out_dir`` (parquet shards); returns its counts, timings and nodes.

    ``mode``: train (answer, verify, rationalize failures), eval (greedy answers, verified) or raw (each row's
    own ``prompt``, greedy, not verified). ``resume`` keeps the rows a killed run of this pass committed."""
    start = time.time()
    out_dir = Path(out_dir)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    todo = out_dir.with_name(f".{out_dir.name}.todo.parquet")
    progress = out_dir.with_name(f".{out_dir.name}.progress.json")  # rows per stage, every few seconds
    if not resume:
        shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, exist_ok=True)
    done, dropped = committed_ids(partial, label)
    table = pq.read_table(manifest)
    expected = table["id"].to_pylist()
    remaining = table.filter(pc.invert(pc.is_in(table["id"], pa.array(sorted(done), pa.string())))) if done else table
    if remaining.num_rows:
        pq.write_table(remaining, todo)
        with _pool(cfg, pool) as generators_pool:
            generators = generators_pool.for_pass(model_path, mode)
            ds = build_dataset(cfg, str(todo), video_root or video_root_for(manifest, cfg.data.video_root),
                               generators, mode, max(1, len(generators_pool.actors)), str(partial))
            bar = Progress(label or out_dir.name, "videos")
            try:
                execute(ds, lambda: generators_pool.report(generators),
                        [s.name for s in pass_stages(mode, cfg.rationalize)], remaining.num_rows,
                        cfg.generate.stall_timeout_s, progress, lambda n, total: bar.update(n, total))
            finally:
                bar.close()
                generators_pool.end_pass(generators)
        todo.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
    # every shard verifies before the folder is promoted (one damaged on the way is dropped, and --resume makes it)
    ids, _ = _committed(partial, label)
    missing, extra = set(expected) - set(ids), len(ids) - len(set(ids))
    if missing or extra or len(ids) != len(expected):
        raise WorkFailed(f"pass into {out_dir} ended with {len(missing)} rows missing (e.g. {sorted(missing)[:3]}) "
                         f"and {extra} committed twice; its shards stay in {partial} for --resume")
    replace_dir(partial, out_dir)
    return summarize(out_dir, time.time() - start, len(done), counted=mode != "raw", dropped_shards=dropped)


def answer_prompts(cfg: Config, rows: str, video_root: str, model_path: str, out_dir: str | Path,
                   pool: GeneratorPool | None = None) -> float:
    """Greedy answers to rows that carry their own ``prompt`` (benchmarks); writes ``out_dir``. Same decode
    stage and generator actors as a generation pass. Returns the wall seconds."""
    return run_pass(cfg, rows, model_path, out_dir, "raw", pool=pool, video_root=video_root).seconds


def label_pass(manifest: str, out_dir: str | Path) -> PassSummary:
    """The ``train_on: labels`` baseline's "pass": no model; every manifest row is kept with a template answer
    that states its label (``The answer is <label>.``). Same columns as a generation pass where they apply."""
    start = time.time()
    table = pq.read_table(manifest)
    answers = [f"The answer is {prompts.render_label(json.loads(labels))}." for labels in table["labels"].to_pylist()]
    n = table.num_rows
    table = (table.append_column("error", pa.array([""] * n)).append_column("answer", pa.array([""] * n))
             .append_column("kept", pa.array([True] * n)).append_column("kept_from", pa.array(["label"] * n))
             .append_column("kept_answer", pa.array(answers, pa.string())))
    with atomic_dir(out_dir) as tmp:
        pq.write_table(table, tmp / "part-0.parquet")
    return summarize(out_dir, time.time() - start)


def summarize(out_dir: str | Path, wall_s: float = 0.0, resumed_rows: int = 0, counted: bool = True,
              dropped_shards: int = 0) -> PassSummary:
    """A finished pass's counts, overall and per source, stage times and nodes (``counted=False``: a raw pass,
    which keeps nothing: its videos, failures and times only)."""
    table = pq.read_table(out_dir)
    busy = {s.seconds.removesuffix("_s"): round(float(pc.sum(table[s.seconds]).as_py() or 0), 2)
            for s in STAGES if s.seconds in table.column_names}
    nodes = {s.node.removesuffix("_node"): sorted({v for v in table[s.node].to_pylist() if v})
             for s in STAGES if s.node and s.node in table.column_names}
    calls = [r for s in STAGES if s.call and s.call in table.column_names for r in table[s.call].to_pylist()]
    if not counted:
        failed = int(pc.sum(pc.not_equal(table["error"], "")).as_py() or 0)
        return PassSummary(videos=table.num_rows, failed_videos=failed, busy_seconds=busy, nodes=nodes,
                           generator_busy=generator_busy(calls), seconds=round(wall_s, 2), resumed_rows=resumed_rows,
                           dropped_shards=dropped_shards, frames=frame_counts(table))
    return PassSummary.of_pass(table, busy, nodes, generator_busy(calls), wall_s, resumed_rows, dropped_shards)
