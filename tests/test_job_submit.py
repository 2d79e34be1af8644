"""`ray job submit` of jobs.video_star to a real `ray start --head` cluster (Ray 2.60: token auth)."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers.processes import kill_session
from tests.helpers.runs import small_run_overrides

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start(args: list[str], env: dict) -> int:
    """``ray start ARGS`` in a session of its own, whose id it returns: the node's processes keep that session,
    so that they, and no other Ray cluster of the machine, can be stopped."""
    proc = subprocess.Popen([str(BIN / "ray"), "start", *args, "--disable-usage-stats"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        kill_session(proc.pid)
        raise
    if proc.returncode != 0:
        kill_session(proc.pid)
        raise AssertionError(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")
    return proc.pid


@pytest.fixture(scope="module")
def cluster():
    """A real two-node cluster on loopback: a head and a worker node, one CPU each (docs/cluster.md: token auth, a --temp-dir per node).

    Yields the clients' environment, the dashboard's address and the worker node's temp dir. The cluster has a
    token of its own (RAY_AUTH_TOKEN): `ray start --head` with token auth refuses to start without one, and the
    user's ~/.ray/auth_token is neither needed nor touched. The worker node has a temp dir of its own: two nodes
    sharing /tmp/ray share one runtime_resources/ folder, and the worker node's eager install of the job's
    working_dir (overwrite=True) deletes and unpacks again the very files the driver on the head imports from.

    The head has a temp dir of its own too, and every port of both nodes is a free one: another test's Ray
    cluster may run beside this one (``make test`` runs two test files at a time), and a plain ``ray.init()``
    there would join the cluster that ``/tmp/ray/ray_current_cluster`` names.
    """
    # RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S (inherited by the job's driver): an actor pool starts once all its
    # actors are up, so the first actor ready does not take every batch of this small run
    port, dash = free_port(), free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "300"}
    head_temp, worker_temp = (Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("ray-h", "ray-w"))  # short:
    # Ray's socket paths live under them

    def own_ports() -> list[str]:
        return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                "--metrics-export-port", str(free_port()), "--runtime-env-agent-port", str(free_port())]

    sessions = []
    try:
        sessions.append(ray_start(["--head", "--num-cpus", "1", "--port", str(port), "--dashboard-port", str(dash),
                                   "--dashboard-host", "127.0.0.1", "--include-dashboard", "true",
                                   "--temp-dir", str(head_temp), *own_ports()], env))
        sessions.append(ray_start(["--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--temp-dir",
                                   str(worker_temp), *own_ports()], env))
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, f"http://127.0.0.1:{dash}", worker_temp
    finally:
        for sid in sessions:
            kill_session(sid)
        shutil.rmtree(head_temp, ignore_errors=True)
        shutil.rmtree(worker_temp, ignore_errors=True)


def test_job_submit_runs_a_cycle_on_both_nodes(cluster, small_kit, tmp_path):
    env, address, worker_temp = cluster
    nodes = subprocess.run([str(BIN / "python"), "-c", "import ray; ray.init(); print(len(ray.nodes()))"],
                           env=env, capture_output=True, text=True, timeout=120)
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
    # the worker node ran from a copy of the working dir of its own, not from the head's
    assert list(worker_temp.glob("session_*/runtime_resources/working_dir_files/_ray_pkg_*/vstar_ray/run.py"))
    print(f"job submit -> succeeded in {time.time() - start:.0f}s")


def test_client_without_token_is_refused(cluster):
    env, address, _ = cluster
    no_token = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    no_token["HOME"] = "/nonexistent-home"  # no ~/.ray/auth_token either
    proc = subprocess.run([str(BIN / "ray"), "job", "list", "--address", address], env=no_token,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
