"""The video-LMM families vstar-ray is tested with, and what is particular to each.

Everything a run needs from a family is read from its processor and config at run time (``models``: chat
format, end-of-turn token, video tokens; ``train.lora_targets``: the language model's layers). This table holds
the rest: the hub ids a user types, how a clip's frame times reach the model, and the frame count a video
encoder was trained with where it is fixed. ``tests/test_families.py`` runs every family here through eval,
training (full and LoRA) and reload, on tiny random-weight models built from each family's config class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vstar_ray.errors import InputError


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


QWEN3_VIDEO_PIXELS = 32 * 32 * 768  # Qwen3-VL's video processor: pixels of a whole clip (frames x height x width)


def _qwen_grid(vision, num_frames: int, frame_size: int, clip_pixels: int | None) -> int:
    """Vision patches of a clip for the Qwen families: frames resized to a multiple of patch x merge (Qwen3-VL:
    shrunk first until the clip holds at most ``clip_pixels``), frames grouped by ``temporal_patch_size``."""
    patch, merge, temporal = vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size
    factor, frames = patch * merge, math.ceil(num_frames / temporal) * temporal
    side = max(1, round(frame_size / factor)) * factor
    if clip_pixels and frames * side * side > clip_pixels:
        side = max(1, math.floor(frame_size / math.sqrt(frames * frame_size**2 / clip_pixels) / factor)) * factor
    return frames // temporal * (side // patch) ** 2


def video_tokens(config, num_frames: int, frame_size: int, clip_pixels: int | None = None) -> tuple[int, int]:
    """``(tokens the language model sees, patches the vision tower runs over)`` for one clip, from the family's
    patching (timestamps and frame separators in the text are not counted). ``clip_pixels``: Qwen3-VL's
    per-clip pixel budget, when its processor is not the hub's (``QWEN3_VIDEO_PIXELS``)."""
    kind, vision = config.model_type, getattr(config, "vision_config", None)
    if kind in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        budget = (clip_pixels or QWEN3_VIDEO_PIXELS) if kind == "qwen3_vl" else None
        patches = _qwen_grid(vision, num_frames, frame_size, budget)
        return patches // vision.spatial_merge_size**2, patches
    first = lambda v: v[0] if isinstance(v, (list, tuple)) else v  # noqa: E731  (InternVL: [h, w])
    per_side = first(vision.image_size) // first(vision.patch_size)  # these families resize frames to image_size
    if kind == "video_llava":  # every patch and the class token of every frame
        return num_frames * (per_side**2 + 1), num_frames * (per_side**2 + 1)
    if kind == "llava_next_video":  # pooled by spatial_pool_stride
        return num_frames * (per_side // config.spatial_pool_stride) ** 2, num_frames * (per_side**2 + 1)
    if kind == "llava_onevision":  # pooled to half the side (rounded up), one newline token after the video
        return num_frames * math.ceil(per_side / 2) ** 2 + 1, num_frames * per_side**2
    if kind == "internvl":  # pixel shuffle by downsample_ratio
        return num_frames * int(per_side**2 * config.downsample_ratio**2), num_frames * per_side**2
    if kind == "smolvlm":  # pixel shuffle by scale_factor
        return num_frames * per_side**2 // config.scale_factor**2, num_frames * per_side**2
    raise InputError(f"the patching of model type {kind!r} is not known to vstar plan")


def _qwen2_vl_7b():
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        text_config=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                         num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16, mlp_ratio=4, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2))


def _video_llava_7b():
    from transformers import VideoLlavaConfig

    return VideoLlavaConfig(text_config=dict(model_type="llama", vocab_size=32064))  # the defaults: Vicuna-7B, CLIP-L/14


# The architecture of the checkpoints the shipped 7B configs name, from their config.json on the hub, for
# ``vstar plan`` on a machine that cannot reach the hub (a local config.json always wins). Published sizes:
# Qwen2-VL-7B 8.3B (a 675M ViT + a 7.6B LLM; Wang et al. 2024, arXiv:2409.12191, Table 1); Video-LLaVA-7B
# Vicuna-7B (6.74B) + two CLIP ViT-L/14 towers (0.30B each) + a projector (Lin et al. 2023, arXiv:2311.10122).
REFERENCE_CONFIGS = {"Qwen/Qwen2-VL-7B-Instruct": _qwen2_vl_7b, "LanguageBind/Video-LLaVA-7B-hf": _video_llava_7b}
