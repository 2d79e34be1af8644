"""Bad input fails fast and clearly: one line naming what is wrong, exit code 2, before Ray starts."""

import json
import re
import subprocess
import sys
import time

import pytest

from tests.helpers import tiny_families
from vstar_ray.data.manifest import ManifestError, validate_manifest, write_manifest


def vstar(*args):
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "vstar_ray", *args], capture_output=True, text=True, timeout=300)
    return proc, time.time() - start


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli_errors")
    model = tiny_families.built("qwen2_vl", str(work / "models"))
    manifest = work / "m.parquet"
    write_manifest([{"id": "a", "video": "a.mp4", "labels": {"x": "cat"}, "verifiers": {"x": "class"}}], manifest)
    custom = work / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "my_video_lmm", "auto_map": {
        "AutoConfig": "configuration_my.MyConfig", "AutoModelForImageTextToText": "modeling_my.MyModel"}}))
    not_a_model = work / "empty_folder"
    not_a_model.mkdir()
    return work, model, manifest, custom, not_a_model


def run_args(out, model, manifest, *extra):
    args = ["run", "--config", "configs/demo.yaml", "--out", str(out), "--set", "demo_kit=",
            "--set", f"model.path={model}", "--set", f"data.train_manifest={manifest}",
            "--set", f"data.eval_manifest={manifest}"]
    for item in extra:
        args += ["--set", item]
    return args


@pytest.mark.parametrize("which,match", [
    ("missing", "model.path '.*/no_such_model' cannot be used"),
    ("not_a_model", "model.path '.*/empty_folder' cannot be used"),
    ("custom", "model.path '.*/custom' cannot be used: .*trust_remote_code"),
])
def test_a_model_that_cannot_load_is_refused_in_seconds(inputs, which, match):
    work, model, manifest, custom, not_a_model = inputs
    path = {"missing": work / "no_such_model", "not_a_model": not_a_model, "custom": custom}[which]
    for verb in (run_args(work / f"run_{which}", path, manifest),
                 ["generate", "--manifest", str(manifest), "--model", str(path), "--out", str(work / f"gen_{which}")]):
        proc, seconds = vstar(*verb)
        assert proc.returncode == 2, proc.stderr[-2000:]
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"vstar {verb[0]}: error: ") and re.search(match, last), last
        assert "Traceback" not in proc.stderr and seconds < 60


def test_an_output_that_cannot_be_written_is_one_line(inputs):
    work, model, manifest, _, _ = inputs
    blocker = work / "a_file"
    blocker.write_text("not a folder")
    proc, _ = vstar(*run_args(blocker / "run", model, manifest, "data.frame_size=56"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("vstar run: error: cannot create the run folder")
    proc, _ = vstar("generate", "--manifest", str(manifest), "--model", str(model), "--out", str(blocker / "gen"),
                    "--set", "data.frame_size=56")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "a_file" in proc.stderr


def test_an_empty_manifest_and_bad_clip_windows_are_refused_naming_the_row(tmp_path):
    write_manifest([], tmp_path / "empty.parquet")
    with pytest.raises(ManifestError, match="has no rows"):
        validate_manifest(tmp_path / "empty.parquet")
    base = {"video": "a.mp4", "labels": {"x": "cat"}, "verifiers": {"x": "class"}}
    for row, match in (({"id": "neg", "start": -2.0, "end": 1.0}, r"row 'neg': 'start' must not be negative"),
                       ({"id": "backwards", "start": 3.0, "end": 1.0}, r"row 'backwards': 'start' \(3.0\) must be before"),
                       ({"id": "same", "start": 1.0, "end": 1.0}, "must be before")):
        write_manifest([{**base, "id": "fine", "start": 0.0, "end": 2.0}, {**base, **row}], tmp_path / "m.parquet")
        with pytest.raises(ManifestError, match=match):
            validate_manifest(tmp_path / "m.parquet")
    write_manifest([{**base, "id": "open", "start": 1.5}], tmp_path / "ok.parquet")  # an open end is fine
    assert validate_manifest(tmp_path / "ok.parquet") == 1
