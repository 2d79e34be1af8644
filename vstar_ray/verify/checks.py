"""The verifiers of docs/verifiers.md as plain functions.

Each verifier takes ``(answer, label, **thresholds)`` and returns ``(ok, extracted)``:
``extracted`` is what the parser found in the answer (JSON-serialisable), or None.
Each has a label validator that raises ``ValueError`` for a malformed label.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rapidfuzz import fuzz, process

STOP_WORDS = frozenset(
    """a an and are as at be been but by can did do does for from had has have he her his how i if in into is it
    its of on or our she so some than that the their them then there these they this those to was we were what
    when where which who whom why will with you your not no yes off out up something someone somebody somewhere""".split()
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
_SAME = re.compile(r"\b(?:is|are)(?:\s+(not))?\s+the\s+same\b|\b(?:isn't|aren't|isn’t|aren’t)\s+the\s+same\b", re.I)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """Words of 3+ letters that are not stop words: what a class label is checked by."""
    return [w for w in words(text) if len(w) >= 3 and w not in STOP_WORDS]


def numbers(text: str) -> list[float]:
    """Every number written in ``text``, in order (``1,000`` is one thousand; ``2.5e3`` works)."""
    out = []
    for m in _NUMBER.finditer(text):
        s = m.group(0)
        if not any(c.isdigit() for c in s):
            continue
        try:
            value = float(s.replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(value):
            out.append(value)
    return out


# --- class -----------------------------------------------------------------------------------------


def check_class_label(label: Any) -> None:
    names = [label] if isinstance(label, str) else label
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"class label must be a string or a non-empty list of strings, got {label!r}")
    if not any(content_words(n) for n in names):
        raise ValueError(f"class label {label!r} has no content word (3+ letters, not a stop word)")


def verify_class(answer: str, label: Any, similarity: float = 80.0) -> tuple[bool, Any]:
    """Every content word of the label (or of one of its synonyms) appears, fuzzily, in the answer."""
    answer_words = sorted(set(words(answer)))
    names = [label] if isinstance(label, str) else label
    for name in names:
        required = content_words(name)
        if required and all(
            process.extractOne(w, answer_words, scorer=fuzz.ratio, score_cutoff=similarity) for w in required
        ):
            return True, name
    return False, None


# --- numbers ---------------------------------------------------------------------------------------


def _check_number(label: Any) -> float:
    if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
        raise ValueError(f"label must be a finite number, got {label!r}")
    return float(label)


def check_float_label(label: Any) -> None:
    _check_number(label)


def verify_float(answer: str, label: Any, rel_tol: float = 0.05, abs_tol: float = 1e-6) -> tuple[bool, Any]:
    """The last number stated in the answer is within ``rel_tol`` of the label (``abs_tol`` when it is 0)."""
    found = numbers(answer)
    if not found:
        return False, None
    value = found[-1]
    return abs(value - label) <= max(rel_tol * abs(label), abs_tol), value


def check_timestamp_label(label: Any) -> None:
    if not 0.0 <= _check_number(label) <= 1.0:
        raise ValueError(f"timestamp label must be in [0, 1], got {label!r}")


def verify_timestamp(answer: str, label: Any, abs_tol: float = 0.1) -> tuple[bool, Any]:
    found = numbers(answer)
    if not found:
        return False, None
    return abs(found[-1] - label) <= abs_tol, found[-1]


# --- ranges and boxes ------------------------------------------------------------------------------


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(a == b)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float(tuple(a) == tuple(b))


def check_temporal_range_label(label: Any) -> None:
    if not isinstance(label, (list, tuple)) or len(label) != 2:
        raise ValueError(f"temporal_range label must be [start, end], got {label!r}")
    start, end = (_check_number(v) for v in label)
    if not 0.0 <= start < end <= 1.0:
        raise ValueError(f"temporal_range label must satisfy 0 <= start < end <= 1, got {label!r}")


def verify_temporal_range(answer: str, label: Any, iou: float = 0.5) -> tuple[bool, Any]:
    """The last increasing pair of numbers in the answer overlaps the label with IoU >= ``iou``."""
    found = numbers(answer)
    for i in range(len(found) - 2, -1, -1):
        start, end = found[i], found[i + 1]
        if start < end:
            return interval_iou((start, end), tuple(label)) >= iou, [start, end]
    return False, None


def check_bbox_label(label: Any) -> None:
    if not isinstance(label, (list, tuple)) or len(label) != 4:
        raise ValueError(f"bbox label must be [x1, y1, x2, y2], got {label!r}")
    x1, y1, x2, y2 = (_check_number(v) for v in label)
    if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
        raise ValueError(f"bbox label must be normalized corners with x1 < x2 and y1 < y2, got {label!r}")


_BRACKETED = re.compile(r"[\[(]([^\[\]()]{0,200})[\])]")


def _boxes(answer: str) -> list[list[float]]:
    """Candidate corner boxes, in order: every bracketed group of exactly 4 numbers with x1<x2, y1<y2."""
    out = []
    for m in _BRACKETED.finditer(answer):
        found = numbers(m.group(1))
        if len(found) == 4 and found[0] < found[2] and found[1] < found[3]:
            out.append(found)
    return out


def verify_bbox(answer: str, label: Any, iou: float = 0.5) -> tuple[bool, Any]:
    """The last box stated overlaps the label (normalized corners) with IoU >= ``iou``.

    The box is the last bracketed ``[x1, y1, x2, y2]`` (or ``(...)``); without one, the last 4
    consecutive numbers in [0, 1] forming valid corners (so "in frame 4 of 8" after a box is not read as one).
    """
    boxes = _boxes(answer)
    if boxes:
        box = boxes[-1]
        return box_iou(tuple(box), tuple(label)) >= iou, box
    found = numbers(answer)
    for i in range(len(found) - 4, -1, -1):
        x1, y1, x2, y2 = found[i : i + 4]
        if 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0:
            return box_iou((x1, y1, x2, y2), tuple(label)) >= iou, [x1, y1, x2, y2]
    return False, None


# --- same_or_not -----------------------------------------------------------------------------------


def check_same_or_not_label(label: Any) -> None:
    if not isinstance(label, bool):
        raise ValueError(f"same_or_not label must be true or false, got {label!r}")


def verify_same_or_not(answer: str, label: Any) -> tuple[bool, Any]:
    """The last "is/are (not) the same" statement decides."""
    matches = list(_SAME.finditer(answer))
    if not matches:
        return False, None
    last = matches[-1]
    same = not (last.group(1) or "n't" in last.group(0) or "n’t" in last.group(0))
    return same == label, same
