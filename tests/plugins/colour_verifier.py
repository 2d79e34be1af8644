"""A verifier plug-in as a user writes one (docs/verifiers.md): label type ``colour``."""

THRESHOLDS = {"colour": {"min_hits": 1}}
COLOURS = ("red", "green", "blue", "yellow")


def verify_colour(answer: str, label, min_hits: float = 1):
    """Right when the answer names the label's colour at least ``min_hits`` times and no other colour last."""
    words = [w.strip(".,;:!?") for w in answer.lower().split()]
    named = [w for w in words if w in COLOURS]
    return named.count(label) >= min_hits and bool(named) and named[-1] == label, named[-1] if named else None


def check_colour(label) -> None:
    if label not in COLOURS:
        raise ValueError(f"colour label must be one of {COLOURS}, got {label!r}")
