"""Loading a video LMM and turning (clip, prompt[, answer]) into model inputs, for every supported family.

Everything goes through ``AutoProcessor``/``AutoModelForImageTextToText.from_pretrained`` and the processor's
chat template, so a local folder (the demo's tiny Qwen2-VL) and a hub id take the same path. What differs
between families is read from the processor itself, never special-cased here:

- ``chat_format``: where an answer starts after the generation prompt and which token ends it (``<|im_end|>``,
  ``<end_of_utterance>``, or the tokenizer's ``</s>`` for ``USER: … ASSISTANT:`` templates that write none);
  the training loss always covers that token, and generation stops on it.
- frame times: every clip's ``video_metadata`` (source fps, which frames were sampled) reaches the processor,
  so Qwen2.5-VL's temporal positions and Qwen3-VL's and SmolVLM2's timestamps in the prompt are the clip's own.
- a training sample is never cut inside its prompt or video: only the answer is shortened to ``max_length``,
  and a sample whose prompt alone does not fit is left out (counted).

A folder holding a peft adapter (``adapter_config.json``) is loaded on its base model and merged; the base may
itself be an adapter folder (LoRA cycles that continue from the last model), merged in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vstar_ray.errors import InputError

IGNORE_INDEX = -100
ADAPTER_CONFIG = "adapter_config.json"
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")
MAX_ADAPTER_CHAIN = 64
TEXT_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "token_type_ids")  # one entry per token


def torch_dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def adapter_chain(path: str) -> tuple[str, list[str]]:
    """The pretrained model under ``path`` and the adapter folders to merge on it, oldest first."""
    chain: list[str] = []
    while (Path(path) / ADAPTER_CONFIG).exists():
        if path in chain or len(chain) >= MAX_ADAPTER_CHAIN:
            raise InputError(f"adapter {chain[0]}: its chain of base models loops or is too long ({' -> '.join(chain)})")
        chain.insert(0, path)
        base = json.loads((Path(path) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
        if not base:
            raise InputError(f"adapter {path}: {ADAPTER_CONFIG} names no base_model_name_or_path")
        path = base
    return path, chain


def model_type(path: str, trust_remote_code: bool = False) -> str:
    """``model_type`` of the model at ``path`` (its config only: no weights are read)."""
    from transformers import AutoConfig

    base, _ = adapter_chain(path)
    return AutoConfig.from_pretrained(base, trust_remote_code=trust_remote_code).model_type


def load_processor(path: str, trust_remote_code: bool = False):
    """The processor saved with a model; an adapter folder without one uses its base model's."""
    from transformers import AutoProcessor

    base, chain = adapter_chain(path)
    with_processor = [p for p in reversed(chain) if any((Path(p) / f).exists() for f in PROCESSOR_FILES)]
    return AutoProcessor.from_pretrained(with_processor[0] if with_processor else base,
                                         trust_remote_code=trust_remote_code)


def load_model(path: str, device: str = "cpu", dtype: str = "auto", trust_remote_code: bool = False):
    from transformers import AutoModelForImageTextToText

    base, chain = adapter_chain(path)
    model = AutoModelForImageTextToText.from_pretrained(
        base, dtype=torch_dtype(dtype, device), trust_remote_code=trust_remote_code)
    for adapter in chain:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device)


