"""Questions built from labels never give the label away, are chosen reproducibly, and the hint of
rationalization renders the labels."""

from vstar_ray import prompts
from vstar_ray.demo.videos import ALL_CLIPS
from vstar_ray.verify.checks import content_words


def test_questions_never_contain_label_words():
    for clip in ALL_CLIPS:
        for q in prompts.CLASS_QUESTIONS:
            assert not set(content_words(q)) & set(content_words(clip.label)), (q, clip.label)


def test_question_choice_is_reproducible():
    assert prompts.class_question("vid-1", 3) == prompts.class_question("vid-1", 3)
    assert len({prompts.class_question(f"vid-{i}") for i in range(100)}) > 5


def test_rationalization_hint_rendering():
    assert prompts.render_label({"action": "arm wrestling"}) == "arm wrestling"
    assert prompts.render_label({"action": "diving", "score": 88.0}) == "action: diving. score: 88.0"
    assert "Answer: arm wrestling." in prompts.rationalize_prompt("What happens?", {"a": "arm wrestling"})
