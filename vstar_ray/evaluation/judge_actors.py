"""A judge model on the cluster's own Ray actors (``judge.backend: actors``), for users with GPUs and no API.

``judge.engine: hf``: each of ``judge.actors`` actors holds the model (``judge.model``, a local folder or hub id)
and answers chat messages with transformers ``generate`` (its chat template; greedy at temperature 0). No reply
grammar is enforced: a small model's replies may not parse (counted ``parse_failed``).

``judge.engine: vllm``: each actor starts ``vllm serve`` on the model (in ``judge.vllm_python``'s environment, or
its own) and the judge asks those servers as it asks any OpenAI-compatible endpoint: the same bounds, the same
structured outputs. A server is reached on loopback from the node it runs on, else at its node's address.

Bounds: a call that does not return within ``judge.timeout_s`` per request it carries is cancelled and its
requests fail (``timeout``); an actor that dies is retried ``judge.retries`` times; a vLLM server that is not up
within ``START_TIMEOUT_S`` fails the judge with its log's last line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import ray

from vstar_ray.config_eval import JudgeConfig
from vstar_ray.errors import WorkFailed
from vstar_ray.evaluation.judge import JudgeReply, JudgeRequest, JudgeStats, OpenAIBackend, sampling

START_TIMEOUT_S = 900.0  # a vLLM server loading a 70B judge takes minutes
SERVED_NAME = "judge"


class HFJudge:
    """A chat model in a Ray actor, answering with transformers ``generate``."""

    def __init__(self, model: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(self.device).eval()

    def complete(self, conversations: list[list[dict]], params: dict) -> list[str]:
        import torch

        texts = [self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
                 for m in conversations]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = params.get("temperature", 0) > 0
        if "seed" in params:
            torch.manual_seed(params["seed"])
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=params["max_tokens"], do_sample=sample,
                                      **({"temperature": params["temperature"]} if sample else {}),
                                      pad_token_id=self.tokenizer.pad_token_id)
        return [t.strip() for t in self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:],
                                                                skip_special_tokens=True)]


class VLLMServer:
    """``vllm serve`` in a child process of a Ray actor; ``url()`` once it answers."""

    def __init__(self, model: str, python: str, options: dict, driver_node: str):
        import ray as _ray

        here = _ray.get_runtime_context().get_node_id()
        self.host = "127.0.0.1" if here == driver_node else _ray.util.get_node_ip_address()
        bind = "127.0.0.1" if here == driver_node else "0.0.0.0"
        with socket.socket() as s:
            s.bind((bind, 0))
            self.port = s.getsockname()[1]
        self.log = Path(f"/tmp/vstar-judge-vllm-{os.getpid()}-{self.port}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        cmd = [python or sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--served-model-name", SERVED_NAME, "--host", bind, "--port", str(self.port),
               "--max-model-len", str(options.get("max_model_len", 4096)), *options.get("args", [])]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def url(self, timeout_s: float) -> str:
        import urllib.request

        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                tail = (self.log.read_text(errors="replace").strip().splitlines() or ["?"])[-1]
                raise RuntimeError(f"vllm serve exited with {self.proc.returncode}: {tail}")
            try:
                urllib.request.urlopen(f"http://{self.host}:{self.port}/v1/models", timeout=5).read()
                return f"http://{self.host}:{self.port}/v1"
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"vllm serve did not answer within {timeout_s:.0f}s (log: {self.log})")

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class ActorBackend:
    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        options = dict(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, max_restarts=cfg.retries,
                       max_task_retries=0, scheduling_strategy="SPREAD")
        if cfg.engine == "vllm":
            driver = ray.get_runtime_context().get_node_id()
            self.actors = [ray.remote(VLLMServer).options(**options).remote(
                cfg.model, cfg.vllm_python, {"max_model_len": 4096, "args": ["--dtype", "float32", "--enforce-eager"]
                                             if cfg.num_gpus == 0 else []}, driver) for _ in range(cfg.actors)]
            try:
                urls = ray.get([a.url.remote(START_TIMEOUT_S) for a in self.actors], timeout=START_TIMEOUT_S + 60)
            except (ray.exceptions.RayError, TimeoutError) as e:
                self.close()
                raise WorkFailed(f"judge.engine vllm could not start {cfg.model}: "
                                 f"{str(e).strip().splitlines()[-1][:300]}") from None
            import dataclasses

            served = dataclasses.replace(cfg, model=SERVED_NAME)
            self.servers = [OpenAIBackend(served, url) for url in urls]
        else:
            self.actors = [ray.remote(HFJudge).options(**options).remote(cfg.model) for _ in range(cfg.actors)]
            self.servers = []

    def complete(self, requests: list[JudgeRequest], stats: JudgeStats) -> list[JudgeReply]:
        if self.servers:  # vLLM: the requests spread over the servers, each asked like any endpoint
            replies: list[JudgeReply | None] = [None] * len(requests)
            for k, server in enumerate(self.servers):
                idx = list(range(k, len(requests), len(self.servers)))
                for i, reply in zip(idx, server.complete([requests[i] for i in idx], stats)):
                    replies[i] = reply
            return replies  # type: ignore[return-value]
        return self._hf(requests, stats)

    def _hf(self, requests: list[JudgeRequest], stats: JudgeStats) -> list[JudgeReply]:
        params = sampling(self.cfg)
        size = max(1, self.cfg.concurrency)
        chunks = [list(range(k, min(k + size, len(requests)))) for k in range(0, len(requests), size)]
        replies: list[JudgeReply] = [JudgeReply(None, "not asked")] * len(requests)
        for n, chunk in enumerate(chunks):
            actor = self.actors[n % len(self.actors)]
            error = ""
            for _ in range(self.cfg.retries + 1):
                stats.calls += 1
                ref = actor.complete.remote([list(requests[i].messages) for i in chunk], params)
                try:
                    texts = ray.get(ref, timeout=self.cfg.timeout_s * len(chunk))
                except ray.exceptions.GetTimeoutError:  # a stuck generate: the actor is restarted (max_restarts)
                    ray.kill(actor, no_restart=False)
                    error = f"timeout: no reply within judge.timeout_s={self.cfg.timeout_s:g}s per request"
                    continue
                except ray.exceptions.RayError as e:
                    error = f"actor: {type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
                    continue
                for i, text in zip(chunk, texts):
                    replies[i] = JudgeReply(text)
                break
            else:
                for i in chunk:
                    replies[i] = JudgeReply(None, error)
        return replies

    def close(self) -> None:
        for actor in self.actors:
            try:
                if self.cfg.engine == "vllm":
                    ray.get(actor.stop.remote(), timeout=60)
            except ray.exceptions.RayError:
                pass
            ray.kill(actor, no_restart=True)
