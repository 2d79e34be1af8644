"""What a run asks of the Ray cluster, checked before anything starts, so that a config the cluster cannot
hold fails in seconds with the keys to change instead of waiting forever.

The generator actors live for the whole run and keep their logical CPUs/GPUs (``generation.pool``). Beside them
a pass needs one decode task (``data.decode_num_cpus``) and the light read/verify/write operators
(``verify.num_cpus``); training needs ``train.num_workers`` workers plus the same two for its ingest. The
pool gets as many actors as fit beside the larger of the two, between ``generate.min_actors`` and
``generate.max_actors``. On a cluster that adds nodes on demand (``autoscaling: true``) the pool asks for
``generate.max_actors`` and waits up to ``generate.start_timeout_s`` instead.
"""

from __future__ import annotations

import math
import os

from vstar_ray.config import Config
from vstar_ray.errors import InputError, handle_sigterm

EPS = 1e-9
# Ray keeps this many idle worker processes before it ends the rest (its default: one per CPU). A pass runs a
# dozen light tasks at once (decode, the tasks that wait on the generators, verify, commit); on a 2-CPU machine
# Ray ended and restarted ~13 worker processes per pass, ~1.5 CPU-seconds each, and a 1,024-video pass took
# 26 s instead of 13 s (benchmarks/README.md). Only a cluster started here gets it; `ray start` clusters keep
# their own setting (one per CPU: plenty on GPU nodes).
WARM_WORKERS = 32


# Ray Train on a cluster started here: its controller looks at the workers every 0.2 s instead of 2 s (a finetune
# ends up to 2 s sooner, and it starts sooner too), and no preemption watcher starts (nothing preempts this machine).
# A finetune of the small test kit took 15.5-18.8 s before, 12.3-14.7 s after (1 worker; 2 workers 21.7 -> 17.1 s).
LOCAL_TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


def init_ray(**kwargs) -> None:
    """Connect to the Ray cluster (``RAY_ADDRESS``, a job's) or start a local one that keeps its workers warm."""
    import ray

    from vstar_ray.console import quiet_loggers, quiet_ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_num_workers_soft_limit", str(WARM_WORKERS))
    if not os.environ.get("RAY_ADDRESS"):  # a cluster started here, on this machine
        for key, value in LOCAL_TRAIN_ENV.items():
            os.environ.setdefault(key, value)
        # "local", not Ray's default: without an address Ray joins the cluster that /tmp/ray/ray_current_cluster
        # names, a file `ray start --head` leaves behind when its cluster dies other than by `ray stop`; ray.init
        # then fails, or waits for that cluster (10 minutes once, saying nothing)
        kwargs.setdefault("address", "local")
    ray.init(**{**quiet_ray(), **kwargs})
    handle_sigterm()  # ray.init replaced the CLI's SIGTERM handler
    quiet_loggers()


class ResourceError(InputError):
    """The config asks for more than the cluster has; the message names the keys."""


def _fit(total: float, reserved: float, each: float) -> int | None:
    """How many asks of ``each`` fit in ``total - reserved`` (None: this resource is not asked for)."""
    if each <= 0:
        return None
    return max(0, math.floor((total - reserved + EPS) / each))


def pass_cpus(cfg: Config) -> float:
    return cfg.data.decode_num_cpus + cfg.verify.num_cpus


def training_asks(cfg: Config) -> tuple[float, float]:
    """CPUs and GPUs of a finetune: its workers and their Ray Data ingest (decode + light operators)."""
    t = cfg.train
    return t.num_workers * t.cpus_per_worker + pass_cpus(cfg), t.num_workers * t.gpus_per_worker if t.use_gpu else 0.0


def pool_size(cfg: Config, cluster: dict[str, float], training: bool) -> int:
    """The number of generator actors to start; raises ``ResourceError`` naming the keys when even
    ``generate.min_actors`` do not fit beside what passes (and, for a run, training) need."""
    gen = cfg.generate
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    train_cpus, train_gpus = training_asks(cfg) if training else (0.0, 0.0)
    if cfg.autoscaling:
        return gen.max_actors
    problems = []
    if gen.num_gpus > 0 and gpus <= 0:
        problems.append(f"generate.num_gpus={gen.num_gpus} but the cluster has no GPU")
    if training and cfg.train.use_gpu and gpus <= 0:
        problems.append("train.use_gpu=true but the cluster has no GPU")
    reserved_cpus = max(pass_cpus(cfg), train_cpus)
    fits = [n for n in (_fit(cpus, reserved_cpus, gen.num_cpus), _fit(gpus, train_gpus, gen.num_gpus)) if n is not None]
    size = min([gen.max_actors, *fits])
    if reserved_cpus > cpus + EPS or (train_gpus > gpus + EPS):
        size = 0
    if size < gen.min_actors or problems:
        need = [f"generate.min_actors={gen.min_actors} generator actors x (generate.num_cpus={gen.num_cpus} CPU, "
                f"generate.num_gpus={gen.num_gpus} GPU), kept for the whole run",
                f"a pass: data.decode_num_cpus={cfg.data.decode_num_cpus} + verify.num_cpus={cfg.verify.num_cpus} CPU"]
        if training:
            need.append(f"training beside the generators: train.num_workers={cfg.train.num_workers} x "
                        f"(train.cpus_per_worker={cfg.train.cpus_per_worker} CPU"
                        + (f", train.gpus_per_worker={cfg.train.gpus_per_worker} GPU" if cfg.train.use_gpu else "")
                        + ") + its ingest (data.decode_num_cpus + verify.num_cpus)")
        raise ResourceError(
            f"the config does not fit this Ray cluster ({cpus:g} CPU, {gpus:g} GPU): "
            + "; ".join(problems + [f"it needs {'; '.join(need)}"])
            + ". Lower those keys (logical CPUs may be fractions, e.g. 0.25), or set autoscaling: true on a "
              "cluster that adds nodes on demand")
    return size
