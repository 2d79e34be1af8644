"""Generator actors that live for a whole run, and the router every pass reaches them through.

A run starts its ``GeneratorPool`` once: up to ``generate.max_actors`` ``GeneratorActor`` processes, each
holding one engine (one copy of the model), and one ``Router``, a light async actor. Every pass of the run
(answer, rationalize, held-out eval, TempCompass) sends its batches from ``stages.generate_batch`` tasks in
its Ray Data chain to the router, which hands each batch to an idle actor. Answer and rationalize batches
share the actors, so none waits while another has work.

- A call names the model it wants. An actor loads a new checkpoint in place when the model changes (same
  process, nothing imported again), and again after Ray restarts it (a killed actor is restarted and its
  call retried: ``max_restarts``/``max_task_retries``).
- ``release()`` before training frees every actor's model (and its accelerator memory), as verl's colocated
  rollout sleeps; the next pass's first call loads the new checkpoint.
- The router also counts the rows each stage of the running pass has finished (``count``), which is how
  the pass watchdog names the stage that stopped moving (``pipeline``).

Limits: the actors hold their logical resources (``generate.num_cpus``/``num_gpus``) for the whole run,
training included; ``resources.plan`` sizes the pool so that passes and training fit beside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import heapq
import itertools
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from vstar_ray.errors import WorkFailed

ACTOR_RESTARTS = 3  # a killed generator process is restarted this often per run, its call retried


class GeneratorActor:
    """One engine, loaded lazily from the model each call names."""

    def __init__(self, engine: str, dtype: str, trust_remote_code: bool, engine_options: dict):
        import inspect

        from vstar_ray.generation.engines import load_engine  # torch and transformers: imported once per process

        self.engine_cls = load_engine(engine)
        self.takes_seed = "seed" in inspect.signature(self.engine_cls.generate).parameters  # vLLM: per request
        self.dtype, self.trust_remote_code, self.engine_options = dtype, trust_remote_code, engine_options
        self.engine: Any = None
        self.model_path = ""
        self.loads = 0
        context = ray.get_runtime_context()
        self.node_id = context.get_node_id()
        self.actor_id = context.get_actor_id() or f"pid-{os.getpid()}"

    def info(self) -> dict:
        return {"actor": self.actor_id, "pid": os.getpid(), "node": self.node_id, "loads": self.loads,
                "model": self.model_path}

    def load(self, model_path: str) -> dict:
        """Make ``model_path`` the loaded model (in place; nothing happens if it already is)."""
        if self.engine is None or self.model_path != model_path:
            self.release()
            self.engine = self.engine_cls(model_path, self.dtype, self.trust_remote_code, **self.engine_options)
            self.model_path = model_path
            self.loads += 1
        return self.info()

    def release(self) -> None:
        """Free the model and the accelerator memory it held; the next call loads again."""
        engine, self.engine, self.model_path = self.engine, None, ""
        if engine is not None and callable(getattr(engine, "close", None)):
            engine.close()
        del engine
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(self, model_path: str, payload: dict, max_new_tokens: int, do_sample: bool, temperature: float,
                 seed: int) -> dict:
        import torch

        load_start = time.perf_counter()
        self.load(model_path)
        load_s = time.perf_counter() - load_start
        torch.manual_seed(seed)
        wall_start, start = time.time(), time.perf_counter()
        answers = self.engine.generate(payload["frames"], payload["prompts"], max_new_tokens, do_sample, temperature,
                                       metadata=payload["metadata"], **({"seed": seed} if self.takes_seed else {}))
        generate_s = time.perf_counter() - start
        if len(answers) != len(payload["prompts"]):
            raise RuntimeError(f"engine {type(self.engine).__name__} returned {len(answers)} answers for "
                               f"{len(payload['prompts'])} prompts")
        return {"answers": list(answers), "actor": self.actor_id, "node": self.node_id, "start": wall_start,
                "end": time.time(), "generate_s": generate_s, "load_s": load_s}


class Router:
    """Hands each batch to an idle generator actor, downstream stages first (a rationalize call before an
    answer call, so rows finish and commit instead of piling up after their answer); counts the rows each
    stage of a pass has finished."""

    def __init__(self, actors: list):
        self.actors = actors
        self.idle: list[int] = []
        self.waiting: list = []  # heap of (priority, order, future)
        self.order = itertools.count()
        self.state = {i: ("starting", time.time()) for i in range(len(actors))}
        self.progress: dict[str, dict[str, list]] = {}

    async def _ready(self, index: int) -> None:
        try:
            await self.actors[index].info.remote()
        except Exception as e:  # an actor that cannot start stays out of the pool; the driver reports it
            self.state[index] = (f"failed to start: {type(e).__name__}: {str(e).splitlines()[0][:200]}", time.time())
            return
        self._release(index)

    async def start(self) -> None:
        """Each actor joins the pool once it is up (an autoscaling cluster may bring them late)."""
        for i in range(len(self.actors)):
            asyncio.get_running_loop().create_task(self._ready(i))

    def _release(self, index: int) -> None:
        while self.waiting:
            _, _, waiter = heapq.heappop(self.waiting)
            if not waiter.done():
                waiter.set_result(index)
                return
        self.state[index] = ("idle", time.time())
        self.idle.append(index)

    async def generate(self, wrapped: list, model_path: str, params: dict, priority: int = 1) -> dict:
        """``wrapped[0]``: the ObjectRef of the batch's frames, prompts and timing (passed on, not fetched).
        Lower ``priority`` is served first."""
        if self.idle and not self.waiting:
            index = self.idle.pop()
        else:
            waiter = asyncio.get_running_loop().create_future()
            heapq.heappush(self.waiting, (priority, next(self.order), waiter))
            index = await waiter
        self.state[index] = ("generating", time.time())
        try:
            return await self.actors[index].generate.remote(model_path, wrapped[0], **params)
        finally:
            self._release(index)

    def count(self, pass_id: str, stage: str, rows: int) -> None:
        cell = self.progress.setdefault(pass_id, {}).setdefault(stage, [0, 0.0])
        cell[0] += rows
        cell[1] = time.time()

    def report(self, pass_id: str) -> dict:
        now = time.time()
        return {"stages": {s: {"rows": c[0], "idle_s": round(now - c[1], 1)}
                           for s, c in self.progress.get(pass_id, {}).items()},
                "actors": [{"state": s, "for_s": round(now - t, 1)} for s, t in self.state.values()]}

    def forget(self, pass_id: str) -> None:
        self.progress.pop(pass_id, None)


@dataclass(frozen=True)
class PassGenerators:
    """What a pass's ``generate_batch`` tasks carry: the router, the model and the sampling of this pass."""

    router: Any
    pass_id: str
    model_path: str
    batch_size: int  # prompts per generator call
    max_new_tokens: int
    do_sample: bool
    temperature: float
    seed: int

    def submit(self, frames: list[np.ndarray], prompts: list[str], metadata: list, seed: int,
               priority: int = 1) -> ray.ObjectRef:
        """One generator call (at most ``batch_size`` prompts); ``ray.get`` the ref for its answers. Lower
        ``priority`` goes first (rationalize calls: 0)."""
        payload = ray.put({"frames": frames, "prompts": prompts, "metadata": metadata})
        params = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, temperature=self.temperature,
                      seed=seed)
        return self.router.generate.remote([payload], self.model_path, params, priority)

    def count(self, stage: str, rows: int) -> None:
        self.router.count.remote(self.pass_id, stage, rows)  # fire and forget


