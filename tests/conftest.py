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


@pytest.fixture(scope="session")
def small_kit(tmp_path_factory) -> Path:
    """A real demo kit (mp4 files, parquet manifests, tiny Qwen2-VL seed), small enough for tests."""
    from vstar_ray.demo.kit import KitSpec, ensure_kit

    return ensure_kit(tmp_path_factory.mktemp("kit") / "kit", KitSpec(**SMALL_KIT), log=lambda m: None)


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray cluster for one test module, shut down after it (test modules run one at a time)."""
    import ray

    from vstar_ray.resources import init_ray

    init_ray(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()
