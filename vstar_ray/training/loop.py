"""What every Ray Train worker runs for one finetune, as a recipe a reader follows top to bottom:

    setup      load the weights (LoRA, resume), activation checkpointing, FSDP2, AdamW and a cosine schedule
    epoch      micro-batches from the worker's dataset shard, accumulated into optimizer steps
    metrics    the epoch's figures and an HF-format checkpoint reported to Ray Train

The worker receives one frozen ``TrainJob``. A restarted worker group (``FailureConfig``) resumes from the latest
checkpoint: weights, optimizer, schedule and epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vstar_ray import models
from vstar_ray.config import Config
from vstar_ray.training import step as train_step
from vstar_ray.training.weights import load_weights

TRAINER_STATE = "trainer_state.pt"  # optimizer, schedule and epoch, beside the weights of a checkpoint
STEPS_FILE = "steps.jsonl"  # rank 0 appends each optimizer step: step, of (total), loss, lr, epoch


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs: the run's config, the model to start from, the samples in the dataset (for the
    schedule) and the file rank 0 appends each step to (the console's progress line and the trackers read it)."""

    cfg: Config
    base_model: str
    num_rows: int
    steps_file: str = ""


@dataclass
class Worker:
    """One worker's model, optimizer and schedule (``setup``), and its running counts."""

    job: TrainJob
    model: torch.nn.Module
    processor: object
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    device: torch.device
    precision: str
    world: int
    rank: int
    accumulate: int
    steps_per_epoch: int
    first_epoch: int = 0
    step: int = 0
    losses: list = field(default_factory=list)
    samples: int = 0
    tokens: int = 0
    frames: list = field(default_factory=lambda: [0, 0])  # clips decoded, read from the cache: every epoch, all workers
    started: float = field(default_factory=time.time)
    node_ids: list = field(default_factory=list)


