"""Tiny random-weight models of every video-LMM family vstar-ray supports, for tests.

Each is built from its family's own config class, with the family's own processor class, a byte-level BPE
tokenizer trained here, the special tokens the hub checkpoint's tokenizer carries and a chat template shaped
like the hub's, saved with ``save_pretrained`` and loaded back through ``from_pretrained`` like a hub id.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

# the chat templates as the hub checkpoints ship them (structure and the text around each turn)
CHATML_TEMPLATE = (  # Qwen2/2.5/3-VL Instruct, InternVL3-hf
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}{{ VIDEO }}{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_TEMPLATE = (  # LanguageBind/Video-LLaVA-7B-hf, llava-hf/LLaVA-NeXT-Video-7B-hf: no end of turn after the answer
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
ONEVISION_TEMPLATE = (  # llava-hf/llava-onevision-qwen2-7b-ov-hf: the assistant turn is not the generation prompt + text
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ '\n' + content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ '\n' + content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLVLM_TEMPLATE = (  # HuggingFaceTB/SmolVLM2-*-Video-Instruct
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'] is string %}"
    "{{': ' + message['content']}}{% else %}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}"
    "{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
QWEN_VIDEO = "'<|vision_start|><|video_pad|><|vision_end|>'"
QWEN_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
               "<|image_pad|>", "<|video_pad|>"]

CORPUS = [
    "Question: What is happening in the video? Can you explain step-by-step how one can arrive at this conclusion?",
    "Answer: a person is arm wrestling. Step one: two hands grip each other. Step two: that is arm wrestling.",
    "The disc is red and large. It is visible at the beginning, from 0.0 to 0.5 of the clip. The width is 44 pixels.",
    "USER: ASSISTANT: User: Assistant: system user assistant The answer is 12.5 seconds, frame from 00:01.",
]

# per family: what the test builds; TEST_FRAME_SIZE is a frame size each family's patching divides
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_next_video", "llava_onevision", "video_llava", "smolvlm",
            "internvl")
TEST_FRAME_SIZE = {"qwen2_vl": 56, "qwen2_5_vl": 56, "qwen3_vl": 64, "llava_next_video": 28, "llava_onevision": 28,
                   "video_llava": 28, "smolvlm": 32, "internvl": 28}


def _tokenizer(special: list[str], eos: str, pad: str, bos: str | None = None, extra: dict | None = None,
               unk: str | None = None):
    from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 8, trainer)
    kwargs = dict(tokenizer_object=tok, eos_token=eos, pad_token=pad, bos_token=bos, unk_token=unk)
    if extra:
        kwargs["extra_special_tokens"] = extra
    return PreTrainedTokenizerFast(**{k: v for k, v in kwargs.items() if v is not None})


def _text(tok, **overrides) -> dict:
    """A 2-layer decoder with the tokenizer's ids (Llama, Qwen2 or Qwen3 config keys alike)."""
    config = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  bos_token_id=tok.bos_token_id if tok.bos_token_id is not None else tok.pad_token_id,
                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    config.update(overrides)
    return config


def _ids(tok, *tokens: str) -> dict:
    return {t: tok.convert_tokens_to_ids(t) for t in tokens}


