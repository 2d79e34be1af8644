"""``benchmarks/gpu_check.py`` at tiny sizes on CPU, so that the script a GPU machine runs cannot rot: every part
runs through the project's own loading, step and generation code and reports its figures."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_runs_every_part_at_tiny_size(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--size", "tiny", "--device", "cpu", "--generate-batches",
                           "1", "2", "--answer-tokens", "4", "--steps", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    training = [r for r in rows if r["part"] == "training"]
    assert [r["checkpointing"] for r in training] == [True, False]
    for r in training:
        assert r["tokens_per_s"] > 0 and r["sequence"] > 100 and r["plan_gib"] > 0, r
    assert [r["batch"] for r in rows if r["part"] == "generation"] == [1, 2]
    assert len([r for r in rows if r["part"] == "family" and r["ok"] and r["dtype"] == "bfloat16"]) == 8
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("# gpu_check: cpu") and len([line for line in lines if line.startswith("| ")]) == 13
