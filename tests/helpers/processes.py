"""Helpers for tests (and benchmarks) that kill real processes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and every process it started (its own Ray
    cluster: GCS, raylet, workers), as a lost machine loses them; other Ray sessions on this machine are left
    alone (``ray stop --force`` would kill them too)."""
    import psutil

    tree = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    _kill_and_wait(tree)
    proc.wait()


def session_processes(sid: int) -> list:
    """The live processes of session ``sid`` (a process started with ``start_new_session=True`` has its pid as its
    session id, and Ray's processes that it starts keep it)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == sid:
                found.append(p)
        except (ProcessLookupError, PermissionError):
            pass
    return found


def kill_session(sid: int) -> list:
    """SIGKILL every process of session ``sid`` (a Ray cluster that ``ray start`` began there, and no other: ``ray
    stop --force`` stops every Ray cluster of the machine, another test's included); returns those it found."""
    procs = session_processes(sid)
    _kill_and_wait(procs)
    return procs


def _kill_and_wait(procs: list) -> None:
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


def committed_rows(partial: Path) -> int:
    """Rows in the parquet shards a running pass has committed so far."""
    import pyarrow.parquet as pq

    rows = 0
    for shard in Path(partial).glob("part-*.parquet"):
        try:
            rows += pq.read_metadata(shard).num_rows
        except Exception:  # being renamed into place
            pass
    return rows


def damage_column(shard: Path, column: str) -> None:
    """Flip 4 bytes inside ``column``'s last data page of a parquet file, leaving its footer and every other column
    readable: the damage a bad disk or a torn copy does in the middle of a file."""
    import pyarrow.parquet as pq

    meta = pq.read_metadata(shard).row_group(0)
    (chunk,) = [meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == column]
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    end = start + chunk.total_compressed_size
    data = bytearray(Path(shard).read_bytes())
    for k in range(end - 8, end - 4):
        data[k] ^= 0xFF
    Path(shard).write_bytes(bytes(data))