def _messages(prompt: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def prompt_text(processor, prompt: str) -> str:
    """The generation prompt: the user turn with the video and ``prompt``, and the assistant turn's opening."""
    return processor.apply_chat_template(_messages(prompt), add_generation_prompt=True, tokenize=False)


@dataclass(frozen=True)
class ChatFormat:
    answer_prefix: str  # text between the generation prompt and the answer (" " after "ASSISTANT:")
    answer_suffix: str  # what follows an answer, starting with the end-of-turn token
    end_of_turn_id: int  # the token that ends an answer: trained, and generation stops on it


ANSWER_MARK = "VSTARANSWERMARK"


def chat_format(processor) -> ChatFormat:
    """How this model's chat template frames an answer, read from the template itself (cached on the processor).

    A training sample is the generation prompt, then ``answer_prefix + answer + answer_suffix``: exactly what the
    model sees and produces at generation time, whatever the template writes for a past assistant turn (some
    differ from the generation prompt). The suffix is the template's text after an answer when it starts with a
    special token (``<|im_end|>\\n``); templates that end an answer with plain text (``USER: … ASSISTANT: a ``)
    get the tokenizer's ``eos_token``, so a finetuned model learns to stop."""
    cached = getattr(processor, "_vstar_chat_format", None)
    if cached is not None:
        return cached
    tok = processor.tokenizer
    prompt = prompt_text(processor, "Q")
    full = processor.apply_chat_template(_messages("Q", ANSWER_MARK), add_generation_prompt=False, tokenize=False)
    before, _, after = full.partition(ANSWER_MARK)
    prefix = before[len(prompt):] if before.startswith(prompt) else ""
    specials = sorted(set(tok.all_special_tokens) | set(tok.get_added_vocab()), key=len, reverse=True)
    end = next((s for s in specials if s and after.startswith(s)), None)
    if end is None:
        if not tok.eos_token:
            raise ValueError("cannot tell how an answer ends: the chat template writes no special token after an "
                             "answer and the tokenizer has no eos_token")
        end, after = tok.eos_token, tok.eos_token
    fmt = ChatFormat(prefix, after, tok.convert_tokens_to_ids(end))
    processor._vstar_chat_format = fmt
    return fmt


def video_metadata(fps: float, frame_index: Sequence[int], clip_frames: int) -> dict | None:
    """A decoded clip's timing as the processors' ``video_metadata``: frame indices and times within the clip
    window. None when the source's frame rate is unknown (the processor then assumes its default)."""
    if not fps or fps <= 0:
        return None
    return {"fps": float(fps), "frames_indices": [int(i) for i in frame_index], "total_num_frames": int(clip_frames),
            "duration": float(clip_frames) / float(fps)}


def _process(processor, texts: list[str], videos: list[np.ndarray], metadata: Sequence[dict | None] | None,
             padding_side: str):
    """The processor over texts and clips; frames are already sampled, and each clip's timing goes along.
    ``padding_side`` is passed on each call: some processors (InternVL) set their own default."""
    entries = [m if m is not None else {"total_num_frames": len(v), "frames_indices": list(range(len(v)))}
               for v, m in zip(videos, metadata or [None] * len(videos))]
    return processor(text=texts, videos=videos, video_metadata=entries, do_sample_frames=False, return_tensors="pt",
                     padding=True, padding_side=padding_side)


def _videos(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(f, dtype=np.uint8) for f in frames]


def stop_token_ids(model, processor) -> list[int]:
    """Generation stops on the answer's end-of-turn token as well as on the model's own eos ids."""
    configured = model.generation_config.eos_token_id
    configured = configured if isinstance(configured, list) else [configured] if configured is not None else []
    return list(dict.fromkeys([chat_format(processor).end_of_turn_id, *configured]))


@torch.no_grad()
def generate(
    model,
    processor,
    frames: Sequence[np.ndarray],
    prompts: Sequence[str],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    metadata: Sequence[dict | None] | None = None,
) -> list[str]:
    """One batched ``generate`` call (left padding); returns the decoded answers."""
    if not prompts:
        return []
    texts = [prompt_text(processor, p) for p in prompts]
    inputs = _process(processor, texts, _videos(frames), metadata, "left").to(model.device)
    for key in ("pixel_values_videos", "pixel_values"):
        if key in inputs:
            inputs[key] = inputs[key].to(model.dtype)
    sampling = {"do_sample": True, "temperature": temperature} if do_sample else {"do_sample": False}
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, eos_token_id=stop_token_ids(model, processor),
                         **sampling)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    return [t.strip() for t in processor.batch_decode(new_tokens, skip_special_tokens=True)]


@dataclass
class TrainingBatch:
    inputs: dict[str, torch.Tensor]  # model inputs with ``labels``
    label_tokens: int  # tokens the loss covers
    truncated: int  # samples whose answer was cut at max_length (their end-of-turn token is lost)
    too_long: int  # samples left out: their prompt and video alone reach max_length
    samples: int  # samples given (those left out included)


def training_batch(
    processor, frames: Sequence[np.ndarray], prompts: Sequence[str], answers: Sequence[str], max_length: int,
    metadata: Sequence[dict | None] | None = None,
) -> TrainingBatch:
    """Model inputs with ``labels``: the loss covers the answer and its end-of-turn token (``chat_format``).

    The prompt length is measured by processing the prompt alone, so the mask is right for any chat template
    and any number of video tokens. A sample is never cut inside its prompt or video: a longer one loses the end
    of its answer, and one whose prompt alone reaches ``max_length`` is left out. If that leaves nothing, the
    shortest sample stays with no label (a zero loss) so that every FSDP rank still takes the step."""
    fmt = chat_format(processor)
    videos = _videos(frames)
    metadata = list(metadata) if metadata is not None else [None] * len(videos)
    texts = [prompt_text(processor, p) for p in prompts]
    prompt_lens = _process(processor, texts, videos, metadata, "right")["attention_mask"].sum(dim=1).tolist()
    fits = [i for i, n in enumerate(prompt_lens) if n < max_length]
    keep = fits or [int(np.argmin(prompt_lens))]
    full = _process(processor, [texts[i] + fmt.answer_prefix + answers[i] + fmt.answer_suffix for i in keep],
                    [videos[i] for i in keep], [metadata[i] for i in keep], "right")
    labels = full["input_ids"].clone()
    labels[full["attention_mask"] == 0] = IGNORE_INDEX
    for row, i in enumerate(keep):
        labels[row, : prompt_lens[i] if fits else None] = IGNORE_INDEX
    full["labels"] = labels
    truncated = int((full["attention_mask"].sum(dim=1) > max_length).sum()) if fits else 0
    if fits and full["input_ids"].shape[1] > max_length:
        for key in TEXT_KEYS:
            if key in full:
                full[key] = full[key][:, :max_length]
    return TrainingBatch(dict(full), int((full["labels"] != IGNORE_INDEX).sum()), truncated, len(prompts) - len(fits),
                         len(prompts))


def prompt_tokens(processor, num_frames: int, frame_size: int, prompt: str = "Question: What happens?") -> dict:
    """Tokens of one generation prompt with a clip of ``num_frames`` at ``frame_size``: all, and the video's."""
    clip = np.zeros((num_frames, frame_size, frame_size, 3), dtype=np.uint8)
    meta = video_metadata(30.0, range(0, 30 * num_frames, 30), 30 * num_frames)
    inputs = _process(processor, [prompt_text(processor, prompt)], [clip], [meta], "right")
    ids = inputs["input_ids"][0]
    video_ids = {getattr(processor, name, None) for name in ("video_token_id", "image_token_id")} - {None}
    return {"total": int(ids.numel()), "video": int(sum((ids == i).sum() for i in video_ids))}
