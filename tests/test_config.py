import pytest

from vstar_ray.config import ConfigError, load_config


def test_demo_config_loads_and_overrides(tmp_path):
    cfg = load_config("configs/demo.yaml", ["cycles=1", "train.lr=1e-3", "train.lora=true"])
    assert cfg.cycles == 1 and cfg.train.lr == 1e-3 and cfg.train.lora is True
    assert cfg.data.num_frames == 8


@pytest.mark.parametrize(
    "override,match",
    [
        ("train.lrr=1", "unknown config key.*train.lrr"),
        ("train.epochs=two", "train.epochs: expected an integer"),
        ("train.use_gpu=maybe", "train.use_gpu: expected true/false"),
        ("cycles", "expected key=value"),
        ("keep_rationalized=sometimes", "keep_rationalized"),
        ("train.lr=[1", "cannot parse value"),
    ],
)
def test_bad_overrides_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("configs/demo.yaml", [override])


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("generate:\n  batch_sise: 4\n")
    with pytest.raises(ConfigError, match="generate.batch_sise"):
        load_config(path)
