"""``vstar tune``: Ray Tune + Optuna over the thresholds, against simulated human judgments."""

import json
import subprocess
import sys

import pytest
import yaml

from vstar_ray.demo.judged import judged_records
from vstar_ray.tune import TuneError, load_records, score, split, type_groups
from vstar_ray.verify import load_thresholds


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_records_without_gold_or_of_one_class_are_clear_errors(tmp_path):
    records = judged_records(20, "lenient")
    no_gold = [dict(r) for r in records]
    del no_gold[3]["gold"]
    with pytest.raises(TuneError, match="line 4: record 'lenient-3' has no 'gold'"):
        load_records(write(tmp_path / "a.jsonl", no_gold))
    one_class = [{**r, "gold": True} for r in records]
    with pytest.raises(TuneError, match="every record has gold=True"):
        load_records(write(tmp_path / "b.jsonl", one_class))
    not_bool = [dict(r) for r in records]
    not_bool[0]["gold"] = "yes"
    with pytest.raises(TuneError, match="'gold' must be true or false"):
        load_records(write(tmp_path / "c.jsonl", not_bool))
    bad_label = [dict(r) for r in records]
    bad_label[1]["labels"] = {"when": [0.9, 0.1]}
    with pytest.raises(TuneError, match="line 2: record 'lenient-1'.*start < end"):
        load_records(write(tmp_path / "d.jsonl", bad_label))
    res = subprocess.run([sys.executable, "-m", "vstar_ray", "tune", "--records", str(tmp_path / "b.jsonl"),
                          "--out", str(tmp_path / "t.yaml")], capture_output=True, text=True)
    assert res.returncode == 2 and "every record has gold=True" in res.stderr


def test_groups_split_and_score():
    recs = [{"id": i, "_types": t, "gold": g} for i, (t, g) in
            enumerate([(["float"], True), (["class", "float"], False), (["bbox"], True), (["bbox"], False)] * 5)]
    assert type_groups(recs) == [["bbox"], ["class", "float"]]
    tune_part, held = split(recs, 0.4, seed=1)
    assert len(tune_part) + len(held) == len(recs) and {r["gold"] for r in held} == {True, False}
    s = score([True, True, False, False], [True, False, True, False])
    assert (s["precision"], s["recall"], s["f1"], s["yield"]) == (0.5, 0.5, 0.5, 0.5)
    assert score([True, False, False, False], [True] * 4, "precision_at_yield", 0.5)["objective"] == -0.25


@pytest.mark.slow
@pytest.mark.parametrize("judge", ["lenient", "strict"])
def test_tuned_thresholds_beat_the_defaults_on_heldout_records(judge, tmp_path, ray_local):
    from vstar_ray.tune import run_tune

    records = write(tmp_path / "judged.jsonl", judged_records(400, judge, seed=1))
    out = tmp_path / "thresholds.yaml"
    summary = run_tune(records, out, trials=16, seed=0)
    for group in summary["groups"]:
        default, tuned = group["default"]["heldout"]["f1"], group["tuned"]["heldout"]["f1"]
        assert tuned > default + 0.05, (judge, group["types"], default, tuned)
    tuned = load_thresholds(out)  # the file vstar verify / generate / run accept
    if judge == "lenient":
        assert tuned["float"]["rel_tol"] > 0.05 and tuned["temporal_range"]["iou"] < 0.5
    else:
        assert tuned["float"]["rel_tol"] < 0.05 and tuned["temporal_range"]["iou"] > 0.5
    assert (tmp_path / "thresholds_tune.png").stat().st_size > 1000
    assert "tuned / heldout" in (tmp_path / "thresholds_tune.md").read_text()
    assert set(yaml.safe_load(out.read_text())) == {"float", "temporal_range"}
    res = subprocess.run([sys.executable, "-m", "vstar_ray", "verify", "--in", str(records), "--out",
                          str(tmp_path / "v.jsonl"), "--thresholds", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
