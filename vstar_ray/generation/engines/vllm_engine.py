"""The ``vllm`` generation engine (``generate.engine: vllm``): vLLM's continuous batching in a generator actor.

Same prompts and chat template as the HF engine (``models.prompt_text``), same decoded frames and their
timing, the same stop tokens (the answer's end-of-turn token and the model's eos ids), per-request seeds.
vLLM runs in the actor's process when it is installed there (``pip install 'vstar-ray[vllm]'``, GPU clusters),
or, with ``generate.vllm.python`` set, as a child process in a separate environment (the CPU test recipe in
``docs/engines.md``). ``close()`` ends the engine and frees its memory before a new checkpoint loads or
training starts.

Limits: a new checkpoint builds a new vLLM engine in the same actor (no weight streaming into a sleeping
engine); ``tensor_parallel_size`` > 1 needs as many GPUs per generator actor (``generate.num_gpus``).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from vstar_ray import models
from vstar_ray.errors import InputError

WORKER = Path(__file__).with_name("vllm_worker.py")
INSTALL = ("pip install 'vstar-ray[vllm]' (GPU), or point generate.vllm.python at a Python environment with "
           "vLLM (docs/engines.md)")


def check_available(options) -> None:
    """Raise InputError with the install command when vLLM cannot be used as configured (before any work)."""
    if options.python:
        if not Path(options.python).exists():
            raise InputError(f"generate.vllm.python {options.python!r} does not exist; {INSTALL}")
        probe = subprocess.run([options.python, "-c", "import vllm"], capture_output=True, text=True, timeout=300)
        if probe.returncode:
            raise InputError(f"generate.vllm.python {options.python!r} cannot import vllm "
                             f"({(probe.stderr.strip().splitlines() or ['?'])[-1]}); {INSTALL}")
    elif importlib.util.find_spec("vllm") is None:
        raise InputError(f"generate.engine vllm: vLLM is not installed in this environment; {INSTALL}")


class VLLMEngine:
    def __init__(self, model_path: str, dtype: str = "auto", trust_remote_code: bool = False, **options):
        import torch

        self.processor = models.load_processor(model_path, trust_remote_code)
        self.python = options.pop("python", "")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        resolved = models.torch_dtype(dtype, device if not self.python else "cpu")
        self.options = {**options, "dtype": str(resolved).removeprefix("torch."), "trust_remote_code": trust_remote_code}
        self.model_path = model_path
        if models.adapter_chain(model_path)[1]:
            raise InputError(f"generate.engine vllm: {model_path} is a LoRA adapter; train with train.lora: false or "
                             f"merge it first (vLLM here serves full checkpoints)")
        self.stop_ids = [models.chat_format(self.processor).end_of_turn_id]
        eos = self.processor.tokenizer.eos_token_id
        self.stop_ids += [eos] if eos is not None and eos not in self.stop_ids else []
        self.child = self.llm = None
        if self.python:
            self._start_child()
        else:
            from vstar_ray.generation.engines import vllm_worker

            self.llm = vllm_worker.build(self.model_path, self.options)

    def _start_child(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        # a session of its own: close() ends vLLM's engine processes with it
        self.child = subprocess.Popen([self.python, str(WORKER), self.model_path, json.dumps(self.options)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, env=env,
                                      start_new_session=True)
        line = self.child.stdout.readline()
        reply = json.loads(line) if line else {"error": f"the vLLM process exited with {self.child.wait()}"}
        if "error" in reply:  # the child's own log (stderr) says more
            self.close()
            raise RuntimeError(f"vLLM could not start {self.model_path}: {reply['error']}")

    def generate(self, frames: list[np.ndarray], prompts: list[str], max_new_tokens: int, do_sample: bool,
                 temperature: float, metadata: list[dict | None] | None = None, seed: int = 0) -> list[str]:
        texts = [models.prompt_text(self.processor, p) for p in prompts]
        clips = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
        metadata = list(metadata) if metadata is not None else [None] * len(clips)
        params = {"max_new_tokens": max_new_tokens, "do_sample": do_sample, "temperature": temperature,
                  "seed": int(seed), "stop_token_ids": self.stop_ids}
        if self.llm is not None:
            from vstar_ray.generation.engines import vllm_worker

            return vllm_worker.generate(self.llm, clips, texts, metadata, params)
        request = {"prompts": texts, "metadata": metadata, "params": params, "shapes": [list(c.shape) for c in clips]}
        self.child.stdin.write((json.dumps(request) + "\n").encode())
        for clip in clips:
            self.child.stdin.write(clip.tobytes())
        self.child.stdin.flush()
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"the vLLM process died (exit {self.child.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"vLLM: {reply['error']}")
        return reply["answers"]

    def close(self) -> None:
        if self.child is not None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.child.wait()
            self.child = None
        if self.llm is not None:
            self.llm = None
            gc.collect()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
