"""One STaR finetune with Ray Train: FSDP2 over all workers, answer-only loss, optional LoRA.

Kept records (prompt without hint, kept answer; ``training.rows``) are decoded by Ray Data and streamed
to the workers (``get_dataset_shard``). Each worker loads the base model through ``from_pretrained``,
wraps it with peft (optional), turns on activation checkpointing and shards it with ``fully_shard``
(``training.step``: gloo + fp32 on CPU; nccl + bf16-mixed on GPUs, float32 master weights and AdamW state),
trains with AdamW and a cosine schedule with warmup, accumulating micro-batches to
``train.global_batch_size``, and rank 0 writes an HF-format model (or adapter) in ``model.dtype`` that
``from_pretrained`` and the next cycle's generators load.

Limits: checkpoints are taken at the end of each epoch only (a restarted worker group repeats the epoch
it was in); sequence packing and tensor/sequence parallelism are not implemented; ``fsdp: false`` with
several workers uses DDP, which keeps a whole model per GPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vstar_ray import models
from vstar_ray.training import step as train_step
from vstar_ray.console import FileWatcher, Progress
from vstar_ray.config import Config, ConfigError
from vstar_ray.errors import WorkFailed
from vstar_ray.io import atomic_dir
from vstar_ray.training.rows import count_trained, training_dataset


def _cosine_with_warmup(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(math.ceil(total_steps * warmup_ratio)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _save_checkpoint(model, optimizer, processor, state: dict, rank: int, metrics: dict, dtype: torch.dtype) -> None:
    """Report an HF-format checkpoint (plus ``trainer_state.pt``: optimizer, scheduler, epoch) to Ray Train. The
    weights are saved in the model's own dtype (``model.dtype``: bfloat16 on GPUs), whatever they trained in."""
    import ray.train
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = {k: v.to(dtype) if v.is_floating_point() else v
               for k, v in get_model_state_dict(model, options=options).items()}  # collective under FSDP
    optim = get_optimizer_state_dict(model, optimizer, options=options)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            to_save = model.module if hasattr(model, "module") else model
            to_save.save_pretrained(tmp, state_dict=weights)
            processor.save_pretrained(tmp)
            torch.save({**state, "optimizer": optim}, Path(tmp) / TRAINER_STATE)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


TRAINER_STATE = "trainer_state.pt"
STEPS_FILE = "steps.jsonl"  # rank 0 appends each optimizer step: step, of (total), loss, lr, epoch


def lora_targets(model, suffixes: list[str], vision_tower: bool) -> list[str]:
    """The linear layers LoRA adapts: those named by ``suffixes`` (``q_proj``, ...) in the language model, and in
    the vision tower too only with ``train.lora_vision_tower``. Families name their vision layers alike or not
    (CLIP and SigLIP towers have ``q_proj``, Qwen's ``qkv``), so matching names alone would adapt the vision
    tower of some families and not of others."""
    decoder = model.get_decoder()
    inside = {name for name, module in model.named_modules() if module is decoder}
    names = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in suffixes
             and (vision_tower or any(name.startswith(prefix + ".") for prefix in inside))]
    if not names:
        raise ConfigError(f"train.lora_target_modules {suffixes} match no linear layer of {type(model).__name__}'s "
                         f"language model")
    return names


def _load_weights(cfg: Config, base_model: str, path: str, device, dtype: str, resuming: bool):
    """The model to train: the base model (wrapped with LoRA if configured), or a checkpoint to resume.

    A LoRA adapter records ``base_model`` as its base, even when that is an earlier cycle's adapter (cycles that
    continue from the last model): ``models.load_model`` merges the whole chain back."""
    t = cfg.train
    model = models.load_model(base_model if t.lora and resuming else path, str(device), dtype,
                              cfg.model.trust_remote_code)
    if t.lora:
        if resuming:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, path, is_trainable=True)
        else:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(
                r=t.lora_r, lora_alpha=t.lora_alpha, lora_dropout=t.lora_dropout,
                target_modules=lora_targets(model, list(t.lora_target_modules), t.lora_vision_tower)))
        model.peft_config["default"].base_model_name_or_path = base_model
    return model


