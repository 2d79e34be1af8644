"""One writer per run folder, and the configs a run ran with (``vstar_ray.run_folder``), with real processes."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest
import yaml

from vstar_ray.config import ConfigError, load_config
from vstar_ray.run_folder import RunFolderBusy, RunLock, record_config

HOLD = "import sys, time; from pathlib import Path; from vstar_ray.run_folder import RunLock\n" \
       "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)\n"


@contextlib.contextmanager
def held(code: str, arg) -> Iterator[subprocess.Popen]:
    """A process running ``code`` (which prints ``held`` once it holds the lock), SIGKILLed when the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", code, str(arg)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_a_live_writer_is_named_and_a_dead_one_s_lock_is_taken_over(tmp_path):
    with held(HOLD, tmp_path) as holder:
        with pytest.raises(RunFolderBusy, match=rf"in use by pid {holder.pid} on "):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):  # the kernel dropped the dead holder's lock: recognised as stale
        assert f"pid {os.getpid()} " in (tmp_path / ".lock").read_text()


def test_a_lock_held_by_an_unrelated_process_with_binary_content_is_named_so(tmp_path):
    """Once a ``'utf-8' codec can't decode`` error."""
    (tmp_path / ".lock").write_bytes(b"\xff\xfe\x00 not ours \x9c\n")
    other = ("import fcntl, sys, time\nf = open(sys.argv[1], 'rb+')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
             "print('held', flush=True)\ntime.sleep(600)\n")
    with held(other, tmp_path / ".lock"):
        with pytest.raises(RunFolderBusy, match=rf"^{tmp_path} is in use by another process \(pid unknown\); "):
            with RunLock(tmp_path):
                pass


def test_resume_with_a_changed_config_is_refused_listing_the_keys(tmp_path):
    first = load_config("configs/demo.yaml")
    record_config(tmp_path, first, resume=False, allow_changed=False)
    changed = load_config("configs/demo.yaml", ["train.lr=1e-4", "cycles=2"])
    with pytest.raises(ConfigError, match=r"cycles: 3 -> 2; train.lr: 0.0005 -> 0.0001.*--allow-changed-config"):
        record_config(tmp_path, changed, resume=True, allow_changed=False)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["cycles"] == 3  # the record is kept
    assert record_config(tmp_path, changed, resume=True, allow_changed=True) == ["cycles: 3 -> 2",
                                                                                 "train.lr: 0.0005 -> 0.0001"]
    history = sorted((tmp_path / "config_history").glob("*.yaml"))
    assert [yaml.safe_load(h.read_text())["cycles"] for h in history] == [3, 2]
    assert record_config(tmp_path, changed, resume=True, allow_changed=False) == []  # same config: no question


def test_the_vstar_run_verb_refuses_a_changed_resume_before_ray_starts(tmp_path):
    """A run folder whose config.yaml says one thing, a resume that says another: rc 2, the keys, in seconds."""
    from tests.helpers.tiny_families import built

    model = built("qwen2_vl", str(tmp_path / "models"))
    manifest = tmp_path / "m.parquet"
    from vstar_ray.data.manifest import write_manifest

    write_manifest([{"id": "a", "video": "a.mp4", "labels": {"x": "cat"}, "verifiers": {"x": "class"}}], manifest)
    common = ["--set", f"model.path={model}", "--set", f"data.train_manifest={manifest}", "--set",
              f"data.eval_manifest={manifest}", "--set", "demo_kit=", "--set", "data.frame_size=56"]
    out = tmp_path / "run"
    out.mkdir()
    (out / "state.json").write_text('{"stages": {}}')
    record_config(out, load_config("configs/demo.yaml", [a for a in common[1::2]]), resume=False, allow_changed=False)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "vstar_ray", "run", "--config", "configs/demo.yaml", "--out", str(out),
                           "--resume", *common, "--set", "train.epochs=9"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("vstar run: error: --resume with a config that differs") and "train.epochs: 4 -> 9" in last
    assert "Traceback" not in proc.stderr
    assert time.time() - start < 120
