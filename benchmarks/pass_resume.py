"""Resume inside a pass: SIGKILL a ``vstar generate`` half-way through 1,024 videos, resume it, count the redo.

    .venv/bin/python benchmarks/pass_resume.py [--n 1024] [--kill-at 0.5] [--config configs/demo.yaml]

The pass runs as its own process with its own local Ray cluster; when ``--kill-at`` of its rows are committed
(parquet shards in ``.generated.partial/``) the whole process tree is SIGKILLed, as a lost machine is. Then
``vstar generate --resume`` finishes it. Printed: rows committed at the kill, rows the resume generated (every
row not committed), rows that were answered but not yet committed at the kill (from the pass's own progress
file, written at most 0.2 s before the kill: the work lost), and wall times against an uninterrupted pass.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from pipeline_throughput import benchmark_manifest  # noqa: E402
from tests.helpers.processes import kill_tree  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--config", default="configs/demo.yaml")
    args = parser.parse_args()

    from vstar_ray.config import load_config
    from vstar_ray.preflight import resolve_demo

    cfg = resolve_demo(load_config(args.config))
    kit = Path(cfg.model.path).parent
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = benchmark_manifest(kit, args.n, Path(tmp) / "bench.parquet")

        def command(out: str) -> list[str]:
            return [sys.executable, "-m", "vstar_ray", "generate", "--config", args.config, "--manifest",
                    str(manifest), "--model", cfg.model.path, "--out", out, "--thresholds", cfg.verify.thresholds]

        start = time.time()
        subprocess.run(command(f"{tmp}/whole"), env=env, check=True, capture_output=True)
        whole_s = time.time() - start

        out = Path(tmp) / "killed"
        partial, progress = out / ".generated.partial", out / ".generated.progress.json"
        start = time.time()
        with open(Path(tmp) / "killed.log", "w") as log:
            proc = subprocess.Popen(command(str(out)), env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        snapshot: dict = {}
        while True:  # kill just after a fresh progress snapshot that shows enough committed rows
            if proc.poll() is not None:
                raise SystemExit(f"the pass ended before the kill: {(Path(tmp) / 'killed.log').read_text()[-2000:]}")
            try:
                snapshot = json.loads(progress.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                pass
            if snapshot.get("committed", 0) >= args.kill_at * args.n and time.time() - snapshot["updated"] < 0.2:
                break
            time.sleep(0.01)
        kill_tree(proc)
        killed_after = time.time() - start
        at_kill = len(pq.read_table(partial, columns=["id"]))
        stages = snapshot.get("stages", {})
        answered, snap_committed = stages.get("answer", {}).get("rows", 0), snapshot.get("committed", 0)
        snap_age = time.time() - snapshot.get("updated", time.time())

        start = time.time()
        subprocess.run(command(str(out)) + ["--resume"], env=env, check=True, capture_output=True)
        resume_s = time.time() - start
        summary = json.loads((out / "metrics.json").read_text())
        ids = pq.read_table(out / "generated", columns=["id"])["id"].to_pylist()

    regenerated = args.n - summary["resumed_rows"]
    print(f"{args.n} videos, generate.batch_size {cfg.generate.batch_size}, {cfg.generate.max_actors} generator "
          f"actors; an uninterrupted pass: {whole_s:.1f}s (process start, Ray and pool start included)")
    print(f"killed {killed_after:.1f}s in, with {at_kill}/{args.n} rows committed")
    print(f"resume: {resume_s:.1f}s; resumed_rows {summary['resumed_rows']}, regenerated {regenerated} "
          f"(= rows not committed at the kill: {args.n - at_kill}); finished pass: {len(ids)} rows, "
          f"{len(set(ids))} distinct")
    print(f"work lost at the kill: at the last progress snapshot ({snap_age:.1f}s "
          f"before the kill) {answered} rows had been answered and {snap_committed} committed: "
          f"{answered - snap_committed} answered rows in flight, "
          f"{(answered - snap_committed) / cfg.generate.batch_size:.1f} batches of {cfg.generate.batch_size}")


if __name__ == "__main__":
    main()
