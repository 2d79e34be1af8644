"""Loading a video LMM and turning (frames, prompt[, answer]) into model inputs.

Everything goes through ``AutoProcessor``/``AutoModelForImageTextToText.from_pretrained`` and
the processor's chat template, so a local folder (the demo's tiny Qwen2-VL) and a hub id
(Qwen2-VL, Qwen2.5-VL, LLaVA-NeXT-Video, Video-LLaVA) take the same path. A folder holding a
peft adapter (``adapter_config.json``) is loaded on its base model and merged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

IGNORE_INDEX = -100


def torch_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_processor(path: str, trust_remote_code: bool = False):
    from transformers import AutoProcessor

    adapter = Path(path) / "adapter_config.json"
    if adapter.exists() and not (Path(path) / "preprocessor_config.json").exists():
        path = json.loads(adapter.read_text())["base_model_name_or_path"]
    return AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)


def load_model(path: str, device: str = "cpu", dtype: str = "auto", trust_remote_code: bool = False):
    from transformers import AutoModelForImageTextToText

    kwargs = {"dtype": torch_dtype(dtype, device), "trust_remote_code": trust_remote_code}
    adapter = Path(path) / "adapter_config.json"
    if adapter.exists():
        from peft import PeftModel

        base = json.loads(adapter.read_text())["base_model_name_or_path"]
        model = AutoModelForImageTextToText.from_pretrained(base, **kwargs)
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    else:
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    return model.to(device)


def _messages(prompt: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def prompt_text(processor, prompt: str) -> str:
    return processor.apply_chat_template(_messages(prompt), add_generation_prompt=True, tokenize=False)


def full_text(processor, prompt: str, answer: str) -> str:
    return processor.apply_chat_template(_messages(prompt, answer), add_generation_prompt=False, tokenize=False)


def _videos(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(f, dtype=np.uint8) for f in frames]


@torch.no_grad()
def generate(
    model,
    processor,
    frames: Sequence[np.ndarray],
    prompts: Sequence[str],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
) -> list[str]:
    """One batched ``generate`` call (left padding); returns the decoded answers."""
    if not prompts:
        return []
    processor.tokenizer.padding_side = "left"
    texts = [prompt_text(processor, p) for p in prompts]
    inputs = processor(text=texts, videos=_videos(frames), return_tensors="pt", padding=True).to(model.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(model.dtype)
    sampling = {"do_sample": True, "temperature": temperature} if do_sample else {"do_sample": False}
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    return [t.strip() for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]


def training_batch(
    processor, frames: Sequence[np.ndarray], prompts: Sequence[str], answers: Sequence[str], max_length: int
) -> dict[str, torch.Tensor]:
    """Model inputs with ``labels``: the loss covers the answer (and end-of-turn) tokens only.

    The prompt length is measured by processing the prompt alone, so the mask is right for any
    chat template and any number of video tokens; samples longer than ``max_length`` are cut.
    """
    processor.tokenizer.padding_side = "right"
    videos = _videos(frames)
    full = processor(
        text=[full_text(processor, p, a) for p, a in zip(prompts, answers)],
        videos=videos,
        return_tensors="pt",
        padding=True,
    )
    prompt_only = processor(text=[prompt_text(processor, p) for p in prompts], videos=videos, return_tensors="pt", padding=True)
    prompt_lens = prompt_only["attention_mask"].sum(dim=1)
    labels = full["input_ids"].clone()
    labels[full["attention_mask"] == 0] = IGNORE_INDEX
    for i, n in enumerate(prompt_lens.tolist()):
        labels[i, :n] = IGNORE_INDEX
    full["labels"] = labels
    if full["input_ids"].shape[1] > max_length:
        for key in ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "token_type_ids"):
            if key in full:
                full[key] = full[key][:, :max_length]
    return dict(full)
