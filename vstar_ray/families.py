"""The video-LMM families vstar-ray is tested with, and what is particular to each.

Everything a run needs from a family is read from its processor and config at run time (``models``: chat
format, end-of-turn token, video tokens; ``train.lora_targets``: the language model's layers). This table holds
the rest: the hub ids a user types, how a clip's frame times reach the model, and the frame count a video
encoder was trained with where it is fixed. ``tests/test_families.py`` runs every family here through eval,
training (full and LoRA) and reload, on tiny random-weight models built from each family's config class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    model_type: str  # config.json's model_type
    name: str
    hub_ids: tuple[str, ...]
    frame_times: str  # how a clip's timing reaches the model: none | positions (temporal position ids) | prompt
    trained_frames: int = 0  # frames per clip the video encoder was trained with, where it is fixed (0: any)


FAMILIES = {f.model_type: f for f in (
    Family("video_llava", "Video-LLaVA (the paper's base)", ("LanguageBind/Video-LLaVA-7B-hf",), "none", 8),
    Family("qwen2_vl", "Qwen2-VL", ("Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-7B-Instruct"), "none"),
    Family("qwen2_5_vl", "Qwen2.5-VL", ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct"), "positions"),
    Family("qwen3_vl", "Qwen3-VL", ("Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-8B-Instruct"), "prompt"),
    Family("llava_onevision", "LLaVA-OneVision",
           ("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava-hf/llava-onevision-qwen2-7b-ov-hf"), "none"),
    Family("llava_next_video", "LLaVA-NeXT-Video", ("llava-hf/LLaVA-NeXT-Video-7B-hf",), "none"),
    Family("internvl", "InternVL3", ("OpenGVLab/InternVL3-1B-hf", "OpenGVLab/InternVL3-8B-hf"), "none"),
    Family("smolvlm", "SmolVLM2", ("HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "HuggingFaceTB/SmolVLM2-2.2B-Instruct"),
           "prompt"),
)}


def family(model_type: str) -> Family | None:
    return FAMILIES.get(model_type)
