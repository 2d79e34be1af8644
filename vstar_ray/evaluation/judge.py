"""The LLM judge every judged benchmark uses: one owner of how a judge is asked, bounded, cached and counted.

Three backends (``judge.backend``):

- ``openai``: any OpenAI-compatible chat endpoint (``vllm serve``, SGLang, a hosted API) at ``judge.base_url``,
  through the ``openai`` client. The key is read from the environment variable ``judge.api_key_env`` names; it
  is never read from a config file and never written anywhere.
- ``actors``: a judge model on the cluster's own Ray actors (``judge_actors``): HF ``generate`` in the actor, or
  a ``vllm serve`` process the actor starts (then asked like ``openai``).
- ``callable``: a Python function ``package.module:function`` (``judge.function``), called with the chat
  messages and the item, returning the judge's reply text; the TempCompass hook of earlier versions,
  ``judge(task, question, prediction, answer) -> bool | None``, is accepted too.

Every request is bounded: at most ``judge.concurrency`` at once, ``judge.timeout_s`` per call, and
``judge.retries`` retries with exponential backoff (``judge.backoff_s``) on timeouts, dropped connections, 429 and
5xx. After that the item is ``judge_failed`` and reported, never counted wrong. A refused key (401/403) or an
unknown model (404) stops at once with an ``InputError``: no retry mends them.

Replies are cached under a hash of the messages, the reply grammar and the judge's identity (model,
temperature, max tokens, seed, prompt version; never the key or the URL), one JSON file each in ``judge.cache``
(``judge.cache_dir``, default ``~/.cache/vstar-ray/judge``), so re-scoring a finished evaluation is exact and works offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vstar_ray.config_eval import JudgeConfig
from vstar_ray.errors import InputError
from vstar_ray.io import atomic_write_json

DEFAULT_CACHE = "~/.cache/vstar-ray/judge"
# judge.preset: original: the sampling of the official scripts (Video-ChatGPT's gpt-3.5-turbo at the API default
# temperature 1.0; TempCompass's gpt-3.5-turbo-1106 at 1.0, top_p 1, presence_penalty 1, 128 tokens)
ORIGINAL = {"temperature": 1.0, "top_p": 1.0, "presence_penalty": 1.0, "max_tokens": 128}
ORIGINAL_NOTE = ("judge.preset=original samples the judge at temperature 1.0 as the official scripts do: two "
                 "scorings of the same predictions differ, and the original models (gpt-3.5-turbo, -1106) are retired")


@dataclass(frozen=True)
class JudgeRequest:
    """One question to the judge: its chat ``messages``, the prompt family and version that built them
    (``prompt``), the reply grammar for structured outputs (``{"regex": ...}`` or ``{"choice": [...]}``), and the
    item it judges (benchmark, task, question, answer, prediction) for the callable backend and the records."""

    messages: tuple
    prompt: str
    grammar: dict | None = None
    item: dict = field(default_factory=dict, compare=False)


@dataclass
class JudgeReply:
    text: str | None  # the reply, None when the judge failed
    error: str = ""  # why it failed (after its retries)
    cached: bool = False


@dataclass
class JudgeStats:
    """What judging cost and what failed, for ``results.json``."""

    requests: int = 0
    cache_hits: int = 0
    calls: int = 0  # calls sent, retries included
    judge_failed: int = 0
    failures: dict = field(default_factory=dict)  # reason -> count

    def add(self, other: "JudgeStats") -> None:
        self.requests += other.requests
        self.cache_hits += other.cache_hits
        self.calls += other.calls
        self.judge_failed += other.judge_failed
        for k, v in other.failures.items():
            self.failures[k] = self.failures.get(k, 0) + v


class JudgeUnusable(InputError):
    """The judge refuses every request (a wrong key, an unknown model): retrying cannot help."""


def sampling(cfg: JudgeConfig) -> dict:
    """The sampling parameters of each call: the configured ones, or the official scripts' (``preset``)."""
    params = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "seed": cfg.seed}
    if cfg.preset == "original":
        params = {**params, **ORIGINAL}
        params.pop("seed")
    return params


def identity(cfg: JudgeConfig) -> dict:
    """What makes two judges give the same replies: recorded in ``results.json`` and part of every cache key.
    Never the key, the environment variable's value or the endpoint's address."""
    who = {"openai": cfg.model, "actors": cfg.model, "callable": cfg.function}[cfg.backend]
    return {"backend": cfg.backend, "model": who, "preset": cfg.preset or "deterministic",
            "structured_outputs": cfg.structured_outputs, **sampling(cfg)}


