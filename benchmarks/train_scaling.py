"""Finetune throughput of the demo model with Ray Train: samples/s and tokens/s, 1 vs 2 workers.

    .venv/bin/python benchmarks/train_scaling.py [--workers 1 2] [--epochs 2]

Trains the demo seed on the kit's 192 training videos with a reasoning answer each (the shape of
a cycle's kept answers), through ``train.finetune``: Ray Data decodes the clips and streams them
to the workers, FSDP2 over gloo on CPU. ``samples/s`` and ``tokens/s`` (answer tokens, the ones
the loss covers) are measured by the workers over their training loop; ``wall`` is the whole
``finetune`` call (worker start, model load, checkpoint written). Each worker count runs on a
fresh local Ray with 2 CPUs and ``cpus_per_worker = 1.5 / workers``: both settings get the same
CPU budget and half a CPU stays free for the Ray Data tasks that decode the clips (workers that
reserve every CPU starve their own input).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--config", default="configs/demo.yaml")
    args = parser.parse_args()

    import ray

    from vstar_ray.config import load_config
    from vstar_ray.preflight import resolve_demo
    from vstar_ray.demo.kit import write_kept_pass
    from vstar_ray.training.finetune import finetune

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for workers in args.workers:
            cfg = resolve_demo(load_config(args.config, [
                f"train.num_workers={workers}", f"train.cpus_per_worker={1.5 / workers}", f"train.epochs={args.epochs}",
            ]))
            kit = Path(cfg.model.path).parent
            generated = tmp / "generated"
            if not generated.exists():
                write_kept_pass(kit, generated)
            __import__("vstar_ray.resources").resources.init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
            r = finetune(cfg, generated, str(kit / "train.parquet"), cfg.model.path, tmp / f"ckpt{workers}",
                         tmp / "ray_train", final_cycle=True, name=f"scaling_{workers}")
            ray.shutdown()
            results[workers] = r.to_json()
            print(f"{workers} worker(s): {r['samples']} samples x {args.epochs} epochs, {r['steps']} steps/worker, "
                  f"{r['samples_per_s']:.2f} samples/s, {r['tokens_per_s']:.0f} answer tokens/s, "
                  f"loss {r['loss_first']:.2f} -> {r['loss_last']:.2f}, wall {r['seconds']:.1f}s", flush=True)
    if len(results) > 1:
        lo, hi = min(results), max(results)
        print(f"samples/s speed-up {lo} -> {hi} workers: "
              f"{results[hi]['samples_per_s'] / results[lo]['samples_per_s']:.2f}x")


if __name__ == "__main__":
    main()