class GeneratorPool:
    """The run's generator actors and router (driver side). Use as a context manager; ``close()`` ends them."""

    def __init__(self, cfg, num_actors: int, log=print):
        gen = cfg.generate
        self.cfg, self.log = cfg, log
        options = dict(num_cpus=gen.num_cpus, num_gpus=gen.num_gpus, max_restarts=ACTOR_RESTARTS,
                       max_task_retries=ACTOR_RESTARTS, scheduling_strategy="SPREAD")
        actor_cls = ray.remote(GeneratorActor)
        engine_options = dataclasses.asdict(gen.vllm) if gen.engine == "vllm" else {}
        self.actors = [actor_cls.options(**options).remote(gen.engine, cfg.model.dtype, cfg.model.trust_remote_code,
                                                           engine_options) for _ in range(num_actors)]
        self.router = ray.remote(Router).options(num_cpus=0, max_concurrency=10_000).remote(self.actors)
        ray.get(self.router.start.remote())
        self._passes = 0

    @classmethod
    def start(cls, cfg, training: bool, log=print) -> "GeneratorPool":
        """A pool sized to what fits beside passes (and training, for a run), its first actors up."""
        from vstar_ray.resources import pool_size

        size = pool_size(cfg, ray.cluster_resources(), training)
        pool = cls(cfg, size, log)
        try:
            pool.wait_ready(min(size, cfg.generate.min_actors), cfg.generate.start_timeout_s,
                            f"each asks generate.num_cpus={cfg.generate.num_cpus} CPU and "
                            f"generate.num_gpus={cfg.generate.num_gpus} GPU")
        except BaseException:
            pool.close()
            raise
        return pool

    def wait_ready(self, least: int, timeout_s: float, why: str) -> int:
        """Block until ``least`` actors are up; raises ``PoolStartError`` (naming ``why``) after ``timeout_s``."""
        deadline, next_note = time.time() + timeout_s, time.time() + 30
        while True:
            states = [a["state"] for a in ray.get(self.router.report.remote(""))["actors"]]
            ready = sum(s in ("idle", "generating") for s in states)
            failed = [s for s in states if s.startswith("failed")]
            if ready >= least:
                return ready
            if len(failed) > len(states) - least:
                raise PoolStartError(f"generator actors could not start: {failed[0]}")
            if time.time() > deadline:
                raise PoolStartError(f"only {ready} of {least} generator actors started within {timeout_s:.0f}s "
                                     f"(generate.start_timeout_s); {why}")
            if time.time() > next_note:
                self.log(f"waiting for generator actors: {ready} of {least} up ({why})")
                next_note = time.time() + 30
            time.sleep(0.2)

    def for_pass(self, model_path: str, mode: str) -> PassGenerators:
        gen = self.cfg.generate
        self._passes += 1
        tokens = gen.max_new_tokens if mode == "train" else self.cfg.eval.max_new_tokens or gen.max_new_tokens
        return PassGenerators(self.router, f"pass-{self._passes}-{time.time()}", model_path, gen.batch_size,
                              tokens, gen.do_sample and mode == "train", gen.temperature, self.cfg.seed)

    def report(self, generators: PassGenerators) -> dict:
        return ray.get(self.router.report.remote(generators.pass_id))

    def end_pass(self, generators: PassGenerators) -> None:
        self.router.forget.remote(generators.pass_id)

    def processes(self) -> list[dict]:
        """Each live actor's pid, node, how often it loaded a model, and which model it holds."""
        infos = []
        for actor in self.actors:
            try:
                infos.append(ray.get(actor.info.remote(), timeout=60))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue
        return infos

    def release(self) -> None:
        """Every actor frees its model (before training, so the trainers get the memory)."""
        for actor in self.actors:
            try:
                ray.get(actor.release.remote(), timeout=300)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue

    def close(self) -> None:
        for actor in [*self.actors, self.router]:
            ray.kill(actor, no_restart=True)

    def __enter__(self) -> "GeneratorPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PoolStartError(WorkFailed):
    """The generator actors did not come up; the message names the config keys that size them."""
