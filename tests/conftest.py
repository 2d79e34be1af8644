import os
from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
if not REALDATA.exists():  # CI clones main with shared/ beside it
    REALDATA = Path(os.environ.get("VSTAR_REALDATA", "../shared/realdata")).resolve()

SMALL_KIT = dict(n_train=32, n_heldout=16, seed_pool=64, seed_caption_steps=0, seed_steps=250)  # follows 8 of its 16 held-out hints


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.exists():
        pytest.fail(f"real test data not found at {REALDATA}")
    return REALDATA


def shared_tmp(tmp_path_factory, name: str) -> Path:
    """A folder every pytest-xdist worker of this session sees (``make test`` runs two): what is built there once,
    under a lock, all of them use. Without xdist, a folder of this session's own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / name
        folder.mkdir(exist_ok=True)
        return folder
    return tmp_path_factory.mktemp(name)


def pytest_collection_modifyitems(config, items):
    """``make test`` runs the suite on two pytest-xdist workers with ``--dist loadfile``: a test file goes to one
    worker, whole, so that its module fixtures (a Ray cluster, a run) are made once. The files with slow tests
    are handed out first, so that no long file starts last (a stable sort: a file's tests keep their order)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def small_kit(tmp_path_factory) -> Path:
    """A real demo kit (mp4 files, parquet manifests, tiny Qwen2-VL seed), small enough for tests; built once for
    every xdist worker (``ensure_kit`` locks against concurrent builders)."""
    from vstar_ray.demo.kit import KitSpec, ensure_kit

    return ensure_kit(shared_tmp(tmp_path_factory, "kit") / "kit", KitSpec(**SMALL_KIT), log=lambda m: None)


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray cluster for one test module, shut down after it (test modules run one at a time)."""
    import ray

    from vstar_ray.resources import init_ray

    init_ray(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def lora_run(small_kit, tmp_path_factory):
    """``vstar run`` as a user starts it (a process of its own): two LoRA cycles, the second continuing from the
    first's model (``train.restart_from_pretrained: false``: cycle 2's adapter stands on cycle 1's, which stands on
    the seed), tracked by TensorBoard, MLflow and W&B. Its console is tests/test_tracking.py's; its checkpoints are
    what tests/test_export.py exports. Run once for every xdist worker (under a lock; the second reads the first's
    result). Yields the run folder and the finished process."""
    import fcntl
    import json
    import subprocess
    import sys

    from tests.helpers.runs import small_run_overrides

    folder = shared_tmp(tmp_path_factory, "lora")
    out, result = folder / "run", folder / "process.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            cmd = [sys.executable, "-m", "vstar_ray", "run", "--config", "configs/demo.yaml", "--out", str(out)]
            for item in small_run_overrides(small_kit) + [
                    "cycles=2", "tracking=tensorboard,mlflow,wandb", "train.restart_from_pretrained=false",
                    "train.lora=true", "train.lora_r=8", "train.num_workers=1", "train.lr=5e-3"]:
                cmd += ["--set", item]
            env = {**os.environ, "RAY_ADDRESS": "", "WANDB_MODE": "offline"}
            env.pop("MLFLOW_TRACKING_URI", None)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            result.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr}))
        proc = subprocess.CompletedProcess(**json.loads(result.read_text()))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc
