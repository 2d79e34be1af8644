"""The demo's three label types: what each clip is asked, its label, and a reasoning answer for it.

- ``class``: the action class (``action``: "large red disc at the beginning"), class verifier;
- ``temporal_range``: when the disc is visible (``visible``: ``[0.25, 0.75]``), temporal_range verifier;
- ``float``: the disc's width in pixels (``width``: 44), float verifier.

A clip gets one of them (``TASKS[i % 3]`` in the kit), so every type has a third of the videos and its
own held-out accuracy. The reasoning texts are what the seed is pretrained on (its own answers, and
hint-following) and what tests use as answers that verify.
"""

from __future__ import annotations

import random

from vstar_ray import prompts
from vstar_ray.demo.videos import SIZES, WHEN, Clip

TASKS = ("class", "temporal_range", "float")
LABEL_KEY = {"class": "action", "temporal_range": "visible", "float": "width"}

TIME_QUESTIONS = [
    "When is the disc visible? Give the start and end as fractions of the video between 0 and 1.",
    "During which part of the clip can the disc be seen? Answer with a start and end fraction (0 to 1).",
    "Between which two points of the video, as fractions from 0 to 1, does the disc appear?",
    "From which fraction of the clip to which fraction (0 to 1) is the disc on screen?",
    "At what fractions of the video (0 to 1) does the disc appear and disappear?",
]
WIDTH_QUESTIONS = [
    "How wide is the disc, in pixels?",
    "What is the width of the disc in pixels?",
    "Estimate the diameter of the disc in pixels.",
    "How many pixels across is the disc?",
    "What is the disc's width, measured in pixels?",
]
TEMPLATES = {"class": prompts.CLASS_QUESTIONS, "temporal_range": TIME_QUESTIONS, "float": WIDTH_QUESTIONS}

# The seed's own words for what it sees: its captions and its answers before any cycle use them. The labels use the
# dataset's words (large/small, beginning/middle/end, fractions of the clip), which the seed meets only in hints,
# as a real video LMM meets Kinetics' class names: Video-STaR has to teach it the labels' vocabulary, grounded in
# what it perceives. No word of one vocabulary passes the class verifier for a word of the other.
OWN_SIZE = {"small": "little", "large": "big"}
OWN_WHEN = {"beginning": "only in the first half", "middle": "only around the centre", "end": "only in the second half"}

# A reasoning answer is steps (what the disc looks like, in the seed's words) and a conclusion that states the label.
REASONING = {
    "class": [
        ("First, the colour of the disc: {color}. Next, its size: {size}. Then, when it can be seen: {seen}.",
         " So the answer is {label}."),
        ("The disc is {color} and {size}, and it is visible {seen}.", " Therefore: {label}."),
        ("Step 1: the disc is {color}. Step 2: it is {size}. Step 3: it appears {seen}.", " In short: {label}."),
    ],
    "temporal_range": [
        ("First, when the disc can be seen: {seen}.", " So it is visible from {start} to {end} of the video."),
        ("The disc appears {seen}.", " It shows up at {start} of the clip and is gone at {end}. Therefore: {start} to {end}."),
        ("Step one: the disc is on screen {seen}.", " Step two: that part of the clip runs from {start} to {end}."),
    ],
    "float": [
        ("First, the size of the disc: {size}.", " A {size} disc is {width} pixels wide. So the width is {width}."),
        ("The disc looks {size},", " so it measures about {width} pixels across. Width: {width}."),
        ("Step one: the disc is {size}.", " Step two: a {size} disc spans {width} pixels. Answer: {width}."),
    ],
}
OWN_CONCLUSION = {"float"}  # pixel widths are no dataset vocabulary: the seed concludes those on its own


def labels(clip: Clip, task: str) -> tuple[dict, dict]:
    """The manifest ``labels`` and ``verifiers`` of ``clip`` asked about ``task``."""
    value = {"class": clip.label, "temporal_range": clip.span, "float": clip.width}[task]
    return {LABEL_KEY[task]: value}, {LABEL_KEY[task]: task}


def question(row_id: str, task: str, seed: int) -> str:
    return prompts.question(row_id, task, seed, templates=TEMPLATES)


def reasoning(clip: Clip, task: str, rng: random.Random) -> str:
    """A step-by-step answer about ``clip`` that ends with its ``task`` label."""
    steps, conclusion = rng.choice(REASONING[task])
    return fill(steps + conclusion, clip)


def own_answer(clip: Clip, task: str, rng: random.Random) -> str:
    """What the seed answers about ``clip`` in its own words: the steps, and a conclusion only where it needs no
    dataset vocabulary (``OWN_CONCLUSION``)."""
    steps, conclusion = rng.choice(REASONING[task])
    return fill(steps + conclusion if task in OWN_CONCLUSION else steps, clip)


def own_description(clip: Clip) -> str:
    return fill("A {size} {color} disc is visible {seen}.", clip)


def fill(template: str, clip: Clip) -> str:
    start, end = clip.span
    return template.format(color=clip.color, size=OWN_SIZE[clip.size], seen=OWN_WHEN[clip.when], label=clip.label,
                           start=start, end=end, width=clip.width)


def clip_for(labels: dict) -> tuple[Clip, str]:
    """A clip that has these demo labels, and the task they belong to (attributes no label fixes are
    taken as red / small / beginning: the reasoning of a task never mentions them)."""
    (key, value), = labels.items()
    task = {v: k for k, v in LABEL_KEY.items()}[key]
    if task == "class":
        return Clip.from_label(value), task
    if task == "temporal_range":
        return next(Clip("red", "small", w) for w in WHEN if Clip("red", "small", w).span == list(value)), task
    return next(Clip("red", s, "beginning") for s in SIZES if Clip("red", s, "beginning").width == value), task


def answer_for(labels: dict, rng: random.Random) -> str:
    """A reasoning answer that verifies against a demo row's ``labels`` (tests, benchmarks)."""
    clip, task = clip_for(labels)
    return reasoning(clip, task, rng)
