"""Passes that survive and generators that start once, with real processes, real kills and a real Ray cluster.

- a run SIGKILLed inside a generation pass resumes inside the pass: every row once, nothing that was committed
  generated again, ``resumed_rows`` recorded, a committed shard damaged meanwhile named and only its rows made
  again; a second writer of the same folder is refused (a kill during
  training is ``test_faults.py``'s);
- a pass whose generators stop answering fails naming the stage, instead of hanging, and stops its execution;
- the run's generator actors start once and load each new checkpoint in place;
- a config the cluster cannot hold is refused in seconds; the default config generates on two cores.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import kit_subset, small_run_overrides
from tests.helpers.processes import committed_rows, damage_column, kill_tree
from vstar_ray.config import load_config
from vstar_ray.data.manifest import write_manifest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}


def repeated_manifest(kit: Path, n: int, out: Path) -> Path:
    """``n`` rows over the kit's training videos (absolute paths, new ids)."""
    base = pq.read_table(kit / "train.parquet").to_pylist()
    rows = [{**base[i % len(base)], "id": f"row-{i:04d}", "video": str(kit / base[i % len(base)]["video"])}
            for i in range(n)]
    write_manifest(rows, out)
    return out


def test_a_run_killed_half_way_through_a_pass_resumes_inside_it(small_kit, tmp_path):
    n = 96
    manifest = repeated_manifest(small_kit, n, tmp_path / "train.parquet")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vstar_ray", "run", "--config", "configs/demo.yaml", "--out", str(out)]
    heldout = kit_subset(small_kit, "heldout", 4, tmp_path / "heldout.parquet")
    for item in small_run_overrides(small_kit) + [f"data.train_manifest={manifest}", "generate.batch_size=4",
                                                  "data.decode_batch_size=4", f"data.eval_manifest={heldout}"]:
        cmd += ["--set", item]
    log = tmp_path / "first.log"
    with open(log, "w") as f:
        first = subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 400
    while "baseline/eval: running" not in log.read_text():
        assert first.poll() is None, log.read_text()[-3000:]
        assert time.time() < deadline, "the run did not start its baseline eval"
        time.sleep(0.05)
    # a second writer of the same folder, while the first lives: refused at once, naming the holder (checked
    # before the pass, which can take less time than starting a second process)
    second = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stderr[-2000:]
    assert f"is in use by pid {first.pid} on " in second.stderr
    assert first.poll() is None, log.read_text()[-3000:]
    partial = out / "cycle_1" / ".generated.partial"
    while committed_rows(partial) < n // 3:  # a third: what commits while the kill lands still leaves rows to do
        assert first.poll() is None, log.read_text()[-3000:]
        assert time.time() < deadline, "the pass did not get a third of the way"
        time.sleep(0.05)
    kill_tree(first)
    committed_at_kill = len(pq.read_table(partial, columns=["id"]))
    assert n // 3 <= committed_at_kill < n, "killed too late to prove anything"
    # and a disk damaged one committed shard in its middle (its ids still read): only its rows are made again
    damaged = sorted(partial.glob("part-*.parquet"))[0]
    lost = pq.read_metadata(damaged).num_rows
    damage_column(damaged, "answer")

    final = subprocess.run(cmd + ["--resume"], env=ENV, capture_output=True, text=True)  # the dead run's lock is stale
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert f"cycle_1/generate: committed shard {damaged} is unreadable" in final.stdout
    ids = pq.read_table(out / "cycle_1" / "generated", columns=["id"])["id"].to_pylist()
    assert sorted(ids) == sorted(pq.read_table(manifest)["id"].to_pylist())  # every row, each once
    state = json.loads((out / "state.json").read_text())["stages"]
    kept = committed_at_kill - lost
    assert state["cycle_1/generate"]["resumed_rows"] == kept  # nothing committed and sound was generated again
    assert state["cycle_1/generate"]["dropped_shards"] == 1 and state["cycle_1/generate"]["videos"] == n
    (cycle,) = json.loads((out / "metrics.json").read_text())["cycles"]
    assert cycle["resumed_rows"] == kept and cycle["dropped_shards"] == 1
    print(f"killed at {committed_at_kill}/{n} rows committed, {lost} of them damaged; regenerated {n - kept}")


class StuckEngine:
    """An engine whose generate() never returns: what a wedged GPU or a dead NFS mount looks like."""

    def __init__(self, model_path, dtype, trust_remote_code):
        pass

    def generate(self, frames, prompts, max_new_tokens, do_sample, temperature, metadata=None):
        time.sleep(3600)


