"""One generation pass over a manifest, as a Ray Data chain.

    read manifest ─► decode (CPU tasks) ─► answer (generator actors) ─► verify (CPU)
                 ─► rationalize failures (generator actors) ─► verify (CPU) ─► commit (parquet shards)

``mode="eval"`` decodes greedily and skips rationalization; ``mode="raw"`` answers each row's own prompt
(benchmarks). The generator actors belong to the run (``pool.GeneratorPool``): a pass reaches them
through light tasks, so passes start no model process of their own.

A pass survives being killed. Every finished batch is committed as its own parquet shard in
``.<out>.partial/`` (temporary name, then rename); when every row is there the folder becomes ``out``.
``resume=True`` keeps the shards a killed pass committed and generates only the rows missing from them
(``resumed_rows`` in the summary). A watchdog turns a pass in which no row moved through any stage for
``generate.stall_timeout_s`` into a ``PassStalled`` error naming the stage where rows stopped.
"""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray
from ray.data import TaskPoolStrategy

from vstar_ray.config import Config
from vstar_ray.errors import WorkFailed
from vstar_ray.console import Progress
from vstar_ray.generation.pool import GeneratorPool, PassGenerators
from vstar_ray.io import TEMPORARY, atomic_dir, atomic_write_json, replace_dir
from vstar_ray.data.manifest import video_root_for
from vstar_ray.results import PassSummary
from vstar_ray.generation.stages import (SHARD_PREFIX, VIDEO_COLUMNS, commit_batch, counted, decode_batch, finalize_batch,
                              generate_batch, verify_batch)
from vstar_ray.verify import load_thresholds
from vstar_ray.verify.plugins import resolve as plugin_specs

STAGE_SECONDS = ("decode_s", "answer_s", "verify_direct_s", "rationalize_s", "verify_rationalized_s")
STAGE_NODES = ("decode_node", "answer_node", "rationalize_node")
GENERATOR_CALLS = ("answer_call", "rationalize_call")
STAGE_ORDER = ("decode", "answer", "verify", "rationalize", "verify_rationalized", "commit")
ROWS_PER_DECODE_TASK_BATCHES = 4  # decode batches per input block (one decode task each)
IN_FLIGHT_PER_ACTOR = 2  # generate_batch tasks waiting per generator actor and per generation stage
RATIONALIZE_ROWS_PER_CALL = 8  # a rationalize task takes this many generation batches of rows
CLIENT_CPUS = 0.01  # a generate_batch task only waits on the actors
PROGRESS_EVERY_S = 2.0  # how often a pass's progress file is written and its watchdog looks


class PassStalled(WorkFailed):
    """No row moved through any stage of a pass for ``generate.stall_timeout_s``; names the stage."""


def generator_busy(calls: list[str]) -> dict:
    """How much of each generator actor's warm wall time went into ``generate()``.

    ``calls`` are the per-row ``*_call`` records ``[actor, start, end, generate_s]`` (one per batch,
    repeated on its rows) of every generation stage of a pass: answer and rationalize batches share the
    actors. An actor's span runs from the start of its first batch's generation to the end of its last
    (loading a model is before it), so ``fraction`` is the busy share of the warm pipeline."""
    per_actor: dict[str, set] = {}
    for record in calls:
        if record:
            actor, start, end, generate_s = json.loads(record)
            per_actor.setdefault(actor, set()).add((start, end, generate_s))
    busy = sum(g for batches in per_actor.values() for _, _, g in batches)
    in_call = sum(e - s for batches in per_actor.values() for s, e, _ in batches)
    span = sum(max(e for _, e, _ in b) - min(s for s, _, _ in b) for b in per_actor.values())
    fractions = [sum(g for _, _, g in b) / (max(e for _, e, _ in b) - min(s for s, _, _ in b))
                 for b in per_actor.values() if max(e for _, e, _ in b) > min(s for s, _, _ in b)]
    return {
        "actors": len(per_actor),
        "calls": sum(len(b) for b in per_actor.values()),
        "generate_s": round(busy, 2),
        "span_s": round(span, 2),
        "fraction": round(busy / span, 4) if span > 0 else None,
        "in_call_fraction": round(in_call / span, 4) if span > 0 else None,
        "least_busy_actor": round(min(fractions), 4) if fractions else None,
    }


