"""Confidence intervals of the figures evaluations report."""

from __future__ import annotations

import math


def wilson(correct: int, total: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion (sound at 0, 1 and small n)."""
    if total == 0:
        return [0.0, 0.0]
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
