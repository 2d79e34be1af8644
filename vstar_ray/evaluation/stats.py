"""Confidence intervals of the figures evaluations report."""

from __future__ import annotations

import math

import numpy as np


def wilson(correct: int, total: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion (sound at 0, 1 and small n)."""
    if total == 0:
        return [0.0, 0.0]
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def bootstrap_mean(values, seed: int = 0, resamples: int = 2000) -> list[float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (a Score's 0-5 ratings)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return [0.0, 0.0]
    means = np.random.default_rng(seed).choice(values, (resamples, len(values))).mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def bootstrap_gain(before, after, seed: int = 0, resamples: int = 2000) -> list[float]:
    """95% paired-bootstrap interval of ``mean(after) - mean(before)`` over the same items (a gain over the seed)."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if len(before) == 0:
        return [0.0, 0.0]
    picks = np.random.default_rng(seed).integers(0, len(before), (resamples, len(before)))
    gains = after[picks].mean(axis=1) - before[picks].mean(axis=1)
    return [round(float(np.percentile(gains, 2.5)), 4), round(float(np.percentile(gains, 97.5)), 4)]


def proportion(hits: int, total: int) -> dict:
    """A share with its 95% Wilson interval."""
    return {"accuracy": round(hits / total, 4) if total else 0.0, "correct": hits, "total": total,
            "ci95": wilson(hits, total)}


def mean_score(scores: list) -> dict:
    """A mean 0-5 score with its 95% bootstrap interval."""
    return {"score": round(float(np.mean(scores)), 4) if scores else 0.0, "n": len(scores),
            "ci95": bootstrap_mean(scores)}
