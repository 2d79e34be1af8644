"""The generator actor: one model copy per actor, batched ``generate`` over decoded clips.

Modes: ``answer`` (the answer prompt, every decodable row), ``rationalize`` (the hint prompt,
only rows whose direct answer failed verification), ``eval`` (answer prompt, greedy) and ``raw``
(the row's own ``prompt`` as given, greedy: benchmarks such as TempCompass). The prompt each row was
given is recorded beside its output.
Used as ``ds.map_batches(Generator, compute=ActorPoolStrategy(...), num_gpus=...)``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time

import numpy as np
import torch

from vstar_ray import models, questions

OUTPUT_COLUMN = {"answer": "answer", "eval": "answer", "raw": "answer", "rationalize": "rationalized_answer"}
PROMPT_COLUMN = {"answer": "prompt", "eval": "prompt", "raw": "prompt", "rationalize": "rationalize_prompt"}


class HFEngine:
    """The default engine: batched transformers ``generate`` with left padding, one model per actor.

    An engine is any class built as ``Engine(model_path, dtype, trust_remote_code)`` whose
    ``generate(frames, prompts, max_new_tokens, do_sample, temperature, metadata)`` returns one answer per
    prompt (``frames[i]``: a (T, H, W, 3) uint8 clip; ``metadata[i]``: its timing as the processors'
    ``video_metadata``, or None when the source's frame rate is unknown). Select another with
    ``generate.engine: package.module:Class`` (README, "Generation engines": a vLLM engine for GPU clusters)."""

    def __init__(self, model_path: str, dtype: str = "auto", trust_remote_code: bool = False):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = models.load_model(model_path, self.device, dtype, trust_remote_code).eval()
        self.processor = models.load_processor(model_path, trust_remote_code)

    def generate(self, frames: list[np.ndarray], prompts: list[str], max_new_tokens: int, do_sample: bool,
                 temperature: float, metadata: list[dict | None] | None = None) -> list[str]:
        return models.generate(self.model, self.processor, frames, prompts, max_new_tokens, do_sample, temperature,
                               metadata)


def load_engine(spec: str) -> type:
    """``hf`` or ``package.module:Class``; raises ValueError naming the spec when it cannot be imported."""
    if spec == "hf":
        return HFEngine
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"generate.engine {spec!r}: expected 'hf' or 'package.module:Class'")
    try:
        engine = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"generate.engine {spec!r} cannot be loaded: {e}") from e
    if not callable(getattr(engine, "generate", None)):
        raise ValueError(f"generate.engine {spec!r} has no generate() method")
    return engine


class Generator:
    def __init__(
        self,
        model_path: str,
        mode: str,
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        seed: int = 0,
        engine: str = "hf",
    ):
        import ray

        if mode not in OUTPUT_COLUMN:
            raise ValueError(f"unknown generator mode {mode!r}")
        self.mode, self.seed = mode, seed
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.do_sample = do_sample and mode not in ("eval", "raw")
        self.engine = load_engine(engine)(model_path, dtype, trust_remote_code)
        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.actor_id = context.get_actor_id() or f"pid-{os.getpid()}"

    def _todo(self, batch: dict[str, np.ndarray]) -> list[int]:
        ok = [i for i, err in enumerate(batch["error"]) if not err]
        if self.mode == "rationalize":
            ok = [i for i in ok if not batch["direct_verified"][i]]
        return ok

    def _prompt(self, batch: dict[str, np.ndarray], i: int) -> str:
        if self.mode == "rationalize":
            return questions.rationalize_prompt(batch["question"][i], json.loads(batch["labels"][i]))
        if self.mode == "raw":
            return str(batch["prompt"][i])
        return questions.answer_prompt(batch["question"][i])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start, wall_start, generate_s = time.perf_counter(), time.time(), 0.0
        n = len(batch["id"])
        todo = self._todo(batch)
        outputs = [""] * n
        todo_set = set(todo)
        prompts = [self._prompt(batch, i) if i in todo_set else "" for i in range(n)]
        if todo:
            key = self.mode + ":" + ",".join(str(batch["id"][i]) for i in todo)
            torch.manual_seed(self.seed + int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big"))
            generate_start = time.perf_counter()
            answers = self.engine.generate(
                [batch["frames"][i] for i in todo],
                [prompts[i] for i in todo],
                self.max_new_tokens,
                self.do_sample,
                self.temperature,
                metadata=[models.video_metadata(batch["fps"][i], batch["frame_index"][i], batch["clip_frames"][i])
                          for i in todo],
            )
            generate_s = time.perf_counter() - generate_start
            if len(answers) != len(todo):
                raise RuntimeError(f"engine {type(self.engine).__name__} returned {len(answers)} answers "
                                   f"for {len(todo)} prompts")
            for i, answer in zip(todo, answers):
                outputs[i] = answer
        stage = "rationalize" if self.mode == "rationalize" else "answer"
        batch[OUTPUT_COLUMN[self.mode]] = np.array(outputs, dtype=object)
        batch[PROMPT_COLUMN[self.mode]] = np.array(prompts, dtype=object)
        batch[f"{stage}_s"] = np.full(n, (time.perf_counter() - start) / max(n, 1))
        batch[f"{stage}_node"] = np.array([self.node_id] * n, dtype=object)
        # one record of this call, repeated on its rows: which actor, when, and how long generate() ran
        batch[f"{stage}_call"] = np.array(
            [json.dumps([self.actor_id, wall_start, time.time(), generate_s])] * n, dtype=object
        )
        return batch
