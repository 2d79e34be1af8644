"""What a person sees while vstar-ray works: one line per stage, and a live progress line for generation
(rows committed, rate, ETA) and training (steps, loss). Everything else (Ray's and the libraries' logs and
warnings) goes to ``OUT/logs/``; ``--verbose`` puts it all back on the console.

On a terminal the progress line redraws in place; in a log (``ray job logs``, CI) it is printed at most every
~20% of a stage or 30 seconds, so logs stay short.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path

_STATE: dict = {"verbose": True, "log_file": None, "handler": None}
QUIET_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve", "transformers", "py.warnings", "filelock",
                 "urllib3", "datasets", "huggingface_hub", "peft", "torch", "sentence_transformers", "mlflow", "wandb",
                 "alembic", "optuna")
# inherited by Ray's worker processes: their libraries stay quiet in Ray's logs too
QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
             "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore", "WANDB_SILENT": "true",
             "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}


def setup(out: str | Path | None, verbose: bool) -> Path | None:
    """Route logs: with ``verbose`` nothing changes; otherwise library logs and warnings go to
    ``OUT/logs/vstar.log`` (or nowhere when there is no output folder) and Ray workers do not print to this
    console. Returns the log file."""
    _STATE["verbose"] = verbose
    if verbose:
        return None
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    log_file = None
    handler: logging.Handler = logging.NullHandler()
    if out is not None:
        try:
            (Path(out) / "logs").mkdir(parents=True, exist_ok=True)
            log_file = Path(out) / "logs" / "vstar.log"
            handler = logging.FileHandler(log_file)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handler.setLevel(logging.INFO)
        except OSError:  # an output folder that cannot be written is reported by the verb itself
            log_file = None
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    _STATE["handler"] = handler
    quiet_loggers()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_default_handler()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    _STATE["log_file"] = log_file
    return log_file


def quiet_loggers() -> None:
    """Library loggers write to the log file only. Called again after ``ray.init`` and the first import of
    ``ray.data``, which install console handlers of their own."""
    if _STATE["verbose"]:
        return
    handler = _STATE.get("handler") or logging.NullHandler()
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) or h is handler:
                logger.removeHandler(h)
        logger.addHandler(handler)
        logger.propagate = False


def quiet_ray() -> dict:
    """``ray.init`` arguments that keep Ray off this console (its own session logs keep everything)."""
    if _STATE["verbose"]:
        return {}
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    quiet_loggers()
    route_ray_messages()
    return {"log_to_driver": False}


def _ray_message_to_log(data: dict, ignore_prefix: bool = False) -> None:
    for line in data.get("lines", []):
        logging.getLogger("ray.driver").warning("(%s) %s", data.get("pid"), line)


def route_ray_messages() -> None:
    """The messages Ray's cluster sends this driver (``(raylet) WARNING: N PYTHON worker processes have been
    started ...``, ``(raylet) Task ... failed``) go to the log file, not the console. Ray's driver thread prints them
    with ``ray._private.worker.print_to_stdstream`` whatever ``log_to_driver`` says, and Ray has no option to route
    them; that function is replaced for this driver (the worker-output printer, off here, binds its own copy)."""
    import ray._private.worker as ray_worker

    ray_worker.print_to_stdstream = _ray_message_to_log


def link_ray_logs(out: Path) -> None:
    """``OUT/logs/ray``: the Ray session's logs (every worker's output), when the cluster runs on this machine."""
    try:
        import ray

        session = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"  # noqa: SLF001
        link = Path(out) / "logs" / "ray"
        link.parent.mkdir(parents=True, exist_ok=True)
        if session.is_dir() and not link.exists():
            link.symlink_to(session, target_is_directory=True)
    except (AttributeError, OSError):
        pass


def say(message: str) -> None:
    """One line on the console (and in the log file)."""
    line = f"[vstar {time.strftime('%H:%M:%S')}] {message}"
    Progress.clear()
    print(line, flush=True)
    if _STATE["log_file"] is not None:
        with open(_STATE["log_file"], "a") as f:
            f.write(line + "\n")


class Progress:
    """A progress line: ``update(done, total, extra)``; ``close()`` ends it."""

    _active: "Progress | None" = None
    tty = sys.stdout.isatty()

    def __init__(self, label: str, unit: str):
        self.label, self.unit, self.start = label, unit, time.time()
        self.last_print, self.last_fraction, self.width = 0.0, -1.0, 0
        Progress._active = self

    def update(self, done: int, total: int, extra: str = "") -> None:
        if _STATE["verbose"] and not self.tty:
            return
        elapsed = max(1e-6, time.time() - self.start)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and total else 0
        fraction = done / total if total else 0.0
        bar = "#" * int(20 * fraction) + "-" * (20 - int(20 * fraction))
        text = (f"  {self.label} [{bar}] {done}/{total} {self.unit}, {rate:.1f}/s, ETA {eta:.0f}s"
                + (f", {extra}" if extra else ""))
        if self.tty:
            sys.stdout.write("\r" + text.ljust(self.width))
            sys.stdout.flush()
            self.width = len(text)
        elif fraction - self.last_fraction >= 0.2 or time.time() - self.last_print >= 30:
            print(text, flush=True)
            self.last_fraction, self.last_print = fraction, time.time()

    def close(self) -> None:
        if self.tty and self.width:
            sys.stdout.write("\r" + " " * self.width + "\r")
            sys.stdout.flush()
        self.width = 0
        if Progress._active is self:
            Progress._active = None

    @classmethod
    def clear(cls) -> None:
        if cls._active is not None and cls.tty and cls._active.width:
            sys.stdout.write("\r" + " " * cls._active.width + "\r")
            sys.stdout.flush()
            cls._active.width = 0


class FileWatcher:
    """Polls ``read()`` every half second in a thread and hands the result to ``show`` (training progress from
    the steps rank 0 appends)."""

    def __init__(self, read, show):
        self.read, self.show, self.stop = read, show, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                value = self.read()
            except (OSError, ValueError):
                continue
            if value is not None:
                self.show(value)

    def __enter__(self) -> "FileWatcher":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
