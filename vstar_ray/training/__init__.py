"""Finetuning on kept answers with Ray Train: which rows are trained on and how (``rows``), the driver that
starts the trainer (``finetune``), the worker's loop (``loop``) and one optimizer step (``step``: precision,
activation checkpointing, FSDP2, accumulation).

Imports ``data``, ``models``, ``prompts`` and ``config``; never generation, evaluation or the run loop.
"""