def build_qwen(family: str):
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor,
                              Qwen2VLProcessor, Qwen2VLVideoProcessor, Qwen3VLConfig,
                              Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor)

    tok = _tokenizer(QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    tokens = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    size = TEST_FRAME_SIZE[family]
    pixels = {"shortest_edge": size * size, "longest_edge": size * size}
    template = CHATML_TEMPLATE.replace("VIDEO", QWEN_VIDEO)
    if family == "qwen3_vl":
        text = _text(tok, head_dim=16, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                                        "rope_theta": 10000.0, "mrope_interleaved": True})
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=16,
                      num_position_embeddings=16, deepstack_visual_indexes=[1])
        config = Qwen3VLConfig(text_config=text, vision_config=vision, **tokens)
        model = Qwen3VLForConditionalGeneration(config)
        processor = Qwen3VLProcessor(
            image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16),
            video_processor=Qwen3VLVideoProcessor(size=pixels, patch_size=16, do_sample_frames=False),
            tokenizer=tok, chat_template=template)
        return model, processor
    text = _text(tok, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0})
    processor_kwargs = dict(
        image_processor=Qwen2VLImageProcessor(size=pixels),
        video_processor=Qwen2VLVideoProcessor(size=pixels, do_sample_frames=False),
        tokenizer=tok, chat_template=template)
    if family == "qwen2_5_vl":
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                      fullatt_block_indexes=[1], window_size=56)
        model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens))
        return model, Qwen2_5_VLProcessor(**processor_kwargs)
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2)
    model = Qwen2VLForConditionalGeneration(Qwen2VLConfig(text_config=text, vision_config=vision, **tokens))
    return model, Qwen2VLProcessor(**processor_kwargs)


def _clip_vision(size: int) -> dict:
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=size,
                patch_size=14, projection_dim=32)


