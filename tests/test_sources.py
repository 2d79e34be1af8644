"""Several labeled datasets in one run (``vstar_ray.data.sources``): mixing, per-source accounting, real annotation
files of three datasets in one ``vstar run``."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.helpers.runs import small_run_overrides
from vstar_ray.config import ConfigError, ManifestSource, load_config
from vstar_ray.data.manifest import ManifestError, write_manifest
from vstar_ray.data.sources import mix


def rows(prefix, n, source=""):
    return [{"id": f"{prefix}{i}", "video": f"clips/{prefix}{i}.mp4", "source": source,
             "labels": {"action": "arm wrestling"}, "verifiers": {"action": "class"}} for i in range(n)]


def test_a_path_a_list_of_paths_or_of_sources_is_a_config(tmp_path):
    one = load_config(None, ["data.train_manifest=/m/a.parquet"]).data.train_manifest
    assert one == [ManifestSource("/m/a.parquet")]
    two = load_config(None, ["data.train_manifest=[/m/a.parquet, {manifest: /m/b.parquet, max_rows: 10, weight: 0.5}]"])
    assert two.data.train_manifest[1] == ManifestSource("/m/b.parquet", "", 10, 0.5)
    with pytest.raises(ConfigError, match=r"data.train_manifest\[1\].weight: must be <= 1"):
        load_config(None, ["data.train_manifest=[/m/a.parquet, {manifest: /m/b.parquet, weight: 2}]"])
    with pytest.raises(ConfigError, match=r"unknown config key\(s\): data.eval_manifest\[0\].cap"):
        load_config(None, ["data.eval_manifest=[{manifest: /m/b.parquet, cap: 3}]"])


def test_sources_mix_with_their_own_roots_caps_and_weights(tmp_path):
    write_manifest(rows("k", 10, "kinetics700"), tmp_path / "k" / "k.parquet")
    write_manifest(rows("s", 6), tmp_path / "star" / "s.parquet")
    sources = [ManifestSource(str(tmp_path / "k" / "k.parquet"), max_rows=4),
               ManifestSource(str(tmp_path / "star" / "s.parquet"), video_root=str(tmp_path / "charades"), weight=0.5)]
    mixed = pq.read_table(mix(sources, tmp_path / "mixed.parquet", "", seed=0)).to_pylist()
    k, s = [r for r in mixed if r["source"] == "kinetics700"], [r for r in mixed if r["source"] == "s"]
    assert [r["id"] for r in k] == ["k0", "k1", "k2", "k3"] and len(s) == 3  # cap; weight 0.5 of 6, seeded
    assert k[0]["video"] == str(tmp_path / "k" / "clips" / "k0.mp4")  # the manifest's folder
    assert all(r["video"].startswith(str(tmp_path / "charades") + "/") for r in s)  # its own root
    again = pq.read_table(mix(sources, tmp_path / "again.parquet", "", seed=0))["id"].to_pylist()
    assert again == [r["id"] for r in mixed]
    only = [ManifestSource(str(tmp_path / "k" / "k.parquet"))]
    assert mix(only, tmp_path / "unused.parquet", "", 0) == only[0].manifest  # one plain source: as it is
    write_manifest(rows("k", 2), tmp_path / "clash.parquet")
    with pytest.raises(ManifestError, match=r"id 'k0' is in both .*k.parquet and .*clash.parquet"):
        mix([ManifestSource(str(tmp_path / "k" / "k.parquet")), ManifestSource(str(tmp_path / "clash.parquet"))],
            tmp_path / "m.parquet", "", 0)
    write_manifest([{**rows("x", 1)[0], "video": "../../etc/passwd"}], tmp_path / "escape" / "e.parquet")
    with pytest.raises(ManifestError, match="row 'x0': video path '../../etc/passwd' escapes"):
        mix([ManifestSource(str(tmp_path / "escape" / "e.parquet"), max_rows=1)], tmp_path / "m.parquet", "", 0)


def test_a_source_that_adds_nothing_or_has_no_video_folder_is_refused_naming_its_key(tmp_path):
    """Once: a weight that sampled no row died in generation on ``FieldRef.Name(id)``; a missing video_root ran to
    rc 0 with half the videos failed; two sources with one source name were counted as one."""
    from vstar_ray.data.sources import check_source

    write_manifest(rows("k", 8, "kinetics700"), tmp_path / "k.parquet")
    write_manifest(rows("j", 8, "kinetics700"), tmp_path / "j.parquet")
    with pytest.raises(ManifestError, match=r"^data.train_manifest\[0\].weight=0.05 samples none of the 8 rows of "
                                            r".*k.parquet .* at least 0.064$"):
        check_source(ManifestSource(str(tmp_path / "k.parquet"), weight=0.05), 8, "data.train_manifest[0]")
    check_source(ManifestSource(str(tmp_path / "k.parquet"), weight=0.07), 8, "data.train_manifest[0]")  # 1 row
    with pytest.raises(ManifestError, match=r"^data.train_manifest\[1\].video_root '/no/such/root' is not a folder"):
        check_source(ManifestSource(str(tmp_path / "j.parquet"), video_root="/no/such/root"), 8,
                     "data.train_manifest[1]")
    mixed = pq.read_table(mix([ManifestSource(str(tmp_path / "k.parquet")), ManifestSource(str(tmp_path / "j.parquet"))],
                              tmp_path / "m.parquet", "", 0)).to_pylist()
    assert {r["source"] for r in mixed if r["id"].startswith("k")} == {"kinetics700"}
    assert {r["source"] for r in mixed if r["id"].startswith("j")} == {"kinetics700[1]"}


def prepared_sources(realdata, work):
    """Kinetics-700 (CSV), STAR (official JSON + classes) and FineDiving (pickles, frame folder) manifests from the
    real annotation files, over real videos renamed as each dataset names them."""
    from vstar_ray.prepare import prepare

    kinetics = work / "k700"
    kinetics.mkdir(parents=True)
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", kinetics / "---QUuC4vJs_000084_000094.mp4")
    shutil.copy(realdata / "videos" / "kinetics_flipping_pancake__decord.mkv", kinetics / "--GkrdYZ9Tc_000000_000010.mkv")
    ann = realdata / "annotations"
    prepare("kinetics700", ann / "kinetics" / "k700_validate.head200.csv", kinetics, work / "k700.parquet",
            classes=str(ann / "kinetics" / "label_map_k700__mmaction2.txt"))
    star_ann, charades = work / "star_ann", work / "charades"
    shutil.copytree(ann / "star" / "STAR_classes", star_ann / "STAR_classes")
    shutil.copy(ann / "star" / "STAR_sample_question__official_format.json", star_ann / "STAR_val.json")
    charades.mkdir()
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", charades / "WBS4I.mp4")
    prepare("star", star_ann, charades, work / "star.parquet")
    dives = work / "dives"
    (dives / "01" / "1").mkdir(parents=True)
    for i in range(12):
        Image.fromarray(np.full((64, 64, 3), i * 20, np.uint8)).save(dives / "01" / "1" / f"{7378 + i:05d}.jpg")
    shutil.copy(realdata / "videos" / "ucf101_like_apply_eye_makeup__mmaction2_test.avi", dives / "01_3.mp4")
    prepare("finediving", ann / "finediving", dives, work / "finediving.parquet")
    return [work / "k700.parquet", work / "star.parquet", work / "finediving.parquet"]


@pytest.mark.slow
def test_one_run_over_kinetics_star_and_finediving(realdata, small_kit, tmp_path):
    manifests = prepared_sources(realdata, tmp_path / "data")
    kinds = {k for t in (json.loads(v) for m in manifests for v in pq.read_table(m)["verifiers"].to_pylist())
             for k in t.values()}
    assert {"class", "temporal_range", "bbox", "float", "sentence_sequence"} <= kinds  # their real label types
    out = tmp_path / "run"
    train = "[" + ", ".join(str(m) for m in manifests) + "]"
    heldout = f"[{manifests[0]}, {{manifest: {manifests[2]}, max_rows: 3}}]"
    cmd = [sys.executable, "-m", "vstar_ray", "run", "--config", "configs/demo.yaml", "--out", str(out)]
    for item in small_run_overrides(small_kit) + [f"data.train_manifest={train}", f"data.eval_manifest={heldout}",
                                                  "train_on=unfiltered", "rationalize=false"]:
        cmd += ["--set", item]
    bad = f"[{manifests[0]}, {{manifest: {manifests[1]}, video_root: {tmp_path / 'nowhere'}}}]"
    refused = subprocess.run(cmd + ["--set", f"data.train_manifest={bad}"], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and not (out / "state.json").exists(), refused.stderr[-2000:]
    assert refused.stderr.strip().splitlines() == [
        f"vstar run: error: data.train_manifest[1].video_root '{tmp_path / 'nowhere'}' is not a folder"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (cycle,) = json.loads((out / "metrics.json").read_text())["cycles"]
    expected = {pq.read_table(m)["source"][0].as_py(): pq.read_table(m).num_rows for m in manifests}
    assert {s: c["videos"] for s, c in cycle["by_source"].items()} == expected
    assert set(cycle["eval"]["by_source"]) == {"kinetics700", "finediving"}
    assert sum(c["videos"] for c in cycle["by_source"].values()) == cycle["videos"]
    records = json.loads((out / "cycle_1" / "train.json").read_text())
    assert {r["source"] for r in records} == set(expected)  # unfiltered: every decoded row trains
    report = (out / "report.md").read_text()
    assert "## Per source" in report and all(f"| {s} |" in report for s in expected)
