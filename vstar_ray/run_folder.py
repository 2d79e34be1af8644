"""A run folder has one writer at a time, keeps the configs it ran with, and records its finished stages.

- ``RunLock``: ``DIR/.lock``, held with ``flock`` for as long as the run lives and naming its holder (pid,
  host, start time, command). The kernel drops the lock when the holder dies, so a lock left by a killed run
  is recognised as stale and taken over; a live holder makes the second run fail at once with its name.
- ``record_config``: ``DIR/config.yaml`` is the config of the finished stages. ``--resume`` with another
  config is refused, listing the keys that differ, unless the user allows it; every start and resume appends
  its config to ``DIR/config_history/`` (numbered, with the time and command), so none is ever lost.
- ``RunState``: ``DIR/state.json``, the typed result of every finished stage, written atomically after the
  stage's outputs; ``stage(name, kind, fn)`` runs a stage once and skips it on ``--resume``.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import yaml

from vstar_ray.config import Config, ConfigError, save_config, to_dict
from vstar_ray.console import say
from vstar_ray.io import atomic_write_json, atomic_write_text, flatten, read_json

R = TypeVar("R")


class RunFolderBusy(ConfigError):
    """Another live process writes this run folder."""


class RunLock:
    def __init__(self, out: Path):
        self.path = Path(out) / ".lock"
        self.file = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8", errors="replace")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read(1000).strip()
            f.close()
            if not holder.startswith("pid "):  # locked by something that is not a vstar run
                holder = "another process (pid unknown)"
            raise RunFolderBusy(f"{self.path.parent} is in use by {holder}; wait for it to finish, or choose "
                                f"another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')} "
                f"({' '.join(sys.argv)[:300]})\n")
        f.flush()
        self.file = f
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the lock
            self.file = None


def config_changes(before: dict, after: dict) -> list[str]:
    """``key: old -> new`` for every key whose value differs. A key the earlier config did not have (a run made
    by an older version) is no change while it keeps its default."""
    a, b, defaults = flatten(before), flatten(after), flatten(to_dict(Config()))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not (k not in a and k in defaults and b.get(k) == defaults[k])]


def record_config(out: Path, cfg: Config, resume: bool, allow_changed: bool) -> list[str]:
    """Refuse a resume whose config differs from the run's (unless ``allow_changed``), then write
    ``config.yaml`` and append the config to ``config_history/``. Returns the changed keys."""
    current = out / "config.yaml"
    changes: list[str] = []
    if resume and current.exists():
        changes = config_changes(yaml.safe_load(current.read_text()) or {}, to_dict(cfg))
        if changes and not allow_changed:
            raise ConfigError(
                f"--resume with a config that differs from the one {out} ran with: " + "; ".join(changes)
                + ". Its finished stages were made with the old one: resume with the old config, or pass "
                  "--allow-changed-config to continue with the new one (both stay in config_history/)")
    history = out / "config_history"
    history.mkdir(parents=True, exist_ok=True)
    number = len(list(history.glob("*.yaml"))) + 1
    header = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:1000],
              "resume": resume, "changed": changes}
    atomic_write_text(history / f"{number:03d}.yaml",
                      "# " + json.dumps(header) + "\n" + yaml.safe_dump(to_dict(cfg), sort_keys=False))
    save_config(cfg, current)
    return changes


class RunState:
    """``state.json``: the result of every finished stage, keyed by name (``cycle_2/train``)."""

    def __init__(self, out: Path):
        self.path = out / "state.json"
        self.stages: dict[str, dict] = read_json(self.path, "run state")["stages"] if self.path.exists() else {}
        self.ran: set[str] = set()  # stages that ran in this invocation (not skipped)

    def stage(self, name: str, kind: type[R], fn: Callable[[], R]) -> R:
        """``fn()``'s result (a ``results`` record of type ``kind``), recorded once it returns; on a resume, the
        recorded result instead, without running ``fn``. One line on the console either way."""
        if name in self.stages:
            say(f"{name}: done earlier, skipped")
            return kind.from_json(self.stages[name])  # type: ignore[attr-defined]
        say(f"{name}: running")
        start = time.time()
        result = fn()
        if not getattr(result, "seconds", 0):
            result.seconds = round(time.time() - start, 2)  # type: ignore[attr-defined]
        self.ran.add(name)
        say(result.line(name))  # type: ignore[attr-defined]
        self.stages[name] = result.to_json()  # type: ignore[attr-defined]
        atomic_write_json(self.path, {"stages": self.stages, "updated": time.time()})
        return result
