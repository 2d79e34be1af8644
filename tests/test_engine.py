"""The generator engine is a plug-in (``generate.engine: package.module:Class``): a vLLM engine on a GPU
cluster takes the same path as this echo engine does here, through real Ray actors."""

import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import small_run_overrides
from vstar_ray.config import ConfigError, load_config


class EchoEngine:
    """Answers every prompt with the prompt itself: the rationalization prompt holds the label, the
    plain question does not, so verification tells which engine call each answer came from."""

    def __init__(self, model_path: str, dtype: str, trust_remote_code: bool):
        self.model_path = model_path

    def generate(self, frames, prompts, max_new_tokens, do_sample, temperature, metadata):
        assert all(f.ndim == 4 and f.shape[-1] == 3 for f in frames)
        assert all(m["fps"] > 0 and len(m["frames_indices"]) == len(f) for f, m in zip(frames, metadata))
        return [f"echo: {p}" for p in prompts]


@pytest.mark.slow
def test_a_plugged_in_engine_generates_both_passes(small_kit, tmp_path, ray_local):
    from vstar_ray.generation.pipeline import run_pass

    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + ["generate.engine=tests.test_engine:EchoEngine"])
    summary = run_pass(cfg, str(small_kit / "train.parquet"), cfg.model.path, tmp_path / "generated", "train")
    rows = pq.read_table(tmp_path / "generated").to_pylist()
    assert all(r["answer"].startswith("echo: Question:") for r in rows)
    assert summary.kept_direct == 0 and summary.kept_rationalized == len(rows) == summary.videos


def test_a_bad_engine_is_a_config_error_before_any_work():
    from vstar_ray.preflight import check_engine

    for spec, message in (("nope", "expected 'hf', 'vllm' or"), ("tests.test_engine:Missing", "cannot be loaded"),
                          ("tests.test_engine:pytest", "no generate")):
        with pytest.raises(ConfigError, match=message):
            check_engine(load_config("configs/demo.yaml", [f"generate.engine={spec}"]))
