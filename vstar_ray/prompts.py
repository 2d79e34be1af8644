"""Questions built from labels, and the prompts of Video-STaR: the answer prompt (the question with the
step-by-step request, what answers are generated with), the rationalization prompt (the label as a hint), and
which prompt training and held-out evaluation ask (``train.prompt``, ``eval.prompt``: the bare question, as the
paper trains and tests, or the answer prompt).

A question never contains the content words of the label it asks about; it is
chosen from a template family with an RNG seeded by the row id, so a manifest
is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from vstar_ray.errors import InputError

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
    "What is the person in the video doing?",
    "What activity is being performed here?",
    "Identify the action taking place in this video.",
    "What kind of activity does this clip capture?",
    "Which human action is recorded in this footage?",
    "What are the people in this video engaged in?",
    "Name the activity shown in the clip.",
    "What is the subject of this video doing?",
    "Summarize the action in this video in a few words.",
    "What would you call the activity in this clip?",
    "Looking at the frames, what is being done?",
    "What is the main thing happening on screen?",
    "Which action is demonstrated in this video?",
    "What type of action is visible here?",
    "What can be observed in this clip?",
    "What event is captured in this recording?",
    "What is the focus of the activity in this video?",
    "How would you label the action in this clip?",
    "What is someone doing in this footage?",
    "What is taking place in this short video?",
    "Which activity is the video about?",
    "What is the central action of this clip?",
    "What does the person in the clip perform?",
    "Tell me what activity this video shows.",
    "What action is being carried out?",
    "Describe what is being done in the clip.",
    "What happens in this video clip?",
    "What is the video mainly about?",
    "Can you recognize the activity in this video?",
    "What motion or activity dominates this video?",
    "Which action class fits this video best?",
    "From the video, what is the activity?",
    "What is being performed in front of the camera?",
    "What is shown happening over the course of the clip?",
    "What activity would you say this is?",
    "What is the main action you notice in this video?",
    "What is the video subject busy with?",
    "In a few words, what is going on here?",
    "What is the action recorded in this clip?",
    "What activity unfolds in this video?",
]

# Templates for the other label types; ``{name}`` fields are filled from the source's context.
TEMPLATES: dict[str, list[str]] = {
    "class": CLASS_QUESTIONS,
    "float": [
        "What score would this performance receive?",
        "How would the judges score what is shown in this video?",
        "Estimate the final score of this performance.",
        "What is the overall score for this attempt?",
        "Rate this performance with the score it would get.",
        "What final score does this video's performance earn?",
        "How many points is this performance worth?",
        "Judge this performance: what is its total score?",
        "What number best describes the score of this attempt?",
        "Based on its execution, what is this performance's score?",
    ],
    "difficulty": [
        "What is the degree of difficulty of this dive?",
        "How difficult is the dive shown, as its official degree of difficulty?",
        "What difficulty value would this dive be listed with?",
        "State the degree of difficulty of the dive in this video.",
    ],
    "after": [
        "In this dive, what comes right after the {step}?",
        "Which part of the dive immediately follows the {step}?",
        "What does the diver do next, after the {step}?",
    ],
    "before": [
        "In this dive, what comes right before the {step}?",
        "Which part of the dive immediately precedes the {step}?",
        "What does the diver do just before the {step}?",
    ],
    "timestamp": [
        "At what point of the clip, as a fraction from 0 to 1, does {event} happen?",
        "When does {event} happen? Answer with a fraction of the video length between 0 and 1.",
        "As a fraction of the clip's duration, when can {event} be seen?",
    ],
    "temporal_range": [
        "When does {event} happen? Give the start and end as fractions of the video between 0 and 1.",
        "During which part of the video does {event} take place? Answer as a start and end fraction (0 to 1).",
        "Between which two points of the clip, as fractions from 0 to 1, does {event} happen?",
        "Locate {event} in time: from which fraction of the video to which fraction (0 to 1)?",
        "At what fraction of the clip does {event} start and end (values between 0 and 1)?",
    ],
    "bbox": [
        "Where is the {object} at {moment}? Give its box as [x1, y1, x2, y2] in normalized coordinates.",
        "Locate the {object} at {moment} with a normalized bounding box [x1, y1, x2, y2].",
        "What is the bounding box of the {object} at {moment}? Use [x1, y1, x2, y2] between 0 and 1.",
        "At {moment}, which region holds the {object}? Answer with normalized corners [x1, y1, x2, y2].",
    ],
    "sentence": [
        "Describe what happens in this video in one sentence.",
        "Write a short caption for this clip.",
        "What is being done, and to which objects?",
        "Describe the interaction shown in the video.",
        "Explain in a sentence what the person does with the objects.",
        "Caption this video precisely.",
    ],
    "sentence_sequence": [
        "Describe the steps of this action in the order they happen.",
        "Break the action in this video down into its stages, in order.",
        "What are the successive phases of what is shown, from start to finish?",
        "List, in temporal order, the sub-actions performed in this clip.",
        "Walk through the action step by step, in the order it is performed.",
    ],
    "same_or_not": [
        "Are the two {things} the same?",
        "Is the {things} the same in both parts of the video?",
    ],
}


def answer_prompt(question: str) -> str:
    return ANSWER_PROMPT.format(question=question)


def prompt_for(question: str, style: str) -> str:
    """The prompt of ``style``: ``question`` (the bare question) or ``answer_prompt``."""
    return question if style == "question" else answer_prompt(question)


def eval_style(eval_cfg) -> str:
    """The held-out prompt (``eval.prompt``; auto: the bare question under the paper protocol)."""
    if eval_cfg.prompt != "auto":
        return eval_cfg.prompt
    return "question" if eval_cfg.protocol == "paper" else "answer_prompt"


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


def load_templates(path: str | None) -> dict[str, list[str]]:
    """The built-in templates, with the types a user's YAML file (``{type: [template, ...]}``) replaces."""
    from vstar_ray.io import read_yaml

    templates = {k: list(v) for k, v in TEMPLATES.items()}
    if not path:
        return templates
    raw = read_yaml(path, "templates") or {}
    if not isinstance(raw, dict):
        raise InputError(f"templates {path}: expected a mapping of label type -> list of questions")
    for kind, items in raw.items():
        if not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items):
            raise InputError(f"templates {path}: {kind!r} must be a non-empty list of strings")
        templates[str(kind)] = items
    return templates