def _decoded(cfg: Config, ds: ray.data.Dataset, video_root: str, generators: PassGenerators) -> ray.data.Dataset:
    data = cfg.data
    return ds.map_batches(
        counted(decode_batch, "decode", generators),
        fn_kwargs=dict(video_root=video_root, num_frames=data.num_frames, size=data.frame_size,
                       timeout_s=data.decode_timeout_s, folder_fps=data.frame_folder_fps),
        batch_size=data.decode_batch_size,
        num_cpus=data.decode_num_cpus,
        scheduling_strategy="SPREAD",  # decode across nodes
        max_retries=3,  # a decode task whose worker crashed runs again
    )


def _asked(cfg: Config, ds: ray.data.Dataset, generators: PassGenerators, mode: str, actors: int) -> ray.data.Dataset:
    """Rows go to the run's generator actors (``pool``) from light tasks that wait on them; a few
    batches per actor are in flight, so no actor waits for work. A rationalize task takes several
    generation batches' worth of rows: only their failures are generated for."""
    return ds.map_batches(
        generate_batch,
        fn_kwargs=dict(generators=generators, mode=mode),
        batch_size=cfg.generate.batch_size * (RATIONALIZE_ROWS_PER_CALL if mode == "rationalize" else 1),
        compute=TaskPoolStrategy(size=IN_FLIGHT_PER_ACTOR * actors),
        num_cpus=CLIENT_CPUS,
        max_retries=3,
    )


def _verified(cfg: Config, ds: ray.data.Dataset, generators: PassGenerators, prefix: str, column: str,
              thresholds: dict) -> ray.data.Dataset:
    stage = "verify" if prefix == "direct" else "verify_rationalized"
    return ds.map_batches(counted(verify_batch, stage, generators),
                          fn_kwargs=dict(prefix=prefix, answer_column=column, thresholds=thresholds,
                                         embedding_model=cfg.verify.embedding_model,
                                         plugins=plugin_specs(cfg.verify.plugins)),
                          num_cpus=cfg.verify.num_cpus)


def build_dataset(cfg: Config, rows: str, video_root: str, generators: PassGenerators, mode: str, actors: int,
                  folder: str) -> ray.data.Dataset:
    """The pass as one readable chain of ``map_batches`` calls; each shows where it runs. Its output is one
    row per committed shard (``commit_batch``): the rows themselves are in ``folder``."""
    rationalize = mode == "train" and cfg.rationalize
    thresholds = load_thresholds(cfg.verify.thresholds)
    ds = _decoded(cfg, read_manifest(cfg, rows), video_root, generators)                   # CPU tasks
    ds = _asked(cfg, ds, generators, "answer" if mode == "train" else mode, actors)        # generator actors
    if mode == "raw":
        ds = ds.drop_columns(list(VIDEO_COLUMNS), num_cpus=cfg.verify.num_cpus)
    else:
        ds = _verified(cfg, ds, generators, "direct", "answer", thresholds)                # CPU
        if rationalize:
            ds = _asked(cfg, ds, generators, "rationalize", actors)                        # generator actors
            ds = _verified(cfg, ds, generators, "rationalized", "rationalized_answer", thresholds)
        ds = ds.map_batches(finalize_batch, fn_kwargs=dict(rationalized=rationalize), num_cpus=cfg.verify.num_cpus)
    return ds.map_batches(counted(commit_batch, "commit", generators), fn_kwargs=dict(folder=folder),
                          num_cpus=cfg.verify.num_cpus)                                   # parquet shards