def train_loop(config: dict) -> None:
    """Runs on every Ray Train worker: ``config`` holds the run's ``Config`` (``cfg``), the model to start from
    (``base_model``) and how many rows the dataset holds (``num_rows``). Reports a checkpoint after every epoch; a
    restarted worker group (``FailureConfig``) resumes from the latest one: weights, optimizer, schedule and epoch."""
    import ray.train
    import ray.train.torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    cfg: Config = config["cfg"]
    t, base_model = cfg.train, config["base_model"]
    ctx = ray.train.get_context()
    world, rank = ctx.get_world_size(), ctx.get_world_rank()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)
    mode = train_step.precision(t, device.type)
    resume = ray.train.get_checkpoint()
    with (resume.as_directory() if resume else contextlib.nullcontext(None)) as resume_dir:
        model = _load_weights(cfg, base_model, resume_dir or base_model, device, train_step.load_dtype(mode),
                              resume is not None)
        state = torch.load(Path(resume_dir) / TRAINER_STATE, weights_only=False) if resume_dir else None
    processor = models.load_processor(base_model, cfg.model.trust_remote_code)
    if train_step.activation_checkpointing(t):
        train_step.enable_activation_checkpointing(model)
    if world > 1:
        if t.fsdp:
            train_step.shard(model, world, device.type, mode)
        else:
            model = ray.train.torch.prepare_model(model)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=t.lr,
                                  weight_decay=t.weight_decay)
    accumulate = train_step.accumulation_steps(t, world)
    steps_per_epoch = max(1, math.ceil(config["num_rows"] // world / (t.batch_size * accumulate)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  _cosine_with_warmup(steps_per_epoch * t.epochs, t.warmup_ratio))
    first_epoch, step, losses = 0, 0, []
    if state is not None:
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        scheduler.load_state_dict(state["scheduler"])
        first_epoch, step, losses = state["epoch"], state["step"], state["losses"]
        if rank == 0:
            print(f"[train] resumed from the checkpoint of epoch {first_epoch} (step {step})", flush=True)
    shard = ray.train.get_dataset_shard("train")
    samples, tokens, start = 0, 0, time.time()
    node_ids = [None] * world
    if dist.is_initialized():
        dist.all_gather_object(node_ids, ray.get_runtime_context().get_node_id())
    else:
        node_ids = [ray.get_runtime_context().get_node_id()]

    def take_step(micro_batches: list) -> None:
        nonlocal step, samples, tokens
        lr = scheduler.get_last_lr()[0]
        losses.append(train_step.step(model, micro_batches, optimizer, t.max_grad_norm, device, mode))
        scheduler.step()
        step += 1
        if rank == 0 and config.get("steps_file"):  # read by the console's progress line and the trackers
            with open(config["steps_file"], "a") as f:
                f.write(json.dumps({"step": step, "of": steps_per_epoch * t.epochs, "loss": losses[-1], "lr": lr,
                                    "epoch": epoch + 1}) + "\n")
        samples += sum(mb.samples for mb in micro_batches)
        tokens += sum(mb.label_tokens for mb in micro_batches)

    for epoch in range(first_epoch, t.epochs):
        cut = torch.zeros(2, dtype=torch.int64)  # this epoch's samples: answers truncated, prompts too long
        pending = []
        for batch in shard.iter_batches(batch_size=t.batch_size, batch_format="numpy"):
            metadata = [models.video_metadata(f, i, c)
                        for f, i, c in zip(batch["fps"], batch["frame_index"], batch["clip_frames"])]
            pending.append(models.training_batch(processor, list(batch["frames"]), list(batch["prompt"]),
                                                 list(batch["kept_answer"]), t.max_length, metadata))
            cut += torch.tensor([pending[-1].truncated, pending[-1].too_long])
            if len(pending) == accumulate:
                take_step(pending)
                pending = []
        if pending:
            take_step(pending)
        if dist.is_initialized():
            dist.all_reduce(cut)
        elapsed = max(1e-9, time.time() - start)
        metrics = {
            "epoch": epoch + 1,
            "steps": step,
            "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None,
            "samples_per_s": samples * world / elapsed,
            "tokens_per_s": tokens * world / elapsed,
            "answers_truncated": int(cut[0]),
            "samples_too_long": int(cut[1]),
            "resumed_from_epoch": first_epoch,
            "precision": mode,
            "activation_checkpointing": train_step.activation_checkpointing(t),
            "accumulation_steps": accumulate,
            "node_ids": sorted(set(node_ids)),
        }
        if rank == 0:
            print(f"[train] epoch {epoch + 1}/{t.epochs}: {step} steps, "
                  f"loss {np.mean(losses[-steps_per_epoch:]):.4f}", flush=True)
        trainer_state = {"epoch": epoch + 1, "step": step, "losses": losses, "scheduler": scheduler.state_dict()}
        _save_checkpoint(model, optimizer, processor, trainer_state, rank, metrics,
                         models.torch_dtype(cfg.model.dtype, device.type))
    if dist.is_initialized():
        dist.barrier()


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
) -> dict:
    """Train on the kept records of ``generated_dir`` from ``base_model``; write ``out_dir`` (HF format)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    t = cfg.train
    start = time.time()
    num_rows = count_trained(cfg, generated_dir, final_cycle)
    steps_file = Path(storage_dir).resolve() / name / STEPS_FILE
    steps_file.parent.mkdir(parents=True, exist_ok=True)
    steps_file.unlink(missing_ok=True)
    if num_rows < t.num_workers:
        raise WorkFailed(
            f"only {num_rows} kept records in {generated_dir}: too few to train {t.num_workers} workers"
        )
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"cfg": cfg, "base_model": base_model, "num_rows": num_rows, "steps_file": str(steps_file)},
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
    finally:
        bar.close()
    if result.checkpoint is None:
        raise WorkFailed(f"training {name} finished without a checkpoint: {result.error}")
    with atomic_dir(out_dir) as tmp:
        result.checkpoint.to_directory(str(tmp))
        (tmp / TRAINER_STATE).unlink(missing_ok=True)  # resume state (optimizer); not part of the model
    return {**{k: v for k, v in result.metrics.items() if not k.startswith("_")},
            "samples": num_rows, "seconds": round(time.time() - start, 2)}
