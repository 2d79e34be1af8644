"""The items of the paper's adapted test sets, built as the reference builders build them (github orrzohar/Video-STaR,
``videostar/generation_scripts/data_gen_utils.py``: ``STARB_dataset``, ``FineDiving_dataset``), with a seed.

STAR, per question of ``STAR_val.json``:
- ``:qa`` the open-ended QA (the question, the correct choice as a ``sentence`` label), on the clip window;
- ``:actions`` which actions happen between the first and last situation (``sentence``, the actions in the order
  they first appear), ``:when`` when those actions happen and ``:when_qa`` when the QA's event happens (both
  ``temporal_range``, fractions of the whole video);
- ``:object`` which object is in a box at a moment (``class``) and ``:compare`` which objects are in two boxes
  and whether they are the same (``class``, ``class``, ``same_or_not``), on the clip window, boxes normalized
  after padding the frame to a square as the reference does.

FineDiving, per dive of ``test_split.pkl``: ``:after`` and ``:before`` (the first two sub-actions, ``sentence``),
``:sequence`` (``sentence_sequence``), ``:aqa`` (the sequence and the final score; the question asks the degree of
difficulty too) and
``:score`` (``float``).

Kinetics: the class question of each clip of the validation set (the ``vstar`` items; a seeded subset with
``--size``). docs/data.md lists every difference from the reference and why.
"""

from __future__ import annotations

from typing import Iterator

from vstar_ray.prompts import seeded_rng

# our wording of the reference's template families (the reference's lists are not copied)
TEMPLATES: dict[str, list[str]] = {
    "star_actions": ["What activity occurs between {t1} and {t2} of the video?",
                     "Which actions take place from {t1} to {t2} of the video (as fractions of its length)?",
                     "Describe what is done between {t1} and {t2} of the clip.",
                     "Between the points {t1} and {t2} of the video, what is the person doing?"],
    "star_when": ["When, as a range from 0 to 1 of the video, does '{actions}' happen?",
                  "Give the start and end of '{actions}' as fractions of the video between 0 and 1.",
                  "During which part of the video, normalized from 0 to 1, does '{actions}' take place?"],
    "star_when_qa": ["Find the part of the video that matches the question '{q}' with the answer '{a}'. Give its "
                     "start and end as fractions of the video between 0 and 1.",
                     "When does the situation of '{q}' answered by '{a}' happen? Answer with a normalized range "
                     "from 0 to 1."],
    "star_object": ["At the normalized time {time}, what object is inside the bounding box {box}?",
                    "Which object is in the box {box} at {time} of the clip?",
                    "Name the object within the bounding box {box} at the normalized timestamp {time}."],
    "star_compare": ["What is in the bounding box {box1} at time {time1}, and what is in {box2} at time {time2}? Are "
                     "they the same kind of object?",
                     "Name the objects in {box1} at {time1} and in {box2} at {time2}. Is it the same object type?"],
    "dive_after": ["What does the diver do right after the {step}?", "Which part of the dive follows the {step}?",
                   "After the {step}, what comes next in this dive?"],
    "dive_before": ["What does the diver do right before the {step}?", "Which part of the dive precedes the {step}?",
                    "Before the {step}, what happens in this dive?"],
    "dive_sequence": ["List the sub-actions of this dive in the order they happen.",
                      "Describe the successive phases of this dive, in order.",
                      "What sequence of sub-actions does the diver perform?"],
    "dive_aqa": ["Analyze this dive: its sub-actions in order, its degree of difficulty and the final score it gets.",
                 "How would you rate this dive? Describe its sub-actions, state its difficulty and its final score."],
    "dive_score": ["What final score does this dive receive?", "Rate this dive with the score the judges give it.",
                   "How many points is this dive worth?"],
}


def padded_box(box: list[float], width: float, height: float) -> list[float]:
    """Corners normalized to [0, 1] after padding the frame to a square (the reference's ``normalize_bbox``), at
    3 decimals (the reference rounds each to a random 2-4)."""
    side = max(width, height)
    pad_x, pad_y = (side - width) / 2, (side - height) / 2
    x1, y1, x2, y2 = box
    return [round(min(1.0, max(0.0, v)), 3) for v in ((x1 + pad_x) / side, (y1 + pad_y) / side,
                                                      (x2 + pad_x) / side, (y2 + pad_y) / side)]


def _object_label(name: str) -> str | list[str]:
    """``closet/cabinet`` is either word: a class label with synonyms."""
    parts = [p.strip() for p in name.split("/") if p.strip()]
    return parts if len(parts) > 1 else name


