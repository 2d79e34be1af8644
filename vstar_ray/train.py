"""One STaR finetune with Ray Train: FSDP2 over all workers, answer-only loss, optional LoRA.

Kept records (prompt without hint, kept answer) are decoded by Ray Data and streamed to the
workers (``get_dataset_shard``). Each worker loads the base model through ``from_pretrained``,
wraps it with peft (optional) and ``fully_shard`` (gloo + fp32 on CPU, nccl + bf16 on GPU),
trains with AdamW and a cosine schedule with warmup, and rank 0 writes an HF-format model
(or adapter) that ``from_pretrained`` and the next cycle's generators load.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from vstar_ray import models
from vstar_ray.config import Config
from vstar_ray.io import replace_dir
from vstar_ray.manifest import video_root_for
from vstar_ray.pipeline import read_manifest
from vstar_ray.stages import VIDEO_COLUMNS, decode_batch


def _shard(model, world: int, device_type: str) -> None:
    """FSDP2: shard every transformer block the model declares unsplittable, then the root."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device_type, (world,))
    block_names = set(getattr(model, "_no_split_modules", None) or [])
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    block_names |= set(getattr(base, "_no_split_modules", None) or [])
    for module in list(model.modules()):
        if type(module).__name__ in block_names:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)


def _cosine_with_warmup(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(math.ceil(total_steps * warmup_ratio)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _save_checkpoint(model, optimizer, processor, state: dict, world: int, fsdp: bool, rank: int, metrics: dict) -> None:
    """Report an HF-format checkpoint (plus ``trainer_state.pt``: optimizer, scheduler, epoch) to Ray Train."""
    import ray.train
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    sharded = world > 1 and fsdp
    weights = get_model_state_dict(model, options=options) if sharded else None
    optim = get_optimizer_state_dict(model, optimizer, options=options)  # collective under FSDP
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
        raise ValueError(f"train.lora_target_modules {suffixes} match no linear layer of {type(model).__name__}'s "
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
    dtype = "float32" if device.type == "cpu" else cfg.model.dtype
    resume = ray.train.get_checkpoint()
    with (resume.as_directory() if resume else contextlib.nullcontext(None)) as resume_dir:
        model = _load_weights(cfg, base_model, resume_dir or base_model, device, dtype, resume is not None)
        state = torch.load(Path(resume_dir) / TRAINER_STATE, weights_only=False) if resume_dir else None
    processor = models.load_processor(base_model, cfg.model.trust_remote_code)
    if world > 1:
        if t.fsdp:
            _shard(model, world, device.type)
        else:
            model = ray.train.torch.prepare_model(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    rows_per_worker = config["num_rows"] // world
    steps_per_epoch = max(1, math.ceil(rows_per_worker / t.batch_size))
    total_steps = steps_per_epoch * t.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine_with_warmup(total_steps, t.warmup_ratio))
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
    for epoch in range(first_epoch, t.epochs):
        cut = torch.zeros(2, dtype=torch.int64)  # this epoch's samples: answers truncated, prompts too long
        for batch in shard.iter_batches(batch_size=t.batch_size, batch_format="numpy"):
            metadata = [models.video_metadata(f, i, c)
                        for f, i, c in zip(batch["fps"], batch["frame_index"], batch["clip_frames"])]
            tb = models.training_batch(processor, list(batch["frames"]), list(batch["prompt"]),
                                       list(batch["kept_answer"]), t.max_length, metadata)
            inputs = {k: v.to(device) for k, v in tb.inputs.items()}
            for key in ("pixel_values_videos", "pixel_values"):
                if key in inputs:
                    inputs[key] = inputs[key].to(next(model.parameters()).dtype)
            # a sum over label tokens divided by their count: never NaN, also for a batch with no label left
            loss = model(**inputs, num_items_in_batch=torch.tensor(max(1, tb.label_tokens), device=device)).loss
            loss.backward()
            if t.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(float(loss.detach()))
            samples += len(batch["prompt"])
            tokens += tb.label_tokens
            cut += torch.tensor([tb.truncated, tb.too_long])
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
            "node_ids": sorted(set(node_ids)),
        }
        if rank == 0:
            print(f"[train] epoch {epoch + 1}/{t.epochs}: {step} steps, "
                  f"loss {np.mean(losses[-steps_per_epoch:]):.4f}", flush=True)
        trainer_state = {"epoch": epoch + 1, "step": step, "losses": losses, "scheduler": scheduler.state_dict()}
        _save_checkpoint(model, optimizer, processor, trainer_state, world, t.fsdp, rank, metrics)
    if dist.is_initialized():
        dist.barrier()


def trained_sources(final_cycle: bool, keep_rationalized: str) -> set[str]:
    """Which kept answers a cycle trains on: rationalized ones too, except in the final cycle if configured;
    template label answers (``train_on: labels``) always."""
    if final_cycle and keep_rationalized == "intermediate":
        return {"direct", "label"}
    return {"direct", "rationalized", "label"}


SELECTION_COLUMNS = ("kept_from", "kept_answer", "answer", "error")


def training_pairs(columns: dict, train_on: str, sources: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of a generated pass a cycle trains on, and the answer each trains on.

    ``verified`` and ``labels``: the kept answer of rows kept from ``sources``. ``unfiltered`` (the
    no-filter ablation): every decoded row's direct answer, verified or not."""
    if train_on == "unfiltered":
        answers = np.asarray(columns["answer"], dtype=object)
        keep = np.array([not e and bool(a) for e, a in zip(columns["error"], answers)], dtype=bool)
        return keep, answers
    keep = np.array([k in sources for k in columns["kept_from"]], dtype=bool)
    return keep, np.asarray(columns["kept_answer"], dtype=object)


def hinted_copies(columns: dict, keep: np.ndarray, cfg: Config) -> np.ndarray:
    """Of the rows ``training_pairs`` keeps, those whose rationalized answer is trained a second time under
    its hint prompt (``train.hinted_copies``)."""
    if not (cfg.train.hinted_copies and cfg.train_on == "verified"):
        return np.zeros(len(keep), dtype=bool)
    return keep & (np.asarray(columns["kept_from"], dtype=object) == "rationalized")


def training_dataset(cfg: Config, generated_dir: str | Path, manifest: str, final_cycle: bool) -> ray.data.Dataset:
    """The rows a cycle trains on (``training_pairs``) under their question, and ``hinted_copies`` under
    their hint prompt, decoded again for training."""
    from vstar_ray import questions

    sources = trained_sources(final_cycle, cfg.keep_rationalized)

    def select(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keep, answers = training_pairs(batch, cfg.train_on, sources)
        plain, hinted = keep.nonzero()[0], hinted_copies(batch, keep, cfg).nonzero()[0]
        rows = np.concatenate([plain, hinted])
        out = {c: batch[c][rows] for c in ("id", "video", "start", "end", "question") if c in batch}
        out["kept_answer"] = answers[rows]
        out["prompt"] = np.array(
            [questions.answer_prompt(batch["question"][i]) for i in plain]
            + [questions.rationalize_prompt(batch["question"][i], json.loads(batch["labels"][i])) for i in hinted],
            dtype=object)
        return out

    ds = read_manifest(cfg, str(generated_dir))  # start/end included: train on the clip that was answered
    ds = ds.map_batches(select, num_cpus=cfg.verify.num_cpus)
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs=dict(video_root=video_root_for(manifest, cfg.data.video_root), num_frames=cfg.data.num_frames,
                       size=cfg.data.frame_size, timeout_s=cfg.data.decode_timeout_s,
                       folder_fps=cfg.data.frame_folder_fps),
        batch_size=cfg.data.decode_batch_size,
        num_cpus=cfg.data.decode_num_cpus,
    )
    # every op states its CPUs: the default (1) may exceed what the training workers leave to Ray Data
    ds = ds.filter(lambda row: not row["error"], num_cpus=cfg.verify.num_cpus)
    return ds.select_columns([*VIDEO_COLUMNS, "prompt", "kept_answer"], num_cpus=cfg.verify.num_cpus)


def count_trained(cfg: Config, generated_dir: str | Path, final_cycle: bool) -> int:
    import pyarrow.parquet as pq

    columns = pq.read_table(str(generated_dir), columns=list(SELECTION_COLUMNS)).to_pydict()
    keep, _ = training_pairs(columns, cfg.train_on, trained_sources(final_cycle, cfg.keep_rationalized))
    return int(keep.sum() + hinted_copies(columns, keep, cfg).sum())


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
    if num_rows < t.num_workers:
        raise RuntimeError(
            f"only {num_rows} kept records in {generated_dir}: too few to train {t.num_workers} workers"
        )
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={"cfg": cfg, "base_model": base_model, "num_rows": num_rows},
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker}
        ),
        torch_config=TorchConfig(backend="nccl" if t.use_gpu else "gloo"),
        datasets={"train": training_dataset(cfg, generated_dir, manifest, final_cycle)},
        run_config=RunConfig(
            name=name,
            storage_path=str(Path(storage_dir).resolve()),
            failure_config=FailureConfig(max_failures=t.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training {name} finished without a checkpoint: {result.error}")
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    result.checkpoint.to_directory(str(tmp))
    (tmp / TRAINER_STATE).unlink(missing_ok=True)  # resume state (optimizer); not part of the model
    replace_dir(tmp, out_dir)
    return {**{k: v for k, v in result.metrics.items() if not k.startswith("_")},
            "samples": num_rows, "seconds": round(time.time() - start, 2)}