def cosine_with_warmup(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(math.ceil(total_steps * warmup_ratio)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_loop(config: dict) -> None:
    """The Ray Train entry point: ``config["job"]`` is the ``TrainJob``."""
    import torch.distributed as dist

    worker = setup(config["job"])
    for epoch in range(worker.first_epoch, worker.job.cfg.train.epochs):
        cut = run_epoch(worker, epoch)
        worker.frames = [worker.frames[0] + int(cut[2]), worker.frames[1] + int(cut[3])]
        report(worker, epoch, cut)
    if dist.is_initialized():
        dist.barrier()


def setup(job: TrainJob) -> Worker:
    import ray
    import ray.train
    import ray.train.torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    cfg, t = job.cfg, job.cfg.train
    ctx = ray.train.get_context()
    world, rank = ctx.get_world_size(), ctx.get_world_rank()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)
    precision = train_step.precision(t, device.type)
    resume = ray.train.get_checkpoint()
    with (resume.as_directory() if resume else contextlib.nullcontext(None)) as resume_dir:
        model = load_weights(cfg, job.base_model, resume_dir or job.base_model, device,
                             train_step.load_dtype(precision), resume is not None)
        state = torch.load(Path(resume_dir) / TRAINER_STATE, weights_only=False) if resume_dir else None
    processor = models.load_processor(job.base_model, cfg.model.trust_remote_code)
    if train_step.activation_checkpointing(t):
        train_step.enable_activation_checkpointing(model)
    if world > 1:
        if t.fsdp:
            train_step.shard(model, world, device.type, precision)
        else:
            model = ray.train.torch.prepare_model(model)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.lr,
                                  weight_decay=t.weight_decay)
    accumulate = train_step.accumulation_steps(t, world)
    steps_per_epoch = max(1, math.ceil(job.num_rows // world / (t.batch_size * accumulate)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  cosine_with_warmup(steps_per_epoch * t.epochs, t.warmup_ratio))
    worker = Worker(job, model, processor, optimizer, scheduler, device, precision, world, rank, accumulate,
                    steps_per_epoch)
    if state is not None:
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        scheduler.load_state_dict(state["scheduler"])
        worker.first_epoch, worker.step, worker.losses = state["epoch"], state["step"], state["losses"]
        if rank == 0:
            print(f"[train] resumed from the checkpoint of epoch {worker.first_epoch} (step {worker.step})", flush=True)
    node = ray.get_runtime_context().get_node_id()
    worker.node_ids = [None] * world
    if dist.is_initialized():
        dist.all_gather_object(worker.node_ids, node)
    else:
        worker.node_ids = [node]
    return worker


def run_epoch(worker: Worker, epoch: int) -> torch.Tensor:
    """One pass over the worker's shard; returns the epoch's counts over all workers ``[answers truncated,
    samples too long, clips decoded from files, clips read from the frame cache]``."""
    import ray.train
    import torch.distributed as dist

    t = worker.job.cfg.train
    cut = torch.zeros(4, dtype=torch.int64)
    pending = []
    for batch in ray.train.get_dataset_shard("train").iter_batches(batch_size=t.batch_size, batch_format="numpy"):
        metadata = [models.video_metadata(f, i, c)
                    for f, i, c in zip(batch["fps"], batch["frame_index"], batch["clip_frames"])]
        pending.append(models.training_batch(worker.processor, list(batch["frames"]), list(batch["prompt"]),
                                             list(batch["kept_answer"]), t.max_length, metadata))
        sources = list(batch["frames_from"])
        cut += torch.tensor([pending[-1].truncated, pending[-1].too_long, sources.count("file"),
                             sources.count("cache")])
        if len(pending) == worker.accumulate:
            take_step(worker, pending, epoch)
            pending = []
    if pending:
        take_step(worker, pending, epoch)
    if dist.is_initialized():
        dist.all_reduce(cut)
    return cut


def take_step(worker: Worker, micro_batches: list, epoch: int) -> None:
    t = worker.job.cfg.train
    lr = worker.scheduler.get_last_lr()[0]
    worker.losses.append(train_step.step(worker.model, micro_batches, worker.optimizer, t.max_grad_norm,
                                         worker.device, worker.precision))
    worker.scheduler.step()
    worker.step += 1
    if worker.rank == 0 and worker.job.steps_file:
        with open(worker.job.steps_file, "a") as f:
            f.write(json.dumps({"step": worker.step, "of": worker.steps_per_epoch * t.epochs,
                                "loss": worker.losses[-1], "lr": lr, "epoch": epoch + 1}) + "\n")
    worker.samples += sum(mb.samples for mb in micro_batches)
    worker.tokens += sum(mb.label_tokens for mb in micro_batches)


def report(worker: Worker, epoch: int, cut: torch.Tensor) -> None:
    """The epoch's figures, and a checkpoint of the model with its trainer state, to Ray Train."""
    cfg, t = worker.job.cfg, worker.job.cfg.train
    elapsed = max(1e-9, time.time() - worker.started)
    metrics = {
        "epoch": epoch + 1,
        "steps": worker.step,
        "loss_first": worker.losses[0] if worker.losses else None,
        "loss_last": worker.losses[-1] if worker.losses else None,
        "samples_per_s": worker.samples * worker.world / elapsed,
        "tokens_per_s": worker.tokens * worker.world / elapsed,
        "answers_truncated": int(cut[0]),
        "samples_too_long": int(cut[1]),
        "decoded": worker.frames[0],
        "cache_hits": worker.frames[1],
        "resumed_from_epoch": worker.first_epoch,
        "precision": worker.precision,
        "activation_checkpointing": train_step.activation_checkpointing(t),
        "accumulation_steps": worker.accumulate,
        "node_ids": sorted(set(worker.node_ids)),
    }
    if worker.rank == 0:
        print(f"[train] epoch {epoch + 1}/{t.epochs}: {worker.step} steps, "
              f"loss {np.mean(worker.losses[-worker.steps_per_epoch:]):.4f}", flush=True)
    trainer_state = {"epoch": epoch + 1, "step": worker.step, "losses": worker.losses,
                     "scheduler": worker.scheduler.state_dict()}
    save_checkpoint(worker, trainer_state, metrics, models.torch_dtype(cfg.model.dtype, worker.device.type))


def save_checkpoint(worker: Worker, state: dict, metrics: dict, dtype: torch.dtype) -> None:
    """Report an HF-format checkpoint (plus ``trainer_state.pt``: optimizer, scheduler, epoch) to Ray Train. The
    weights are saved in the model's own dtype (``model.dtype``: bfloat16 on GPUs), whatever they trained in."""
    import ray.train
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    model = worker.model
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = {k: v.to(dtype) if v.is_floating_point() else v
               for k, v in get_model_state_dict(model, options=options).items()}  # collective under FSDP
    optim = get_optimizer_state_dict(model, worker.optimizer, options=options)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if worker.rank == 0:
            to_save = model.module if hasattr(model, "module") else model
            to_save.save_pretrained(tmp, state_dict=weights)
            worker.processor.save_pretrained(tmp)
            torch.save({**state, "optimizer": optim}, Path(tmp) / TRAINER_STATE)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)
