"""The launch files in cluster/ parse, and what they name (entrypoint, config, runtime_env, files) exists."""

import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from vstar_ray.cli import build_parser
from vstar_ray.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "cluster" / name).read_text())


def _check_entrypoint(entrypoint: str) -> None:
    argv = shlex.split(entrypoint)
    assert argv[:3] == ["python", "-m", "jobs.video_star"], argv
    config = build_parser().parse_args(["run", *argv[3:]]).config  # the job passes its arguments to vstar run
    assert (ROOT / config).is_file(), config
    cfg = load_config(ROOT / config)
    assert cfg.generate.num_gpus > 0 and cfg.train.use_gpu, "the cluster config must use the GPUs"
    # a generator actor and a training worker share each GPU: the generators sleep while training runs
    assert cfg.generate.num_gpus + cfg.train.gpus_per_worker <= 1.0 and cfg.autoscaling


def _gpu_containers(pod_template: dict) -> list[dict]:
    return [c for c in pod_template["spec"]["containers"] if "nvidia.com/gpu" in c["resources"]["limits"]]


def test_rayjob_manifest_names_a_real_entrypoint_and_runtime_env():
    job = _load("kuberay-rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    _check_entrypoint(job["spec"]["entrypoint"])
    assert "--resume" in job["spec"]["entrypoint"], "a re-applied RayJob must continue the run"
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    assert all(isinstance(v, str) for v in runtime_env["env_vars"].values())
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert groups and all(_gpu_containers(g["template"]) for g in groups)
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == "2.60.0"


def test_raycluster_manifest_has_an_autoscaled_gpu_group_on_shared_storage():
    cluster = _load("kuberay-raycluster.yaml")
    assert cluster["kind"] == "RayCluster"
    (group,) = cluster["spec"]["workerGroupSpecs"]
    assert group["maxReplicas"] >= group["minReplicas"] >= 0
    (gpu,) = _gpu_containers(group["template"])
    mounts = {m["mountPath"] for m in gpu["volumeMounts"]}
    head_mounts = {m["mountPath"] for c in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
                   for m in c["volumeMounts"]}
    assert "/mnt/shared" in mounts and "/mnt/shared" in head_mounts


def test_ray_up_yaml_is_consistent_and_its_submit_command_works():
    cfg = _load("aws-gpu.yaml")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    assert workers and all(t["max_workers"] <= cfg["max_workers"] for t in workers)
    assert any(t["node_config"]["InstanceType"].startswith(("p4", "p5", "g5", "g6")) for t in workers)
    text = (ROOT / "cluster" / "aws-gpu.yaml").read_text()
    submit = text[text.index("python -m jobs.video_star"):].splitlines()[0]
    _check_entrypoint(submit)
    assert "--runtime-env jobs/runtime_env.yaml" in text and (ROOT / "jobs" / "runtime_env.yaml").is_file()


def test_dockerfile_copies_files_that_exist():
    for line in (ROOT / "cluster" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_job_entrypoint_takes_every_argument_of_vstar_run():
    """``python -m jobs.video_star`` is ``vstar run``: --resume, --allow-changed-config, --thresholds and --set
    all reach it (an argument it dropped would change a resumed run silently)."""
    proc = subprocess.run([sys.executable, "-m", "jobs.video_star", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for option in ("--config", "--out", "--resume", "--allow-changed-config", "--thresholds", "--set", "--verbose"):
        assert option in proc.stdout, option
    proc = subprocess.run([sys.executable, "-m", "jobs.video_star", "--config", "c.yaml", "--out", "o",
                           "--no-such-option"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "unrecognized arguments: --no-such-option" in proc.stderr
