"""The demo kit: its label types verify only their own answers, its seed model speaks in its own words and loads
through the auto classes, and the loss mask on it covers the answer only."""

import json
import random

import numpy as np
import pyarrow.parquet as pq

from vstar_ray import models, prompts
from vstar_ray.demo import tasks
from vstar_ray.demo.videos import ALL_CLIPS, THRESHOLDS
from vstar_ray.verify import load_thresholds, verify_labels
from vstar_ray.verify.checks import content_words


def kit_thresholds() -> dict:
    """The verifier thresholds of the demo kit (its thresholds.yaml: the defaults with ``videos.THRESHOLDS``)."""
    thresholds = load_thresholds(None)
    for name, params in THRESHOLDS.items():
        thresholds[name].update(params)
    return thresholds


def test_demo_labels_verify_only_their_own_answers():
    """Each demo label type: the reasoning answer for a clip verifies against that clip's label and not
    against a clip that differs in what the type asks; "from 0 to 1" is no way around the temporal_range."""
    rng = random.Random(0)
    thresholds = kit_thresholds()
    for task in tasks.TASKS:
        for clip in ALL_CLIPS:
            labels, verifiers = tasks.labels(clip, task)
            assert prompts.question("x", task, templates=tasks.TEMPLATES)
            for other in ALL_CLIPS:
                other_labels = tasks.labels(other, task)[0]
                verdict = verify_labels("x", tasks.reasoning(other, task, rng), labels, verifiers, thresholds)
                assert verdict["verified"] == (other_labels == labels), (task, clip, other)
            if task == "temporal_range":
                for lazy in ("It is visible from 0 to 1.", "between 0.0 and 1.0", "[0.0, 1.0]"):
                    assert not verify_labels("x", lazy, labels, verifiers, thresholds)["verified"]


def test_the_seed_s_own_words_never_verify_a_class_or_time_label():
    """The demo seed describes clips in its own words and meets the labels' vocabulary only in hints
    (``tasks.OWN_SIZE``): what it says before any cycle verifies no class or temporal_range label, whichever
    template it picks, while its width answers do."""
    thresholds = kit_thresholds()
    for clip in ALL_CLIPS:
        for i in range(len(tasks.REASONING["class"])):
            for task in tasks.TASKS:
                own = tasks.own_answer(clip, task, random.Random(i))
                for other in ALL_CLIPS:
                    labels, verifiers = tasks.labels(other, task)
                    verified = verify_labels("x", own, labels, verifiers, thresholds)["verified"]
                    assert verified == (task == "float" and other.width == clip.width), (task, own, labels)
        assert not set(content_words(tasks.own_description(clip))) & {"large", "small", "beginning", "middle", "end"}


def test_loss_mask_covers_answer_only(small_kit):
    processor = models.load_processor(str(small_kit / "seed"))
    frames = [np.zeros((8, 56, 56, 3), np.uint8)] * 2
    prompts = ["Question: What is happening?", "Question: What does the video depict? Please tell"]
    answers = ["A red circle.", "A blue square moving up."]
    batch = models.training_batch(processor, frames, prompts, answers, max_length=512).inputs
    tok = processor.tokenizer
    for i, answer in enumerate(answers):
        kept = batch["labels"][i][batch["labels"][i] != models.IGNORE_INDEX]
        text = tok.decode(kept)
        assert text.startswith(answer), text  # the first answer token is trained, no prompt token is
        assert text.endswith("<|im_end|>\n") or text.endswith("<|im_end|>")


def test_seed_model_loads_through_auto_classes(small_kit):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(small_kit / "seed")
    processor = AutoProcessor.from_pretrained(small_kit / "seed")
    rows = pq.read_table(small_kit / "heldout.parquet").to_pylist()
    assert json.loads(rows[0]["verifiers"]) == {"action": "class"}
    from vstar_ray.data.video import decode_clip

    frames = [decode_clip(str(small_kit / r["video"]), 8, 56).frames for r in rows[:3]]
    out = models.generate(model, processor, frames, [prompts.answer_prompt(r["question"]) for r in rows[:3]],
                          32, False, 1.0)
    assert len(out) == 3 and all(isinstance(o, str) and o for o in out)
