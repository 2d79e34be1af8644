"""One STaR finetune with Ray Train: FSDP2 over all workers, answer-only loss, optional LoRA.

The samples of ``training.rows`` are decoded by Ray Data and streamed to the workers (``get_dataset_shard``).
Each worker (``training.loop``) loads the base model through ``from_pretrained``, wraps it with peft (optional),
turns on activation checkpointing and shards it with ``fully_shard`` (``training.step``: gloo + fp32 on CPU;
nccl + bf16-mixed on GPUs, float32 master weights and AdamW state), trains with AdamW and a cosine schedule with
warmup, accumulating micro-batches to ``train.global_batch_size``, and rank 0 writes an HF-format model (or
adapter) in ``model.dtype`` that ``from_pretrained`` and the next cycle's generators load.

Limits: checkpoints are taken at the end of each epoch only (a restarted worker group repeats the epoch
it was in); sequence packing and tensor/sequence parallelism are not implemented; ``fsdp: false`` with
several workers uses DDP, which keeps a whole model per GPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vstar_ray.config import Config
from vstar_ray.console import FileWatcher, Progress
from vstar_ray.errors import WorkFailed, cause_inside
from vstar_ray.io import atomic_dir, named
from vstar_ray.results import TrainResult
from vstar_ray.training.loop import STEPS_FILE, TRAINER_STATE, TrainJob, train_loop
from vstar_ray.training.rows import count_trained, training_dataset

__all__ = ["STEPS_FILE", "finetune"]


def _last_step(path: Path) -> dict | None:
    """The last step rank 0 wrote (the tail of the file only)."""
    if not path.exists():
        return None
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        lines = f.read().decode(errors="replace").strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def finetune(
    cfg: Config, generated_dir: str | Path, manifest: str, base_model: str, out_dir: str | Path,
    storage_dir: str | Path, final_cycle: bool, name: str = "finetune",
) -> TrainResult:
    """Train on the samples of ``generated_dir`` from ``base_model``; write ``out_dir`` (HF format)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    t = cfg.train
    start = time.time()
    num_rows = count_trained(cfg, generated_dir, final_cycle)
    steps_file = Path(storage_dir).resolve() / name / STEPS_FILE
    steps_file.parent.mkdir(parents=True, exist_ok=True)
    steps_file.unlink(missing_ok=True)
    if num_rows < t.num_workers:
        raise WorkFailed(f"only {num_rows} kept records in {generated_dir}: too few to train {t.num_workers} workers")
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"job": TrainJob(cfg, base_model, num_rows, str(steps_file))},
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu,
            resources_per_worker={"CPU": t.cpus_per_worker, **({"GPU": t.gpus_per_worker} if t.use_gpu else {})}),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        datasets={"train": training_dataset(cfg, generated_dir, manifest, final_cycle)},
        run_config=RunConfig(
            name=name,
            storage_path=str(Path(storage_dir).resolve()),
            failure_config=FailureConfig(max_failures=t.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
    bar = Progress(name, "steps")

    def show(step: dict) -> None:
        bar.update(step["step"], step["of"], f"epoch {step['epoch']}, loss {step['loss']:.4f}")

    try:
        with FileWatcher(lambda: _last_step(steps_file), show):
            result = trainer.fit()
    except Exception as e:  # a checkpoint that could not be written (a full disk): name the folder
        failed = cause_inside(e, (OSError,))
        if failed is None:
            raise
        raise named(failed, Path(storage_dir) / name) from e
    finally:
        bar.close()
    if result.checkpoint is None:
        raise WorkFailed(f"training {name} finished without a checkpoint: {result.error}")
    with atomic_dir(out_dir) as tmp:
        result.checkpoint.to_directory(str(tmp))
        (tmp / TRAINER_STATE).unlink(missing_ok=True)  # resume state (optimizer); not part of the model
    reported = {k: v for k, v in result.metrics.items() if not k.startswith("_")}
    return TrainResult.from_json({**reported, "base_model": base_model, "samples": num_rows,
                                  "seconds": round(time.time() - start, 2)})
