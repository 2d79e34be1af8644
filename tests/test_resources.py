"""What a run asks of the cluster, sized before anything starts (``vstar_ray.resources``)."""

import pytest

from vstar_ray.config import load_config
from vstar_ray.resources import ResourceError, pool_size

LAPTOP = {"CPU": 2.0}


def test_the_demo_fits_a_two_core_laptop_with_training_beside_its_generators():
    cfg = load_config("configs/demo.yaml")
    assert pool_size(cfg, LAPTOP, training=True) == cfg.generate.max_actors


def test_the_default_config_generates_on_two_cores():
    """``vstar generate`` with the default config once waited forever on a 2-CPU machine (2.25 CPUs asked)."""
    assert pool_size(load_config(None), LAPTOP, training=False) == 1


def test_the_pool_shrinks_to_what_fits_between_min_and_max_actors():
    cfg = load_config(None, ["generate.num_cpus=0.5", "generate.max_actors=8"])
    assert pool_size(cfg, {"CPU": 3.0}, training=False) == 4  # 3 - 0.75 for a pass' decode and verify = 2.25


def test_a_config_that_cannot_fit_is_refused_naming_its_keys():
    cfg = load_config(None, ["generate.num_cpus=2"])
    with pytest.raises(ResourceError, match=r"generate.num_cpus=2.0.*data.decode_num_cpus"):
        pool_size(cfg, LAPTOP, training=False)
    with pytest.raises(ResourceError, match=r"train.num_workers=2 x \(train.cpus_per_worker=1.0"):
        pool_size(load_config(None), LAPTOP, training=True)
    with pytest.raises(ResourceError, match="generate.num_gpus=1.0 but the cluster has no GPU"):
        pool_size(load_config(None, ["generate.num_gpus=1"]), {"CPU": 64.0}, training=False)


def test_gpu_generators_colocate_with_training_workers():
    """0.6 + 0.4 of each GPU: one generator and one training worker per GPU, 16 of each on 16 GPUs."""
    cfg = load_config("configs/qwen2vl_7b_kinetics.yaml", ["autoscaling=false"])
    cluster = {"CPU": 256.0, "GPU": 16.0}
    assert pool_size(cfg, cluster, training=True) == 16
    assert cfg.generate.num_gpus + cfg.train.gpus_per_worker <= 1.0


def test_an_autoscaling_cluster_asks_for_the_whole_pool():
    cfg = load_config(None, ["autoscaling=true", "generate.num_gpus=1", "generate.max_actors=16"])
    assert pool_size(cfg, {"CPU": 2.0}, training=True) == 16


@pytest.mark.slow
def test_a_run_without_ray_address_starts_its_own_cluster_whatever_a_dead_one_left(tmp_path):
    """``ray start --head`` writes ``<ray temp dir>/ray_current_cluster``; when that cluster dies other than by
    ``ray stop`` the file stays, and a plain ``ray.init()`` failed or waited for the dead cluster. A temp dir of this
    test's own (``RAY_TMPDIR``, short: Ray's socket paths live under it) holds such a file."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    try:
        os.makedirs(os.path.join(temp, "ray"))
        with open(os.path.join(temp, "ray", "ray_current_cluster"), "w") as f:
            f.write("127.0.0.1:9")  # nothing listens there
        code = ("import ray; from vstar_ray.resources import init_ray; init_ray(num_cpus=1, include_dashboard=False);"
                " print('CPUS', ray.cluster_resources()['CPU']); ray.shutdown()")
        env = {**os.environ, "RAY_TMPDIR": temp, "RAY_ADDRESS": ""}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "CPUS 1.0" in proc.stdout, proc.stderr[-3000:]
    finally:
        shutil.rmtree(temp, ignore_errors=True)