def build_llava(family: str):
    """Video-LLaVA and LLaVA-NeXT-Video (CLIP + Llama, USER/ASSISTANT template, eos </s>), and LLaVA-OneVision
    (SigLIP + Qwen2, ChatML)."""
    import transformers as tf

    size = TEST_FRAME_SIZE[family]
    if family == "llava_onevision":
        tok = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"], eos="<|im_end|>",
                         pad="<|endoftext|>")
        ids = _ids(tok, "<image>", "<video>")
        vision = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, image_size=size, patch_size=14)
        config = tf.LlavaOnevisionConfig(
            vision_config=vision, text_config=dict(model_type="qwen2", **_text(tok)), image_token_index=ids["<image>"],
            video_token_index=ids["<video>"], image_grid_pinpoints=[[size, size]], vision_feature_layer=-1)
        image_kwargs = dict(size={"height": size, "width": size}, crop_size={"height": size, "width": size},
                            image_grid_pinpoints=[[size, size]])
        processor = tf.LlavaOnevisionProcessor(
            image_processor=tf.LlavaOnevisionImageProcessor(**image_kwargs),
            video_processor=tf.LlavaOnevisionVideoProcessor(size={"height": size, "width": size}),
            tokenizer=tok, num_image_tokens=(size // 14) ** 2, vision_feature_select_strategy="full",
            chat_template=ONEVISION_TEMPLATE)
        return tf.LlavaOnevisionForConditionalGeneration(config), processor
    tok = _tokenizer(["<unk>", "<s>", "</s>", "<image>", "<video>"], eos="</s>", pad="<unk>", bos="<s>", unk="<unk>")
    ids = _ids(tok, "<image>", "<video>")
    text = dict(model_type="llama", **_text(tok))
    crop = {"height": size, "width": size}
    if family == "video_llava":
        config = tf.VideoLlavaConfig(vision_config=dict(model_type="clip_vision_model", **_clip_vision(size)),
                                     text_config=text, image_token_index=ids["<image>"], video_token_index=ids["<video>"])
        processor = tf.VideoLlavaProcessor(
            image_processor=tf.VideoLlavaImageProcessor(size={"shortest_edge": size}, crop_size=crop),
            video_processor=tf.VideoLlavaVideoProcessor(size={"shortest_edge": size}, crop_size=crop),
            tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE)
        return tf.VideoLlavaForConditionalGeneration(config), processor
    config = tf.LlavaNextVideoConfig(
        vision_config=dict(model_type="clip_vision_model", **_clip_vision(size)), text_config=text,
        image_token_index=ids["<image>"], video_token_index=ids["<video>"], image_grid_pinpoints=[[size, size]],
        spatial_pool_stride=2)
    processor = tf.LlavaNextVideoProcessor(
        video_processor=tf.LlavaNextVideoVideoProcessor(size={"shortest_edge": size}, crop_size=crop),
        image_processor=tf.LlavaNextImageProcessor(size={"shortest_edge": size}, crop_size=crop,
                                                   image_grid_pinpoints=[[size, size]]),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", chat_template=LLAVA_TEMPLATE)
    return tf.LlavaNextVideoForConditionalGeneration(config), processor


def build_smolvlm(family: str):
    import transformers as tf

    size = TEST_FRAME_SIZE[family]
    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
               "<global-img>", "<video>"] + [f"<row_{r}_col_{c}>" for r in range(1, 4) for c in range(1, 4)]
    tok = _tokenizer(special, eos="<end_of_utterance>", pad="<|endoftext|>", bos="<|im_start|>")
    ids = _ids(tok, "<image>")
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=size,
                  patch_size=16)
    config = tf.SmolVLMConfig(vision_config=vision, text_config=dict(model_type="llama", **_text(tok)),
                              image_token_id=ids["<image>"], scale_factor=2)
    longest = {"longest_edge": size}
    processor = tf.SmolVLMProcessor(
        image_processor=tf.SmolVLMImageProcessor(size=longest, max_image_size=longest, do_image_splitting=False),
        video_processor=tf.SmolVLMVideoProcessor(size=longest, max_image_size=longest, do_sample_frames=False),
        tokenizer=tok, image_seq_len=(size // 16) ** 2 // 4, chat_template=SMOLVLM_TEMPLATE)
    return tf.SmolVLMForConditionalGeneration(config), processor


def build_internvl(family: str):
    import transformers as tf

    size = TEST_FRAME_SIZE[family]
    extra = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tok = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *extra.values()], eos="<|im_end|>",
                     pad="<|endoftext|>", extra=extra)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=[size, size], patch_size=[14, 14])
    config = tf.InternVLConfig(vision_config=vision, text_config=dict(model_type="qwen2", **_text(tok)),
                               image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), downsample_ratio=0.5,
                               image_seq_length=1)
    template = CHATML_TEMPLATE.replace("VIDEO", "'<video>\n'")
    processor = tf.InternVLProcessor(
        image_processor=tf.GotOcr2ImageProcessor(size={"height": size, "width": size}, crop_to_patches=False),
        video_processor=tf.InternVLVideoProcessor(size={"height": size, "width": size}, do_sample_frames=False),
        tokenizer=tok, image_seq_length=(size // 14) ** 2 // 4, chat_template=template)
    return tf.InternVLForConditionalGeneration(config), processor


BUILDERS = {"qwen2_vl": build_qwen, "qwen2_5_vl": build_qwen, "qwen3_vl": build_qwen, "llava_next_video": build_llava,
            "llava_onevision": build_llava, "video_llava": build_llava, "smolvlm": build_smolvlm,
            "internvl": build_internvl}


def build(family: str, out: str | Path, seed: int = 0) -> Path:
    """Build the tiny model of ``family`` and save it (weights, processor, generation config) to ``out``."""
    torch.manual_seed(seed)
    model, processor = BUILDERS[family](family)
    tok = processor.tokenizer
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@lru_cache(maxsize=None)
def built(family: str, root: str) -> Path:
    """``build`` once per family and folder (tests share one copy per session)."""
    out = Path(root) / family
    return out if (out / "config.json").exists() else build(family, out)


def build_chat_judge(out: str | Path, seed: int = 0) -> Path:
    """A tiny random-weight Qwen2 chat model (text only, ChatML template), to serve as a judge model in tests: loaded
    through ``AutoModelForCausalLM`` and vLLM like a hub judge; its replies are noise, so tests constrain them
    (structured outputs) or count them unparsed."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tok = _tokenizer(QWEN_TOKENS, eos="<|im_end|>", pad="<|endoftext|>")
    tok.chat_template = CHATML_TEMPLATE.replace("{{ VIDEO }}", "")
    # vLLM's CPU attention kernels have no head_dim 16 (``Unsupported CPU attention configuration``): 128 / 4 = 32.
    model = Qwen2ForCausalLM(Qwen2Config(**_text(tok, hidden_size=128, intermediate_size=256)))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
