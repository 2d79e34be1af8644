"""A finished run folder as export reads it: its config, its records and the folder of one of its cycles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from vstar_ray.errors import InputError
from vstar_ray.results import RunRecord


@dataclass(frozen=True)
class Run:
    folder: Path
    config: dict
    record: RunRecord

    @classmethod
    def open(cls, folder: str | Path) -> "Run":
        folder = Path(folder)
        if not (folder / "metrics.json").is_file() or not (folder / "config.yaml").is_file():
            raise InputError(f"{folder} is not a vstar run folder (no metrics.json and config.yaml)")
        record = RunRecord.read(folder / "metrics.json")
        if not record.cycles:
            raise InputError(f"{folder}: the run finished no cycle yet")
        return cls(folder, yaml.safe_load((folder / "config.yaml").read_text()) or {}, record)

    def cycle(self, which: str) -> int:
        """``last``, ``best`` (the highest held-out accuracy; the earliest on a tie) or a cycle number."""
        done = [c.cycle for c in self.record.cycles]
        if which == "last":
            return done[-1]
        if which == "best":
            return max(self.record.cycles, key=lambda c: (c.eval_accuracy, -c.cycle)).cycle
        try:
            k = int(which)
        except ValueError:
            raise InputError(f"--cycle {which!r}: expected last, best or a cycle number") from None
        if k not in done:
            raise InputError(f"--cycle {k}: {self.folder} has cycles {', '.join(map(str, done))}")
        return k

    def checkpoint(self, k: int) -> Path:
        path = self.folder / f"cycle_{k}" / "checkpoint"
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise InputError(f"{path} holds no checkpoint")
        return path
