"""Does the generation pass stream? Peak driver RSS and object-store use for growing datasets.

    .venv/bin/python benchmarks/pipeline_memory.py [--sizes 1000 4000] [--set generate.max_new_tokens=16]

Each size runs in a fresh process with its own local Ray (2 CPUs): one ``run_pass`` (decode ->
answer -> verify -> rationalize -> verify -> parquet) over that many rows of the demo kit's
videos (the 256 files repeated under new ids). A thread samples the object store
(``ray memory --stats-only``) every second; the driver's peak RSS comes from ``getrusage``.
Answers are cut short by default (``generate.max_new_tokens=16``) so 4,000 videos take minutes:
the memory behaviour of the stream does not depend on the answer length. The last line is the
ratio of the largest to the smallest size for both peaks (goal: within 1.25x).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PLASMA = re.compile(r"Plasma memory usage (\d+) MiB, (\d+) objects")


def one(n: int, config: str, overrides: list[str]) -> dict:
    import ray
    from ray._private.internal_api import memory_summary

    from pipeline_throughput import benchmark_manifest
    from vstar_ray.config import load_config
    from vstar_ray.preflight import resolve_demo
    from vstar_ray.generation.pipeline import run_pass

    cfg = resolve_demo(load_config(config, overrides))
    kit = Path(cfg.model.path).parent
    with tempfile.TemporaryDirectory() as tmp:
        manifest = benchmark_manifest(kit, n, Path(tmp) / "bench.parquet")
        __import__("vstar_ray.resources").resources.init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
        peak = {"plasma_mib": 0, "objects": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    m = PLASMA.search(memory_summary(stats_only=True))
                except Exception:  # the cluster may be shutting down
                    m = None
                if m:
                    peak["plasma_mib"] = max(peak["plasma_mib"], int(m.group(1)))
                    peak["objects"] = max(peak["objects"], int(m.group(2)))
                done.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.perf_counter()
        summary = run_pass(cfg, str(manifest), cfg.model.path, Path(tmp) / "generated", "train")
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        ray.shutdown()
    return {
        "videos": n,
        "seconds": round(seconds, 1),
        "written": summary.videos,
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "object_store_peak_mib": peak["plasma_mib"],
        "object_store_peak_objects": peak["objects"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help="config overrides (default: generate.max_new_tokens=16)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = args.set if args.set is not None else ["generate.max_new_tokens=16"]
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.config, overrides)), flush=True)
        return
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--config", args.config]
        for o in overrides:
            cmd += ["--set", o]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            sys.exit(f"size {n} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        r = json.loads(lines[-1][len("RESULT "):])
        results.append(r)
        print(f"{r['videos']:>6} videos: {r['seconds']:.0f}s, {r['written']} rows written, driver peak RSS "
              f"{r['driver_peak_rss_mib']:.0f} MiB, object store peak {r['object_store_peak_mib']} MiB "
              f"({r['object_store_peak_objects']} objects)", flush=True)
    small, large = results[0], results[-1]
    print(f"{large['videos']}/{small['videos']} videos peak ratio: driver RSS "
          f"{large['driver_peak_rss_mib'] / small['driver_peak_rss_mib']:.2f}, object store "
          f"{large['object_store_peak_mib'] / max(1, small['object_store_peak_mib']):.2f}")


if __name__ == "__main__":
    main()
