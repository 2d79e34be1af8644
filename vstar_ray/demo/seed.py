"""The demo's tiny seed video-LMM: a Qwen2-VL built from a config with a locally trained tokenizer.

It is pretrained briefly on a related task, in its own words: captions of other clips ("a big red disc
is visible only in the first half"), answers that describe what it sees, and hint-following, the only
place where it meets the labels' vocabulary ("large red disc at the beginning", "from 0.0 to 0.5").
So it perceives the clips and answers about them, but not in the labels' terms: the starting point
Video-STaR needs (``tasks.OWN_SIZE``). It is saved with ``save_pretrained`` and read back by the
pipeline through ``from_pretrained``, exactly like a real model id.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from vstar_ray import models, prompts
from vstar_ray.demo import tasks
from vstar_ray.demo.videos import ALL_CLIPS, Clip

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CAPTION_PROMPT = "Describe the video briefly."


def caption(clip: Clip) -> str:
    return tasks.own_description(clip)


def corpus() -> list[str]:
    """Every text the demo can produce, for training the tokenizer."""
    rng = random.Random(0)
    texts = [prompts.answer_prompt(q) for family in tasks.TEMPLATES.values() for q in family]
    for task in tasks.TASKS:
        for c in ALL_CLIPS:
            hint = tasks.labels(c, task)[0]
            texts += [prompts.rationalize_prompt(q, hint) for q in tasks.TEMPLATES[task]]
            texts += [tasks.fill(steps + conclusion, c) for steps, conclusion in tasks.REASONING[task]]
    texts += [caption(c) for c in ALL_CLIPS] + [CAPTION_PROMPT, "user", "assistant", "system"]
    rng.shuffle(texts)
    return texts


def build_tokenizer(vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus() * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left"
    )


def build_processor(tokenizer, frame_size: int):
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    pixels = frame_size * frame_size
    size = {"shortest_edge": pixels, "longest_edge": pixels}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(size=size, do_sample_frames=False, cap_pixels_per_frame=False),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer, seed: int):
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0},
        ),
        vision_config=dict(depth=2, embed_dim=64, hidden_size=128, num_heads=4, mlp_ratio=2),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    return model


def pretraining_examples(clips: list[Clip], frames: list[np.ndarray], qa_fraction: float, seed: int):
    """The related task, grounded in every example: each clip's caption; for ``qa_fraction`` of the clips,
    the answer to a demo question in the seed's own words (``tasks.own_answer``: no label); and hint-following,
    the clip's own label as the hint, answered with reasoning that concludes with it (``tasks.reasoning``)."""
    rng = random.Random(seed)
    examples = []
    for clip, video in zip(clips, frames):
        examples.append((video, CAPTION_PROMPT, caption(clip)))
        if rng.random() < qa_fraction:
            task = rng.choice(tasks.TASKS)
            q = rng.choice(tasks.TEMPLATES[task])
            examples.append((video, prompts.answer_prompt(q), tasks.own_answer(clip, task, rng)))
        task = rng.choice(tasks.TASKS)
        q = rng.choice(tasks.TEMPLATES[task])
        examples.append((video, prompts.rationalize_prompt(q, tasks.labels(clip, task)[0]),
                         tasks.reasoning(clip, task, rng)))
    return examples


def pretrain(model, processor, examples, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 20))
    model.train()
    losses = []
    for _ in range(steps):
        batch = rng.sample(examples, batch_size)
        inputs = models.training_batch(
            processor, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch], max_length=512
        ).inputs
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def save(model, processor, path: Path) -> None:
    model.save_pretrained(path)
    processor.save_pretrained(path)
