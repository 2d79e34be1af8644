"""`ray job submit` of jobs.video_star to a real `ray start --head` cluster (Ray 2.60: token auth)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import small_run_overrides

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def cluster(tmp_path):
    """A real two-node cluster on loopback: a head and a worker node, one CPU each (DESIGN.md 5)."""
    # RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S (inherited by the job's driver): an actor pool starts once all its
    # actors are up, so the first actor ready does not take every batch of this small run
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "300"}
    port, dash = free_port(), free_port()
    subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "1", "--port", str(port), "--dashboard-port", str(dash),
         "--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, text=True, timeout=180,
    )
    subprocess.run(
        [str(BIN / "ray"), "start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--disable-usage-stats",
         # a second node on the same host needs its own agent ports (the head's took the defaults)
         "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
         "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port())],
        env=env, check=True, capture_output=True, text=True, timeout=180,
    )
    try:
        yield env, f"http://127.0.0.1:{dash}"
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_job_submit_runs_a_cycle_on_both_nodes(cluster, small_kit, tmp_path):
    env, address = cluster
    nodes = subprocess.run([str(BIN / "python"), "-c", "import ray; ray.init(); print(len(ray.nodes()))"],
                           env={**env, "RAY_ADDRESS": "auto"}, capture_output=True, text=True, timeout=120)
    assert nodes.stdout.strip().splitlines()[-1] == "2", nodes.stdout + nodes.stderr
    out = tmp_path / "job-run"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", str(REPO),
           "--runtime-env", str(REPO / "jobs" / "runtime_env.yaml"), "--",
           "python", "-m", "jobs.video_star", "--config", "configs/demo.yaml", "--out", str(out)]
    # two answer actors (one per node, generator actors are SPREAD) of a quarter CPU each; small batches so that
    # there are several decode tasks (SPREAD too: 8, as SPREAD is best effort, and 4 once ran on one node) and
    # generate calls to share
    for item in small_run_overrides(small_kit) + ["generate.min_actors=2", "generate.max_actors=2",
                                                  "generate.num_cpus=0.25", "data.decode_num_cpus=0.25",
                                                  "generate.batch_size=4", "data.decode_batch_size=1"]:
        cmd += ["--set", item]
    start = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "succeeded" in proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    (cycle,) = metrics["cycles"]
    assert cycle["generated"] > 0
    print("nodes per stage:", json.dumps(cycle["nodes"]))
    generators = set(cycle["nodes"]["generate.answer"]) | set(cycle["nodes"]["generate.rationalize"])
    assert len(generators) == 2, cycle["nodes"]  # generation ran on both nodes
    assert len(cycle["nodes"]["generate.decode"]) == 2, cycle["nodes"]
    assert len(set().union(*cycle["nodes"].values())) == 2
    print(f"job submit -> succeeded in {time.time() - start:.0f}s")


def test_client_without_token_is_refused(cluster):
    env, address = cluster
    no_token = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    no_token["HOME"] = "/nonexistent-home"  # no ~/.ray/auth_token either
    proc = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=no_token,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