class ReplyCache:
    """One JSON file per reply, ``<folder>/<key[:2]>/<key>.json``, written atomically (safe with concurrent
    writers: the same key always holds the same reply)."""

    def __init__(self, folder: str | None):
        self.folder = None if folder is None else Path(folder or DEFAULT_CACHE).expanduser()

    @staticmethod
    def key(request: JudgeRequest, who: dict) -> str:
        blob = json.dumps({"judge": who, "prompt": request.prompt, "messages": request.messages,
                           "grammar": request.grammar}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        if self.folder is None:
            return None
        try:
            return json.loads(self._path(key).read_text())["reply"]
        except (OSError, ValueError, KeyError):  # not there, or unreadable: ask again
            return None

    def put(self, key: str, reply: str, who: dict, prompt: str) -> None:
        if self.folder is not None:
            atomic_write_json(self._path(key), {"reply": reply, "judge": who, "prompt": prompt, "time": time.time()})


class Judge:
    """Asks the configured judge, through the cache; ``ask`` never raises for one failed item."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        self.who = identity(cfg)
        self.cache = ReplyCache(cfg.cache_dir if cfg.cache else None)
        self.stats = JudgeStats()
        self._backend: Any = None

    def backend(self):
        if self._backend is None:
            if self.cfg.backend == "openai":
                self._backend = OpenAIBackend(self.cfg, self.cfg.base_url)
            elif self.cfg.backend == "callable":
                self._backend = CallableBackend(self.cfg.function)
            else:
                from vstar_ray.evaluation.judge_actors import ActorBackend

                self._backend = ActorBackend(self.cfg)
        return self._backend

    def ask(self, requests: list[JudgeRequest]) -> list[JudgeReply]:
        """One reply per request, in order; cached replies first, the rest from the backend (bounded)."""
        replies: list[JudgeReply | None] = [None] * len(requests)
        keys = [ReplyCache.key(r, self.who) for r in requests]
        todo = []
        for i, key in enumerate(keys):
            text = self.cache.get(key)
            if text is not None:
                replies[i] = JudgeReply(text, cached=True)
            else:
                todo.append(i)
        stats = JudgeStats(requests=len(requests), cache_hits=len(requests) - len(todo))
        if todo:
            for i, reply in zip(todo, self.backend().complete([requests[i] for i in todo], stats)):
                replies[i] = reply
                if reply.text is not None:
                    self.cache.put(keys[i], reply.text, self.who, requests[i].prompt)
                else:
                    stats.judge_failed += 1
                    reason = reply.error.split(":")[0]
                    stats.failures[reason] = stats.failures.get(reason, 0) + 1
        self.stats.add(stats)
        return replies  # type: ignore[return-value]

    def close(self) -> None:
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()

    def record(self) -> dict:
        """The judge's identity and what judging cost, for ``results.json``."""
        return {**self.who, "requests": self.stats.requests, "cache_hits": self.stats.cache_hits,
                "calls": self.stats.calls, "judge_failed": self.stats.judge_failed,
                "failures": dict(self.stats.failures)}


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint, asked with bounded concurrency, time and retries."""

    def __init__(self, cfg: JudgeConfig, base_url: str):
        if not base_url:
            raise InputError("judge.base_url is empty: point it at an OpenAI-compatible endpoint (e.g. "
                             "http://localhost:8000/v1 of `vllm serve`), or set judge.backend")
        if not cfg.model:
            raise InputError("judge.model is empty: the name of the model the judge endpoint serves")
        self.cfg, self.base_url = cfg, base_url
        # a local server needs no key; the client wants some string
        self.api_key = os.environ.get(cfg.api_key_env) or "EMPTY"

    def _body(self, request: JudgeRequest) -> dict:
        params = sampling(self.cfg)
        extra = {"structured_outputs": request.grammar} if self.cfg.structured_outputs and request.grammar else None
        return {"model": self.cfg.model, "messages": list(request.messages), **params,
                **({"extra_body": extra} if extra else {})}

    async def _one(self, client, request: JudgeRequest, gate: asyncio.Semaphore, stats: JudgeStats) -> JudgeReply:
        import openai

        cfg, error = self.cfg, ""
        for attempt in range(cfg.retries + 1):
            if attempt:
                await asyncio.sleep(cfg.backoff_s * 2 ** (attempt - 1) * (1 + random.random() / 4))
            async with gate:
                stats.calls += 1
                try:
                    reply = await asyncio.wait_for(client.chat.completions.create(**self._body(request)),
                                                   cfg.timeout_s)
                except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                    raise JudgeUnusable(f"the judge at {self.base_url} refused the key ({e.status_code}): set the "
                                        f"environment variable {cfg.api_key_env}") from None
                except openai.NotFoundError:
                    raise JudgeUnusable(f"the judge at {self.base_url} does not serve judge.model "
                                        f"{cfg.model!r} (404)") from None
                except asyncio.TimeoutError:
                    error = f"timeout: no reply within judge.timeout_s={cfg.timeout_s:g}s"
                    continue
                except openai.APIStatusError as e:
                    error = f"http {e.status_code}: {str(e)[:200]}"
                    if e.status_code in (429,) or e.status_code >= 500:
                        continue
                    return JudgeReply(None, error)  # 400, 422: the request itself is refused
                except openai.APIConnectionError as e:
                    error = f"connection: {type(e).__name__}: {str(e)[:200]}"
                    continue
                except (ValueError, openai.APIResponseValidationError) as e:  # a body that is not a completion
                    error = f"bad reply: {type(e).__name__}: {str(e)[:200]}"
                    continue
            choices = getattr(reply, "choices", None) or []
            text = choices[0].message.content if choices and choices[0].message else None
            if text is None:
                error = "bad reply: no message content"
                continue
            return JudgeReply(text)
        return JudgeReply(None, error)

    async def _all(self, requests: list[JudgeRequest], stats: JudgeStats) -> list[JudgeReply]:
        from openai import AsyncOpenAI

        gate = asyncio.Semaphore(self.cfg.concurrency)
        async with AsyncOpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0,
                               timeout=self.cfg.timeout_s) as client:
            return await asyncio.gather(*(self._one(client, r, gate, stats) for r in requests))

    def complete(self, requests: list[JudgeRequest], stats: JudgeStats) -> list[JudgeReply]:
        return asyncio.run(self._all(requests, stats))


def load_function(spec: str) -> Callable:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise InputError(f"judge.function {spec!r}: expected package.module:function")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InputError(f"judge.function {spec!r} cannot be loaded: {e}") from e
    except BaseException as e:  # a plug-in that exits or raises on import is named, not obeyed
        raise InputError(f"judge.function {spec!r} failed on import: {type(e).__name__}: {e}") from None
    if not callable(fn):
        raise InputError(f"judge.function {spec!r} is not callable")
    return fn


class CallableBackend:
    """A Python function as the judge: ``fn(messages, item) -> str | None`` (the reply), or the earlier TempCompass
    hook ``fn(task, question, prediction, answer) -> bool | None`` (a verdict, given as "Correct"/"Incorrect")."""

    def __init__(self, spec: str):
        self.spec, self.fn = spec, load_function(spec)
        self.legacy = len(inspect.signature(self.fn).parameters) == 4

    def _call(self, request: JudgeRequest) -> JudgeReply:
        item = request.item
        try:
            if self.legacy:
                verdict = self.fn(item.get("task"), item.get("question"), item.get("prediction"), item.get("answer"))
                if verdict is None:
                    return JudgeReply(None, "undecided: the judge function returned None")
                if not isinstance(verdict, bool):
                    return JudgeReply(None, f"bad reply: {self.spec} returned {verdict!r}, not a bool")
                return JudgeReply("Correct" if verdict else "Incorrect")
            reply = self.fn([dict(m) for m in request.messages], dict(item))
        except Exception as e:  # a judge that raises on one item fails that item only, named
            return JudgeReply(None, f"raised: {self.spec}: {type(e).__name__}: {str(e)[:200]}")
        if reply is None:
            return JudgeReply(None, "undecided: the judge function returned None")
        if not isinstance(reply, str):
            return JudgeReply(None, f"bad reply: {self.spec} returned {type(reply).__name__}, not a str")
        return JudgeReply(reply)

    def complete(self, requests: list[JudgeRequest], stats: JudgeStats) -> list[JudgeReply]:
        stats.calls += len(requests)
        return [self._call(r) for r in requests]
