"""``vstar export model``: one cycle's checkpoint as a plain Hugging Face folder.

A LoRA checkpoint is an adapter whose base may itself be an adapter (cycles that continue from the last model):
the whole chain is merged into the pretrained weights (``models.load_model``), in ``--dtype`` (bfloat16 by
default). The folder holds the weights, the processor with its chat template, a ``generation_config.json`` that
stops on the answer's end-of-turn token, and a ``README.md`` model card; it loads with
``AutoModelForImageTextToText``/``AutoProcessor.from_pretrained`` and vLLM, with no vstar_ray installed.
"""

from __future__ import annotations

import os
from pathlib import Path

from vstar_ray import models
from vstar_ray.errors import InputError, WorkFailed
from vstar_ray.export.cards import model_card
from vstar_ray.export.run_folder import Run
from vstar_ray.io import atomic_dir, atomic_write_text

DTYPES = ("bfloat16", "float16", "float32")


def export_model(run_dir: str | Path, out: str | Path, cycle: str = "last", dtype: str = "bfloat16") -> Path:
    if dtype not in DTYPES:
        raise InputError(f"--dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    out = Path(out)
    if out.exists():
        raise InputError(f"--out {out} exists: choose a new folder")
    run = Run.open(run_dir)
    k = run.cycle(cycle)
    checkpoint = run.checkpoint(k)
    trust = bool(run.config.get("model", {}).get("trust_remote_code", False))
    _, adapters = models.adapter_chain(str(checkpoint))
    base = run.config.get("model", {}).get("path") or "the run's seed model"  # the pretrained model of the run
    model = models.load_model(str(checkpoint), "cpu", dtype, trust).eval()
    processor = models.load_processor(str(checkpoint), trust)
    model.generation_config.eos_token_id = models.stop_token_ids(model, processor)
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        atomic_write_text(tmp / "README.md", model_card(run, k, base, len(adapters), dtype))
    return out


def push_to_hub(folder: Path, repo: str, private: bool = True) -> str:
    """Upload an exported folder with ``huggingface_hub`` (the token from ``HF_TOKEN`` or ``hf auth login``)."""
    from huggingface_hub import HfApi

    api = HfApi(token=os.environ.get("HF_TOKEN"))
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="vstar export")
    except Exception as e:  # huggingface_hub raises its own zoo: no token, no permission, no network
        raise WorkFailed(f"--push-to-hub {repo}: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
    return f"https://huggingface.co/{repo}"