def test_a_pass_that_stops_moving_fails_naming_its_stage(small_kit, tmp_path, ray_local):
    from vstar_ray.generation.pipeline import PassStalled, run_pass

    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + [
        "generate.engine=tests.test_passes:StuckEngine", "generate.stall_timeout_s=6"])
    start = time.time()
    with pytest.raises(PassStalled, match=r"for 6s \(generate.stall_timeout_s\): rows stopped at 'answer'") as e:
        run_pass(cfg, str(small_kit / "heldout.parquet"), cfg.model.path, tmp_path / "eval", "eval")
    assert "generating for" in str(e.value) and "decode 16" in str(e.value)
    assert time.time() - start < 90
    # and the pass's execution stopped with it: left running, it called Ray after this process shut Ray down, and
    # Ray aborted the process (the test process that ran the next file, once)
    import threading

    assert not [t for t in threading.enumerate() if t.name == "pass"], "the stalled pass's consumer still runs"


def test_generators_load_a_new_checkpoint_in_place(small_kit, tmp_path, ray_local):
    """One actor, two models: the second pass runs in the same process and answers as the new weights do."""
    import torch

    from vstar_ray import models
    from vstar_ray.generation.pool import GeneratorPool
    from vstar_ray.generation.pipeline import run_pass

    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + ["generate.max_actors=1"])
    changed = tmp_path / "changed"
    model = models.load_model(str(small_kit / "seed"))
    with torch.no_grad():
        for p in model.model.language_model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(changed)
    models.load_processor(str(small_kit / "seed")).save_pretrained(changed)
    heldout = str(small_kit / "heldout.parquet")
    with GeneratorPool.start(cfg, training=False) as pool:
        before = run_pass(cfg, heldout, str(small_kit / "seed"), tmp_path / "a", "eval", pool=pool)
        (first,) = pool.processes()
        after = run_pass(cfg, heldout, str(changed), tmp_path / "b", "eval", pool=pool)
        (second,) = pool.processes()
    assert first["pid"] == second["pid"] and (first["loads"], second["loads"]) == (1, 2)
    assert second["model"] == str(changed)
    answers = {r["id"]: r["answer"] for r in pq.read_table(tmp_path / "b").to_pylist()}
    assert answers != {r["id"]: r["answer"] for r in pq.read_table(tmp_path / "a").to_pylist()}
    # the same answers as the new weights loaded from scratch
    from vstar_ray import prompts
    from vstar_ray.data.video import decode_clip

    fresh, processor = models.load_model(str(changed)).eval(), models.load_processor(str(changed))
    rows = pq.read_table(heldout).to_pylist()[:4]
    clips = [decode_clip(str(small_kit / r["video"]), cfg.data.num_frames, cfg.data.frame_size) for r in rows]
    expected = [models.generate(fresh, processor, [c.frames], [prompts.answer_prompt(r["question"])],
                                cfg.generate.max_new_tokens, False, 1.0,
                                [models.video_metadata(c.fps, c.frame_indices, c.clip_frames)])[0]
                for r, c in zip(rows, clips)]
    assert [answers[r["id"]] for r in rows] == expected
    assert before.videos == after.videos == 16


def test_a_config_the_cluster_cannot_hold_fails_fast_and_the_default_one_generates(small_kit, tmp_path):
    """On this 2-CPU machine: the default config once waited forever ('2.25/2 CPU'); now it generates, and a
    config that cannot fit is refused in seconds naming its keys."""
    manifest = kit_subset(small_kit, "heldout", 4, tmp_path / "heldout.parquet")  # how many rows is not the point
    base = ["generate", "--manifest", str(manifest), "--model", str(small_kit / "seed"),
            "--set", "data.frame_size=56", "--set", "generate.max_new_tokens=8"]
    start = time.time()
    refused = subprocess.run([sys.executable, "-m", "vstar_ray", *base, "--out", str(tmp_path / "big"),
                              "--set", "generate.num_cpus=4"], env=ENV, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "generate.num_cpus=4.0" in refused.stderr, refused.stderr[-2000:]
    assert time.time() - start < 120
    done = subprocess.run([sys.executable, "-m", "vstar_ray", *base, "--out", str(tmp_path / "default")], env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "default" / "metrics.json").read_text())["videos"] == 4
