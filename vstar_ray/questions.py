"""Questions built from labels, and the two prompts of Video-STaR.

A question never contains the content words of the label it asks about; it is
chosen from a template family with an RNG seeded by the row id, so a manifest
is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

ANSWER_PROMPT = "Question: {question}\nCan you explain step-by-step how one can arrive at this conclusion?"
RATIONALIZE_PROMPT = (
    "Question: {question}\nAnswer: {hint}.\nCan you explain step-by-step how one can arrive at this conclusion?"
)

CLASS_QUESTIONS = [
    "What is happening in this video?",
    "What action does the video show?",
    "Which activity can be seen in this clip?",
    "What is going on in the video?",
    "Describe the main action of this video.",
    "What does the video depict?",
    "Can you tell what takes place in the clip?",
    "What is the main event shown in this video?",
    "Which action best describes this video?",
    "What do you see happening in this clip?",
]


def answer_prompt(question: str) -> str:
    return ANSWER_PROMPT.format(question=question)


def rationalize_prompt(question: str, labels: dict[str, Any]) -> str:
    return RATIONALIZE_PROMPT.format(question=question, hint=render_label(labels))


def render_label(labels: dict[str, Any]) -> str:
    """The hint of label rationalization: ``key: value. key: value`` (one label: just the value)."""
    if len(labels) == 1:
        return _render_value(next(iter(labels.values())))
    return ". ".join(f"{k}: {_render_value(v)}" for k, v in labels.items())


def _render_value(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[0]  # a class label with synonyms: the first is the canonical name
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def seeded_rng(seed: int, key: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def class_question(row_id: str, seed: int = 0, templates: list[str] | None = None) -> str:
    """A question about a class label, chosen reproducibly for ``row_id``."""
    return seeded_rng(seed, row_id).choice(templates or CLASS_QUESTIONS)