def read_manifest(cfg: Config, path: str, columns: list[str] | None = None) -> ray.data.Dataset:
    """Parquet rows as a Dataset: read here with pyarrow and handed to Ray Data in blocks of a few decode
    batches (one decode task each, so clips decode in parallel and blocks do not grow with the manifest).

    No Ray task reads, samples or inspects the rows before the pass runs: Ray 2.60's parquet datasource (and
    ``from_arrow``) run such tasks asking for a whole CPU, and on a cluster of 1-CPU nodes whose generator
    actors hold a share of each CPU for the whole run they never ran (tests/test_job_submit.py).
    ``from_blocks`` takes the blocks' metadata here."""
    if columns is not None:
        present = set(pq.ParquetDataset(path).schema.names)
        columns = [c for c in columns if c in present]
    table = pq.read_table(path, columns=columns)
    step = ROWS_PER_DECODE_TASK_BATCHES * cfg.data.decode_batch_size
    return ray.data.from_blocks([table.slice(i, step) for i in range(0, max(1, table.num_rows), step)])


def _pool(cfg: Config, pool: GeneratorPool | None):
    """The run's pool, or one for this pass alone (``vstar generate``/``eval``), closed after it."""
    return nullcontext(pool) if pool is not None else GeneratorPool.start(cfg, training=False)


def committed_ids(folder: Path) -> set[str]:
    """Ids in the shards a pass committed; an unreadable shard (a crash while the disk wrote it) is dropped
    and its rows are generated again."""
    ids: set[str] = set()
    for unfinished in folder.glob(f".{SHARD_PREFIX}*{TEMPORARY}*"):  # a shard whose writer was killed
        unfinished.unlink()
    for shard in sorted(folder.glob(f"{SHARD_PREFIX}*.parquet")):
        try:
            ids.update(pq.read_table(shard, columns=["id"])["id"].to_pylist())
        except (OSError, pa.ArrowException):
            shard.unlink()
    return ids


def _describe_stall(report: dict, stages: list[str], total: int, timeout_s: float) -> str:
    counts = {s: report["stages"].get(s, {"rows": 0, "idle_s": None}) for s in stages}
    upstream, stuck = total, stages[0]
    for stage in stages:
        if counts[stage]["rows"] < upstream:
            stuck = stage
            break
        upstream = counts[stage]["rows"]
    rows = ", ".join(f"{s} {c['rows']}" for s, c in counts.items())
    actors = ", ".join(f"{a['state']} for {a['for_s']:.0f}s" for a in report["actors"])
    return (f"no row moved through any stage for {timeout_s:.0f}s (generate.stall_timeout_s): rows stopped at "
            f"'{stuck}'. Rows finished per stage: {rows} of {total}. Generator actors: {actors}")


def _execute(ds: ray.data.Dataset, pool: GeneratorPool, generators: PassGenerators, stages: list[str], total: int,
             timeout_s: float, progress_file: Path, on_rows=None) -> int:
    """Run the chain to its end from a helper thread while this thread watches it: every few seconds it
    writes the rows each stage has finished to ``progress_file`` and checks for a stall (``PassStalled``).
    Returns the rows committed; Ctrl-C reaches this thread at once."""
    events: queue.Queue = queue.Queue()

    def consume() -> None:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                events.put(("rows", int(batch["rows"].sum())))
            events.put(("done", None))
        except BaseException as e:  # handed to the watching thread
            events.put(("error", e))

    threading.Thread(target=consume, name="pass", daemon=True).start()
    committed, last_move, next_look = 0, time.time(), time.time() + PROGRESS_EVERY_S
    while True:
        try:
            kind, value = events.get(timeout=0.5)
        except queue.Empty:
            kind, value = "", None
        if kind == "error":
            raise value
        if kind == "done":
            return committed
        if kind == "rows":
            committed += value
            last_move = time.time()
            if on_rows is not None:
                on_rows(committed, total)
        if time.time() >= next_look:
            next_look = time.time() + PROGRESS_EVERY_S
            report = pool.report(generators)
            idle = [c["idle_s"] for c in report["stages"].values()]
            if idle:
                last_move = max(last_move, time.time() - min(idle))
            atomic_write_json(progress_file, {"total": total, "committed": committed, **report,
                                              "updated": time.time()})
            if timeout_s > 0 and time.time() - last_move > timeout_s:
                raise PassStalled(_describe_stall(report, stages, total, timeout_s))


