"""The ``vllm`` generation engine, run for real: vLLM's CPU build in an environment of its own
(``make test-vllm`` builds it with ``tests/vllm_cpu/setup.sh``, ~80 s once, then runs these), reached through
``generate.vllm.python``. On GPU clusters vLLM is installed beside vstar-ray and runs in the actor's process."""

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import small_run_overrides
from vstar_ray.config import ConfigError, load_config

VLLM_PYTHON = os.environ.get("VSTAR_VLLM_PYTHON", "")
needs_vllm = pytest.mark.skipif(not Path(VLLM_PYTHON or "/nonexistent").exists(),
                                reason="VSTAR_VLLM_PYTHON is not set to a Python with vLLM (make test-vllm)")


def test_the_vllm_engine_is_refused_before_any_work_without_vllm(tmp_path):
    """This environment has no vLLM: the run says how to install it, in seconds."""
    from vstar_ray.preflight import check_engine

    with pytest.raises(ConfigError, match=r"vLLM is not installed in this environment; pip install 'vstar-ray\[vllm\]'"):
        check_engine(load_config(None, ["generate.engine=vllm"]))
    with pytest.raises(ConfigError, match="generate.vllm.python '/no/python' does not exist"):
        check_engine(load_config(None, ["generate.engine=vllm", "generate.vllm.python=/no/python"]))


@pytest.mark.vllm
@pytest.mark.slow
@needs_vllm
def test_vllm_and_hf_give_the_same_greedy_answers_and_vllm_samples(small_kit, tmp_path, ray_local):
    """The same held-out pass with both engines on the demo's seed model, greedy, at 4 frames of 56 px (where
    vLLM's and transformers' mRoPE positions agree: shared/vllm-cpu/README.md); then a sampled training pass."""
    from vstar_ray.generation.pipeline import run_pass

    common = small_run_overrides(small_kit) + ["data.num_frames=4", "generate.max_actors=1"]
    vllm = ["generate.engine=vllm", f"generate.vllm.python={VLLM_PYTHON}", "generate.vllm.max_model_len=1024",
            "generate.vllm.enforce_eager=true"]
    heldout = str(small_kit / "heldout.parquet")
    answers = {}
    for name, extra in (("hf", []), ("vllm", vllm)):
        cfg = load_config("configs/demo.yaml", common + extra)
        run_pass(cfg, heldout, cfg.model.path, tmp_path / name, "eval")
        answers[name] = {r["id"]: r["answer"] for r in pq.read_table(tmp_path / name).to_pylist()}
    assert answers["vllm"] == answers["hf"] and len(answers["hf"]) == 16
    cfg = load_config("configs/demo.yaml", common + vllm)
    summary = run_pass(cfg, str(small_kit / "train.parquet"), cfg.model.path, tmp_path / "sampled", "train")
    rows = pq.read_table(tmp_path / "sampled").to_pylist()
    assert summary.videos == 32 and all(r["answer"] for r in rows)
    assert summary.kept_direct + summary.kept_rationalized > 0
