"""Reference-style sequential loop vs the Ray Data pipeline: same model, same videos, same machine.

    .venv/bin/python benchmarks/pipeline_throughput.py [--n 256] [--config configs/demo.yaml]

(a) sequential: one process, one video at a time (batch size 1): decode -> generate -> verify
    inline -> rationalize a failure inline -> verify, as the published reference script does;
(b) pipeline: a run's generator pool started once, then ``run_pass`` twice on it (decode tasks ->
    generator actors -> verify -> rationalize on the same actors -> verify -> parquet shards), each timed
    from the first read to the last shard committed. The first pass loads the model into the actors;
    the second is what each later generation pass of a run costs.

Both use the demo kit's seed model and videos (the 192 train + 64 held-out clips; with --n above
256 the rows repeat those files under new ids) and the config's sampling settings. Prints videos/s
for each, the generator busy fraction, and the throughput ratios. The two sides alternate (A B A B) so
that a change in machine load between them cannot fake a ratio; the median and every run are printed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq


def benchmark_manifest(kit: Path, n: int, out: Path) -> Path:
    """``n`` manifest rows over the kit's videos (absolute paths; repeated under new ids past 256)."""
    from vstar_ray.data.manifest import write_manifest

    base = pq.read_table(kit / "train.parquet").to_pylist() + pq.read_table(kit / "heldout.parquet").to_pylist()
    rows = []
    for i in range(n):
        row = dict(base[i % len(base)])
        row["id"] = f"bench-{i:06d}"
        row["video"] = str(kit / row["video"])
        rows.append(row)
    write_manifest(rows, out)
    return out


def sequential(cfg, manifest: Path) -> dict:
    """The reference loop: batch size 1, everything inline in one process."""
    import torch

    from vstar_ray import models, prompts
    from vstar_ray.verify import load_thresholds, verify_labels
    from vstar_ray.data.video import decode_clip

    torch.set_num_threads(2)
    start = time.perf_counter()
    model = models.load_model(cfg.model.path, "cpu", cfg.model.dtype).eval()
    processor = models.load_processor(cfg.model.path)
    thresholds = load_thresholds(cfg.verify.thresholds)
    load_s = time.perf_counter() - start
    gen = cfg.generate
    timings = {"decode": 0.0, "generate": 0.0, "verify": 0.0}
    kept = 0
    rows = pq.read_table(manifest).to_pylist()
    for row in rows:
        t = time.perf_counter()
        clip = decode_clip(row["video"], cfg.data.num_frames, cfg.data.frame_size)
        meta = models.video_metadata(clip.fps, clip.frame_indices, clip.clip_frames)
        timings["decode"] += time.perf_counter() - t
        labels = json.loads(row["labels"])
        prompts = [prompts.answer_prompt(row["question"])]
        if cfg.rationalize:
            prompts.append(prompts.rationalize_prompt(row["question"], labels))
        for attempt, prompt in enumerate(prompts):
            t = time.perf_counter()
            answer = models.generate(model, processor, [clip.frames], [prompt], gen.max_new_tokens, gen.do_sample,
                                     gen.temperature, [meta])[0]
            timings["generate"] += time.perf_counter() - t
            t = time.perf_counter()
            ok = verify_labels(row["id"], answer, row["labels"], row["verifiers"], thresholds)["verified"]
            timings["verify"] += time.perf_counter() - t
            if ok:
                kept += 1
                break
    wall = time.perf_counter() - start
    return {"seconds": wall, "model_load_s": load_s, "videos": len(rows), "kept": kept, "stage_s": timings}


def pipeline(cfg, manifest: Path, out: Path) -> dict:
    """A run's generator pool started once, then two passes on it: the first loads the model into the
    actors, the second is what every later generation pass of a run costs (the model already loaded)."""
    import ray

    from vstar_ray.generation.pool import GeneratorPool
    from vstar_ray.generation.pipeline import run_pass

    __import__("vstar_ray.resources").resources.init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        pool = GeneratorPool.start(cfg, training=True, log=lambda m: None)
        pool_s = time.perf_counter() - start
        with pool:
            passes = []
            for i in range(2):
                start, wall_start = time.perf_counter(), time.time()
                summary = run_pass(cfg, str(manifest), cfg.model.path, out / f"pass_{i}", "train", pool=pool)
                wall = time.perf_counter() - start
                table = pq.read_table(out / f"pass_{i}")
                calls = [json.loads(c) for column in ("answer_call", "rationalize_call") if column in table.column_names
                         for c in table[column].to_pylist() if c]
                phases = {"first_batch_s": min(c[1] for c in calls) - wall_start,
                          "generating_s": max(c[2] for c in calls) - min(c[1] for c in calls),
                          "after_last_batch_s": wall_start + wall - max(c[2] for c in calls)}
                passes.append({**summary.to_json(), "seconds": wall, "phases": phases})
            processes = len(pool.processes())
    finally:
        ray.shutdown()
    return {"pool_start_s": pool_s, "first": passes[0], "warm": passes[1], "processes": processes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="videos (default: the kit's 256)")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--repeats", type=int, default=2, help="A B pairs, alternated (A B A B ...)")
    args = parser.parse_args()

    from vstar_ray.config import load_config
    from vstar_ray.preflight import resolve_demo

    cfg = resolve_demo(load_config(args.config, args.set))
    kit = Path(cfg.model.path).parent
    warm_ratios, cold_ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        manifest = benchmark_manifest(kit, args.n, Path(tmp) / "bench.parquet")
        print(f"{args.n} videos, model {cfg.model.path}, generate batch {cfg.generate.batch_size}, "
              f"max_new_tokens {cfg.generate.max_new_tokens}, rationalize {cfg.rationalize}, "
              f"generator actors {cfg.generate.max_actors}", flush=True)
        for repeat in range(args.repeats):
            seq = sequential(cfg, manifest)
            seq_warm = seq["seconds"] - seq["model_load_s"]
            print(f"[{repeat + 1}A] sequential: {seq['seconds']:.1f}s ({seq_warm:.1f}s after its model load), "
                  f"{seq['videos'] / seq['seconds']:.2f} videos/s, kept {seq['kept']}; "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in seq["stage_s"].items()), flush=True)
            pipe = pipeline(cfg, manifest, Path(tmp) / f"run_{repeat}")
            first, warm = pipe["first"], pipe["warm"]
            for name, p in (("first pass", first), ("warm pass", warm)):
                ph, busy = p["phases"], p["generator_busy"]
                print(f"[{repeat + 1}B] {name}: {p['seconds']:.1f}s, {p['videos'] / p['seconds']:.1f} videos/s, kept "
                      f"{p['kept_direct'] + p['kept_rationalized']}; first batch after {ph['first_batch_s']:.1f}s, "
                      f"generating {ph['generating_s']:.1f}s; generators busy {busy['fraction']:.1%} "
                      f"(least busy actor {busy['least_busy_actor']:.1%}, {busy['actors']} actors)", flush=True)
            print(f"[{repeat + 1}B] generator pool start {pipe['pool_start_s']:.1f}s, {pipe['processes']} model "
                  f"processes for both passes", flush=True)
            warm_ratios.append(seq_warm / warm["seconds"])
            cold_ratios.append(seq["seconds"] / (pipe["pool_start_s"] + first["seconds"]))
    import statistics

    for name, ratios in (("cold (pool start + first pass vs the whole loop)", cold_ratios),
                         ("warm (a pass inside a run vs the loop after its model load)", warm_ratios)):
        print(f"ratio {name}: median {statistics.median(ratios):.2f}, runs "
              + " ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
