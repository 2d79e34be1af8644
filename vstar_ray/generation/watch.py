"""Watching a running pass: its progress file, the stall watchdog, and how busy the generator actors were.

``execute`` runs a pass's chain to its end from a helper thread while the calling thread watches it: every few
seconds it writes the rows each stage has finished (``OUT/.<pass>.progress.json``) and turns a pass in which
no row moved through any stage for ``generate.stall_timeout_s`` into a ``PassStalled`` error that names the
stage where rows stopped. Ctrl-C reaches the calling thread at once.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import ray

from vstar_ray.errors import WorkFailed
from vstar_ray.io import atomic_write_json

PROGRESS_EVERY_S = 2.0  # how often a pass's progress file is written and its watchdog looks
STOP_WAIT_S = 30.0  # how long a failed pass waits for its execution to stop


class PassStalled(WorkFailed):
    """No row moved through any stage of a pass for ``generate.stall_timeout_s``; names the stage."""


def describe_stall(report: dict, stages: list[str], total: int, timeout_s: float) -> str:
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


def execute(ds: ray.data.Dataset, report, stages: list[str], total: int, timeout_s: float, progress_file: Path,
            on_rows=None) -> int:
    """Run the chain ``ds`` (one row per committed shard, with its ``rows``) and watch it; ``report()`` gives the
    router's rows per stage and actor states. Returns the rows committed."""
    events: queue.Queue = queue.Queue()

    def consume() -> None:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                events.put(("rows", int(batch["rows"].sum())))
            events.put(("done", None))
        except BaseException as e:  # handed to the watching thread
            events.put(("error", e))

    consumer = threading.Thread(target=consume, name="pass", daemon=True)
    consumer.start()
    try:
        return _watch(events, report, stages, total, timeout_s, progress_file, on_rows)
    finally:
        if consumer.is_alive():  # a stall, Ctrl-C, SIGTERM: stop the pass's execution before leaving
            _stop(ds)
            consumer.join(timeout=STOP_WAIT_S)


def _stop(ds: ray.data.Dataset) -> None:
    """End a running execution of ``ds`` from another thread. Left running, its executor goes on calling Ray after
    the pass has failed: once this process shuts Ray down, such a call starts a new local cluster and Ray aborts
    the process in its C++ code (seen when a test process went on after a stalled pass). Ray Data has no public
    way to do this, and ``ds`` learns its executor only once a first block has come out (a stall before that is
    the common case), so the executor is found among the threads (it is one, named after the dataset) and shut
    down as ``Dataset`` itself does after a blocking call: the consumer then sees the end of the stream."""
    from ray.data._internal.execution.streaming_executor import StreamingExecutor

    for thread in threading.enumerate():
        if isinstance(thread, StreamingExecutor) and thread._dataset_id == ds.get_dataset_id():
            thread.shutdown(force=True)


def _watch(events: queue.Queue, report, stages: list[str], total: int, timeout_s: float, progress_file: Path,
           on_rows) -> int:
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
            now = report()
            idle = [c["idle_s"] for c in now["stages"].values()]
            if idle:
                last_move = max(last_move, time.time() - min(idle))
            atomic_write_json(progress_file, {"total": total, "committed": committed, **now, "updated": time.time()})
            if timeout_s > 0 and time.time() - last_move > timeout_s:
                raise PassStalled(describe_stall(now, stages, total, timeout_s))


def generator_busy(calls: list[str]) -> dict:
    """How much of each generator actor's warm wall time went into ``generate()``.

    ``calls`` are the per-row call records ``[actor, start, end, generate_s]`` (one per batch, repeated on its
    rows) of every generation stage of a pass: answer and rationalize batches share the actors. An actor's span
    runs from the start of its first batch's generation to the end of its last (loading a model is before it),
    so ``fraction`` is the busy share of the warm pipeline."""
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