def question(row_id: str, kind: str, seed: int = 0, templates: dict[str, list[str]] | None = None,
             avoid: tuple[dict, dict] | None = None, **fields) -> str:
    """A question for a label of type ``kind``, chosen reproducibly for ``row_id``; ``fields`` fill ``{name}``.

    With ``avoid=(labels, verifiers)`` the templates are tried in the row's seeded order and the first one
    that does not contain a content word of those labels is used (the last one tried when all do)."""
    family = (templates or TEMPLATES).get(kind)
    if not family:
        raise ValueError(f"no question templates for label type {kind!r}")
    rng = seeded_rng(seed, f"{row_id}:{kind}")
    first = rng.choice(family)
    text = _fill(first, fields)
    if avoid and leaked_words(text, *avoid):
        rest = [t for t in family if t != first]
        rng.shuffle(rest)
        for template in rest:
            text = _fill(template, fields)
            if not leaked_words(text, *avoid):
                break
    return text


def _fill(template: str, fields: dict) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError) as e:
        raise ValueError(f"template {template!r} needs field {e} that the source does not give") from e


def leaked_words(text: str, labels: dict[str, Any], verifiers: dict[str, str]) -> list[str]:
    """Content words of the textual labels (class/sentence types) that ``text`` contains: a question with
    any of them would give the answer away."""
    from vstar_ray.verify.checks import content_words

    said = set(content_words(text))
    leaked = []
    for name, value in labels.items():
        if verifiers.get(name) not in ("class", "sentence", "sentence_sequence"):
            continue
        names = [value] if isinstance(value, str) else value
        if verifiers.get(name) == "class" and isinstance(value, list):
            # a class with synonyms leaks only when every synonym's words are all in the text
            if any(set(content_words(n)) and set(content_words(n)) <= said for n in names):
                leaked += sorted(set(content_words(names[0])) & said)
            continue
        for n in names:
            leaked += [w for w in content_words(n) if w in said]
    return sorted(set(leaked))
