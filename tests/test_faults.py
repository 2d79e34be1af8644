"""Faults injected for real: a killed generator actor, a killed training worker, a SIGKILLed run, a run sent
SIGTERM, a disk that fills up under ``--out``.

Each test kills real processes (``os.kill``) or fills a real filesystem while real work is in flight and checks
that nothing is lost or duplicated, and what the user is told.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.console import assert_console
from tests.helpers.runs import kit_subset, small_run_overrides
from tests.helpers.processes import kill_tree, session_processes
from vstar_ray.config import load_config
from vstar_ray.demo.kit import write_kept_pass

pytestmark = pytest.mark.slow


def _alive_actor_pids(class_fragment: str) -> list[int]:
    """Ray titles an actor's worker process ``ray::<Class>.<method running>``. Only this test's cluster (started
    by this process) is searched: another test may run a cluster of its own beside it."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:  # ended meanwhile
            continue
        if title.startswith("ray::") and class_fragment in title:
            pids.append(proc.pid)
    return pids


def _kill_when(condition, class_fragment: str, timeout: float = 240.0) -> int:
    """Wait for ``condition()``, then SIGKILL one live actor process whose class matches; returns its pid."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            pids = _alive_actor_pids(class_fragment)
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                return pids[0]
        time.sleep(0.1)
    raise AssertionError(f"no live {class_fragment} actor to kill within {timeout}s")


def test_killed_training_worker_resumes_from_the_last_epoch_checkpoint(small_kit, tmp_path, ray_local):
    from vstar_ray.training.finetune import finetune

    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + ["train.epochs=3", "train.max_failures=2"])
    generated = write_kept_pass(small_kit, tmp_path / "generated")
    storage = tmp_path / "ray_train"
    killed: list[int] = []

    def first_epoch_saved() -> bool:
        # registered by Ray Train, not merely written: the files of a checkpoint appear before the controller
        # records it, and a worker killed in between restarts from scratch (correctly, but it proves nothing)
        snapshot = storage / "killed" / "checkpoint_manager_snapshot.json"
        try:
            return bool(json.loads(snapshot.read_text())["checkpoint_results"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return False

    killer = threading.Thread(target=lambda: killed.append(_kill_when(first_epoch_saved, "RayTrainWorker")))
    killer.start()
    result = finetune(cfg, generated, str(small_kit / "train.parquet"), cfg.model.path, tmp_path / "ckpt", storage,
                      final_cycle=True, name="killed")
    killer.join()
    assert killed, "no training worker was killed"
    assert result.epoch == 3 and result.resumed_from_epoch >= 1, result
    assert (tmp_path / "ckpt" / "config.json").exists() and not (tmp_path / "ckpt" / "trainer_state.pt").exists()


def test_killed_generator_actor_loses_and_duplicates_no_row(small_kit, tmp_path, ray_local):
    from vstar_ray.generation.pipeline import run_pass

    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + ["generate.batch_size=2"])
    out = tmp_path / "generated"
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(
        run_pass(cfg, str(small_kit / "train.parquet"), cfg.model.path, out, "train").to_json()))
    runner.start()
    # kill a generator while it runs a batch (Ray titles its process with the method it runs): the first of 16
    # answer batches, so the pass is mid-way whatever the machine's speed; Ray restarts it and retries the call
    pid = _kill_when(lambda: True, "GeneratorActor.generate")
    assert runner.is_alive(), "the pass finished before the generator was killed; the test proves nothing"
    runner.join()
    ids = pq.read_table(out, columns=["id"])["id"].to_pylist()
    expected = pq.read_table(small_kit / "train.parquet", columns=["id"])["id"].to_pylist()
    assert sorted(ids) == sorted(expected), f"after killing pid {pid}"
    assert result["videos"] == len(expected) and result["failed_videos"] == 0


def _run_cmd(out: Path, kit: Path, folder: Path) -> list[str]:
    """A small run: 16 training videos (every label type) and 4 held-out ones; their manifests go in ``folder``."""
    train, heldout = (folder / f"{split}.parquet" for split in ("train", "heldout"))
    if not train.exists():
        kit_subset(kit, "train", 16, train)
        kit_subset(kit, "heldout", 4, heldout)
    cmd = [sys.executable, "-m", "vstar_ray", "run", "--config", "configs/demo.yaml", "--out", str(out)]
    for item in small_run_overrides(kit) + ["train.epochs=2", f"data.train_manifest={train}",
                                            f"data.eval_manifest={heldout}"]:
        cmd += ["--set", item]
    return cmd


def _metrics_without_timings(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())

    def strip(entry: dict) -> dict:
        drop = {"seconds", "timings", "nodes", "train", "generator_busy", "resumed_rows"}
        return {k: v for k, v in entry.items() if k not in drop}

    return {"baseline": {k: v for k, v in metrics["baseline"].items() if k in ("eval_accuracy", "eval")},
            "cycles": [strip(c) for c in metrics["cycles"]]}


def test_sigkilled_run_resumes_with_nothing_lost_or_redone(small_kit, tmp_path):
    """SIGKILL the whole process group during training; --resume finishes the run from the finished stages, with
    every video exactly once and the metrics of an uninterrupted run. (A kill inside a generation pass, and its
    resume inside the pass, is tests/test_passes.py's.)"""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_run_cmd(reference, small_kit, tmp_path), check=True, env=env, capture_output=True)

    out = tmp_path / "interrupted"
    logs = []
    for stage, delay in (("cycle_1/train", 4.0),):
        log = open(tmp_path / f"log_{len(logs)}.txt", "w")
        logs.append(log.name)
        cmd = _run_cmd(out, small_kit, tmp_path) + (["--resume"] if (out / "state.json").exists() else [])
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and f"{stage}: running" not in Path(log.name).read_text():
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(delay)  # inside the stage
        assert proc.poll() is None, f"the run ended before it could be killed in {stage}"
        kill_tree(proc)
        state = json.loads((out / "state.json").read_text())["stages"]
        assert stage not in state, f"{stage} was recorded as done although it was killed"

    final = subprocess.run(_run_cmd(out, small_kit, tmp_path) + ["--resume"], env=env, capture_output=True, text=True)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "baseline/eval: done earlier, skipped" in final.stdout
    assert "cycle_1/generate: done earlier, skipped" in final.stdout
    ids = pq.read_table(out / "cycle_1" / "generated", columns=["id"])["id"].to_pylist()
    expected = pq.read_table(tmp_path / "train.parquet", columns=["id"])["id"].to_pylist()
    assert len(expected) == 16 and sorted(ids) == sorted(expected)
    assert _metrics_without_timings(out) == _metrics_without_timings(reference)


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs) the test can grow: ``(folder, grow)``; ``(tmp_path / "disk", None)`` where
    mounting is not allowed (not root, or a container without CAP_SYS_ADMIN)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        yield folder, None, (mounted.stderr or mounted.stdout).strip()
        return
    try:
        yield folder, lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True), ""
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_sigterm_then_a_full_disk_each_stop_the_run_in_one_line_and_resume_finishes(small_kit, tmp_path,
                                                                                     small_disk):
    """SIGTERM is what Kubernetes, Slurm and ``ray job stop`` send. During training it once gave exit 134 and a Ray
    C++ abort dump; now: one line saying how to resume, exit 143, the finished stages recorded, and no process of
    the run's Ray cluster left behind. The resume then meets a full disk: the seed model (2.9 MiB) does not fit on
    the 2 MiB filesystem, so the first training checkpoint fills it (the frame cache is off, so that it is the
    checkpoint; a cache that cannot be written is tests/test_frame_cache.py's): one line naming the folder, the
    error and the space left, exit 1 (failed work, not bad input). Once there is space, ``--resume`` finishes."""
    disk, grow, why_not = small_disk
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    out = disk / "run"
    cmd = _run_cmd(out, small_kit, tmp_path) + [
        "--set", "train.max_failures=0", "--set", "train.epochs=1", "--set", "data.frame_cache=off"]
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while "cycle_1/train: running" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # inside the finetune: Ray Train's controller and workers are up, no checkpoint written yet
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = log.read_text()
    assert code == 143, text[-3000:]
    assert text.strip().splitlines()[-1] == ("vstar run: terminated (SIGTERM). Finished stages and committed rows are "
                                             "kept. Run the same command with --resume to continue.")
    assert_console(text)  # no Ray line, no abort dump
    stages = json.loads((out / "state.json").read_text())["stages"]
    assert "cycle_1/generate" in stages and "cycle_1/train" not in stages
    deadline = time.time() + 30
    while session_processes(proc.pid) and time.time() < deadline:
        time.sleep(0.5)
    left = [(p, " ".join(p.cmdline()[:3])) for p in session_processes(proc.pid)]
    for p, _ in left:
        p.kill()
    assert not left, [name for _, name in left]

    if grow is not None:
        full = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
        assert full.returncode == 1, full.stdout[-2000:] + full.stderr[-2000:]
        last = full.stderr.strip().splitlines()[-1]
        assert last.startswith(f"vstar run: failed: {out / 'ray_train' / 'cycle_1'}: No space left on device ("), last
        assert last.endswith(f"MiB free on the filesystem of {out})"), last
        assert_console(full.stdout + full.stderr)
        stages = json.loads((out / "state.json").read_text())["stages"]
        assert "cycle_1/train_json" in stages and "cycle_1/train" not in stages
        grow()
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "cycle_1/generate: done earlier, skipped" in done.stdout
    assert json.loads((out / "metrics.json").read_text())["cycles"][0]["train"]["steps"] > 0
    if grow is None:
        pytest.skip(f"SIGTERM checked; the full disk was not: cannot mount a small tmpfs here ({why_not})")
