"""vLLM behind the ``vllm`` generation engine: built and called in the generator actor's own process when vLLM is
installed there, or run as a child process of it in a separate Python environment (``generate.vllm.python``).

This file imports nothing of vstar_ray, so the child can run it from a path in an environment that has only
vLLM (and its own torch and transformers). Protocol with the child: one JSON line per request on stdin,
followed by each clip's raw uint8 frames; one JSON line per answer on stdout. The first line the child
writes is ``{"ready": ...}`` once its engine is built, or ``{"error": ...}``.

A request is pre-tokenized by the caller: its ``prompts`` are the chat-templated texts the HF engine would
feed (one ``<video>`` placeholder each), so both engines see the same prompts. Frames arrive decoded
(``[T, H, W, 3]`` uint8, as verl and EasyR1 pass them), so vLLM needs no video decoder of its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import numpy as np


def build(model: str, options: dict[str, Any]):
    """A ``vllm.LLM`` for ``model``; ``options``: dtype, trust_remote_code, tensor_parallel_size,
    gpu_memory_utilization, max_model_len (0: the model's), enforce_eager, cpu_kv_cache_gib."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(options.get("cpu_kv_cache_gib", 1)))))
    from vllm import LLM

    kwargs = dict(model=model, dtype=options.get("dtype", "auto"), trust_remote_code=options.get("trust_remote_code", False),
                  tensor_parallel_size=options.get("tensor_parallel_size", 1),
                  gpu_memory_utilization=options.get("gpu_memory_utilization", 0.85),
                  enforce_eager=options.get("enforce_eager", False), limit_mm_per_prompt={"video": 1},
                  seed=options.get("seed", 0))
    if options.get("max_model_len"):
        kwargs["max_model_len"] = options["max_model_len"]
    return LLM(**kwargs)


def generate(llm, frames: list[np.ndarray], prompts: list[str], metadata: list, params: dict) -> list[str]:
    """One batch; ``params``: max_new_tokens, do_sample, temperature, seed, stop_token_ids. Each request is
    seeded with ``seed + i``, so a batch samples the same answers however vLLM schedules it."""
    from vllm import SamplingParams

    requests, sampling = [], []
    for i, (clip, prompt, meta) in enumerate(zip(frames, prompts, metadata)):
        video = (clip, meta) if meta else clip
        requests.append({"prompt": prompt, "multi_modal_data": {"video": video}})
        sampling.append(SamplingParams(
            max_tokens=params["max_new_tokens"], temperature=params["temperature"] if params["do_sample"] else 0.0,
            seed=params["seed"] + i, stop_token_ids=params["stop_token_ids"], skip_special_tokens=True))
    outputs = llm.generate(requests, sampling, use_tqdm=False)
    return [o.outputs[0].text.strip() for o in outputs]


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("the parent closed the pipe")
        data += chunk
    return data


def serve(model: str, options: dict[str, Any]) -> None:
    # the protocol keeps the real stdout; everything else that writes there (vLLM's logging, its engine
    # processes) goes to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        llm = build(model, options)
    except Exception as e:  # reported to the parent, which raises it
        out.write((json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n").encode())
        out.flush()
        return
    out.write((json.dumps({"ready": True}) + "\n").encode())
    out.flush()
    stdin = sys.stdin.buffer
    for line in stdin:
        request = json.loads(line)
        frames = [np.frombuffer(_read_exact(stdin, int(np.prod(shape))), dtype=np.uint8).reshape(shape)
                  for shape in request["shapes"]]
        try:
            answers = generate(llm, frames, request["prompts"], request["metadata"], request["params"])
            reply = {"answers": answers}
        except Exception as e:
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write((json.dumps(reply) + "\n").encode())
        out.flush()
    # stdin closed: the generator actor is gone (closed us, or was killed). End vLLM's engine processes with
    # this one: they share its process group (the parent started this one in a session of its own).
    os.killpg(os.getpgid(0), signal.SIGKILL)


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]))