def star_rows(ctx, rec: dict, qid: str, answer: str, common: dict, window: tuple[float, float], duration: float,
              frames: list[tuple[str, dict]], fps: float, actions: dict, objects: dict, size: tuple[int, int]
              ) -> Iterator[dict]:
    """The paper's items of one STAR question (``common``: video, source, split; ``window``: the clip)."""
    start, end = window
    clip = {**common, "start": start, "end": end}
    yield {**clip, "id": f"{qid}:qa", "labels": {"answer": answer}, "verifiers": {"answer": "sentence"},
           "question": str(rec["question"]).strip()}
    if not frames or not fps or duration <= 0:
        return
    total = duration * fps
    t1, t2 = (round(min(1.0, edge(int(f) for f, _ in frames) / total), 3) for edge in (min, max))
    seen: list[str] = []
    for _, graph in frames:
        seen += [actions[a] for a in graph.get("actions", []) if a in actions and actions[a] not in seen]
    full = {**common, "start": None, "end": None}
    if seen:
        yield {**full, "id": f"{qid}:actions", "labels": {"actions": seen}, "verifiers": {"actions": "sentence"},
               "question": ctx.question(f"{qid}:actions", "star_actions", t1=t1, t2=t2)}
    if t2 > t1:
        yield {**full, "id": f"{qid}:when", "labels": {"when": [t1, t2]}, "verifiers": {"when": "temporal_range"},
               "question": ctx.question(f"{qid}:when", "star_when", actions="; ".join(seen) or "the actions")}
        yield {**full, "id": f"{qid}:when_qa", "labels": {"when": [t1, t2]}, "verifiers": {"when": "temporal_range"},
               "question": ctx.question(f"{qid}:when_qa", "star_when_qa", q=str(rec["question"]).strip(), a=answer)}
    boxed = [(f, g) for f, g in frames if g.get("bbox_labels")]
    if not boxed or end <= start:
        return
    rng = seeded_rng(ctx.seed, f"{qid}:spatial")

    def pick(same_as: str | None = None) -> tuple[str, list[float], float]:
        frame, graph = rng.choice(boxed)
        labels = graph["bbox_labels"]
        same = [i for i, label in enumerate(labels) if label == same_as]
        i = rng.choice(same) if same_as and same and rng.random() <= 0.5 else rng.randrange(len(labels))
        moment = round(min(1.0, max(0.0, (int(frame) / fps - start) / (end - start))), 2)
        return labels[i], padded_box([float(v) for v in graph["bbox"][i]], *size), moment

    first, box1, time1 = pick()
    if first not in objects:
        return
    yield {**clip, "id": f"{qid}:object", "labels": {"object": _object_label(objects[first])},
           "verifiers": {"object": "class"},
           "question": ctx.question(f"{qid}:object", "star_object", box=box1, time=time1)}
    second, box2, time2 = pick(same_as=first)
    if second in objects:
        yield {**clip, "id": f"{qid}:compare",
               "labels": {"first_object": _object_label(objects[first]),
                          "second_object": _object_label(objects[second]), "same": first == second},
               "verifiers": {"first_object": "class", "second_object": "class", "same": "same_or_not"},
               "question": ctx.question(f"{qid}:compare", "star_compare", box1=box1, time1=time1, box2=box2,
                                        time2=time2)}


def dive_rows(ctx, base: str, steps: list[str], score: float) -> list[dict]:
    """The paper's items of one dive (rows without video/source/split)."""
    rows = []
    if len(steps) >= 2:
        rows += [{"id": f"{base}:after", "labels": {"next": steps[1]}, "verifiers": {"next": "sentence"},
                  "question": ctx.question(f"{base}:after", "dive_after", step=steps[0])},
                 {"id": f"{base}:before", "labels": {"previous": steps[0]}, "verifiers": {"previous": "sentence"},
                  "question": ctx.question(f"{base}:before", "dive_before", step=steps[1])}]
    if steps:
        rows += [{"id": f"{base}:sequence", "labels": {"sequence": steps}, "verifiers": {"sequence": "sentence_sequence"},
                  "question": ctx.question(f"{base}:sequence", "dive_sequence")},
                 # the difficulty is asked, not a label: the float verifier reads one final number, the score
                 {"id": f"{base}:aqa", "labels": {"sequence": steps, "score": score},
                  "verifiers": {"sequence": "sentence_sequence", "score": "float"},
                  "question": ctx.question(f"{base}:aqa", "dive_aqa")}]
    rows.append({"id": f"{base}:score", "labels": {"score": score}, "verifiers": {"score": "float"},
                 "question": ctx.question(f"{base}:score", "dive_score")})
    return rows
