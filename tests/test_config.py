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
    with pytest.raises(ConfigError, match=f"generate.batch_sise \\(config {path}\\); known: batch_size"):
        load_config(path)


def test_an_error_names_where_the_value_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0\n")
    with pytest.raises(ConfigError, match=f"train.lr: must be > 0, got 0 \\(config {path}\\)"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"train.lr: must be > 0, got -1 \(--set train.lr\)"):
        load_config(path, ["train.lr=-1"])
    with pytest.raises(ConfigError, match="max_actors \\(1\\) is below min_actors \\(2\\).*--set generate.min_actors"):
        load_config(None, ["generate.min_actors=2"])


def test_a_replaced_config_is_checked_too():
    import dataclasses

    cfg = load_config(None)
    with pytest.raises(ValueError, match="greater than 0"):
        dataclasses.replace(cfg.train, lr=0.0)


@pytest.mark.parametrize("override,match", [
    ("train.batch_size=0", "train.batch_size: must be >= 1"),
    ("generate.batch_size=0", "generate.batch_size: must be >= 1"),
    ("train.lr=.nan", "train.lr: must be a finite number"),
    ("train.lr=-1e-5", "train.lr: must be > 0"),
    ("data.num_frames=0", "data.num_frames: must be >= 1"),
    ("train.epochs=0", "train.epochs: must be >= 1"),
    ("model.dtype=int8", "model.dtype: expected one of"),
    ("generate.max_actors=0", "generate.max_actors"),
    ("train.warmup_ratio=1.5", "train.warmup_ratio: must be <= 1"),
    ("verify.num_cpus=0", "verify.num_cpus: must be > 0"),
    ("generate.temperature=.inf", "generate.temperature: must be a finite number"),
])
def test_values_out_of_range_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("configs/demo.yaml", [override])


@pytest.mark.parametrize("path", ["configs/demo.yaml", "configs/qwen2vl_7b_kinetics.yaml",
                                  "configs/videollava_7b_kinetics.yaml", "configs/vstar1m_videollava_7b.yaml", None])
def test_shipped_configs_are_in_range(path):
    load_config(path)


def test_the_frame_cache_takes_yaml_s_off_and_names_a_bad_value():
    assert load_config(None, ["data.frame_cache=off"]).data.frame_cache == "off"  # YAML reads off as false
    assert load_config(None, []).data.frame_cache == "run" and load_config(None, []).data.frame_cache_format == "lz4"
    with pytest.raises(ConfigError, match=r"data.frame_cache: expected a string, got True"):
        load_config(None, ["data.frame_cache=true"])
    with pytest.raises(ConfigError, match=r"data.frame_cache_format: expected one of"):
        load_config(None, ["data.frame_cache_format=webp"])


@pytest.mark.parametrize("given,resolved", [("run", "{out}/frame_cache"), ("off", "off"), ("cache", "{cwd}/cache"),
                                            ("s3://bucket/cache", "s3://bucket/cache")])
def test_the_frame_cache_location_is_resolved_before_ray_s_workers_see_it(given, resolved, tmp_path, monkeypatch):
    from vstar_ray.config import with_frame_cache

    monkeypatch.chdir(tmp_path)
    cfg = with_frame_cache(load_config(None, [f"data.frame_cache={given}"]), "out")
    assert cfg.data.frame_cache == resolved.format(out=tmp_path / "out", cwd=tmp_path)