def run_pass(cfg: Config, manifest: str, model_path: str, out_dir: str | Path, mode: str,
             pool: GeneratorPool | None = None, resume: bool = False, video_root: str | None = None,
             label: str = "") -> dict:
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
    done = committed_ids(partial)
    table = pq.read_table(manifest)
    expected = table["id"].to_pylist()
    remaining = table.filter(pc.invert(pc.is_in(table["id"], pa.array(sorted(done), pa.string())))) if done else table
    if remaining.num_rows:
        pq.write_table(remaining, todo)
        with _pool(cfg, pool) as generators_pool:
            generators = generators_pool.for_pass(model_path, mode)
            actors = max(1, len(generators_pool.actors))
            stages = ["decode", "answer"] + ([] if mode == "raw" else ["verify"])
            if mode == "train" and cfg.rationalize:
                stages += ["rationalize", "verify_rationalized"]
            ds = build_dataset(cfg, str(todo), video_root or video_root_for(manifest, cfg.data.video_root),
                               generators, mode, actors, str(partial))
            bar = Progress(label or out_dir.name, "videos")
            try:
                _execute(ds, generators_pool, generators, stages + ["commit"], remaining.num_rows,
                         cfg.generate.stall_timeout_s, progress, lambda done, total: bar.update(done, total))
            finally:
                bar.close()
                generators_pool.end_pass(generators)
        todo.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
    ids = pq.read_table(partial, columns=["id"])["id"].to_pylist()
    missing, extra = set(expected) - set(ids), len(ids) - len(set(ids))
    if missing or extra or len(ids) != len(expected):
        raise WorkFailed(f"pass into {out_dir} ended with {len(missing)} rows missing (e.g. {sorted(missing)[:3]}) "
                           f"and {extra} committed twice; its shards stay in {partial} for --resume")
    replace_dir(partial, out_dir)
    wall_s = time.time() - start
    if mode == "raw":
        return {"videos": len(ids), "resumed_rows": len(done), "seconds": round(wall_s, 2)}
    return summarize(out_dir, wall_s, len(done))


def answer_prompts(cfg: Config, rows: str, video_root: str, model_path: str, out_dir: str | Path,
                   pool: GeneratorPool | None = None) -> float:
    """Greedy answers to rows that carry their own ``prompt`` (benchmarks); writes ``out_dir``. Same decode
    stage and generator actors as a generation pass. Returns the wall seconds."""
    return run_pass(cfg, rows, model_path, out_dir, "raw", pool=pool, video_root=video_root)["seconds"]


def label_pass(manifest: str, out_dir: str | Path) -> dict:
    """The ``train_on: labels`` baseline's "pass": no model; every manifest row is kept with a template answer
    that states its label (``The answer is <label>.``). Same columns as a generation pass where they apply."""
    from vstar_ray import prompts

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


def summarize(out_dir: str | Path, wall_s: float = 0.0, resumed_rows: int = 0) -> dict:
    """A finished pass's ``PassSummary`` (as JSON): its counts, overall and per source, stage times and nodes."""
    table = pq.read_table(out_dir)
    busy = {c.removesuffix("_s"): round(float(pc.sum(table[c]).as_py() or 0), 2)
            for c in STAGE_SECONDS if c in table.column_names}
    nodes = {c.removesuffix("_node"): sorted({v for v in table[c].to_pylist() if v})
             for c in STAGE_NODES if c in table.column_names}
    calls = [r for c in GENERATOR_CALLS if c in table.column_names for r in table[c].to_pylist()]
    return PassSummary.of_pass(table, busy, nodes, generator_busy(calls), wall_s, resumed_rows).to_json()
