"""Ablation variants: what each trains on (pure rules), and `vstar demo --variants` end to end."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.helpers.console import assert_console
from tests.helpers.runs import small_run_overrides
from vstar_ray import prompts
from vstar_ray.config import ConfigError, load_config
from vstar_ray.data.manifest import write_manifest
from vstar_ray.evaluation import ablations
from vstar_ray.generation.pipeline import label_pass
from vstar_ray.training.rows import training_rows

GENERATED = {
    "kept_from": ["direct", "rationalized", "", "", "label"],
    "kept_answer": ["a1 right", "r2 right", "", "", "The answer is x."],
    "answer": ["a1 right", "a2 wrong", "a3 wrong", "", ""],
    "error": ["", "", "", "cannot decode", ""],
}


def trained_rows(columns, final_cycle=False, *overrides):
    return training_rows(columns, load_config(None, list(overrides)), final_cycle)


def test_verified_trains_on_kept_answers_of_the_allowed_sources():
    trained = trained_rows(GENERATED)
    assert trained.index.tolist() == [0, 1, 4] and not trained.hinted.any()
    assert list(trained.answer) == ["a1 right", "r2 right", "The answer is x."]
    final = trained_rows(GENERATED, True, "keep_rationalized=intermediate")
    assert final.index.tolist() == [0, 4]  # final cycle: no rationalized answers


def test_hinted_copies_repeat_kept_rationalizations_under_their_hint():
    columns = {**GENERATED, "question": ["q"] * 5, "labels": ['{"x": "a"}'] * 5}
    trained = trained_rows(columns, False, "train.hinted_copies=true")
    assert trained.index.tolist() == [0, 1, 4, 1] and trained.hinted.tolist() == [False, False, False, True]
    assert trained.prompt(columns, 3).startswith("Question: q\nAnswer: a.") and "Answer:" not in trained.prompt(columns, 1)


def test_unfiltered_trains_on_every_decoded_direct_answer_verified_or_not():
    trained = trained_rows(GENERATED, False, "train_on=unfiltered")
    assert trained.index.tolist() == [0, 1, 2]  # not the undecodable row, not an empty answer
    assert list(trained.answer) == ["a1 right", "a2 wrong", "a3 wrong"]


def test_label_pass_keeps_every_row_with_a_template_answer(tmp_path):
    rows = [{"id": "a", "video": "a.mp4", "labels": {"action": "red circle moving left"},
             "verifiers": {"action": "class"}, "question": "What happens?"},
            {"id": "b", "video": "b.mp4", "labels": {"score": 81.5, "action": "dive"},
             "verifiers": {"score": "float", "action": "class"}, "question": "How good?"}]
    write_manifest(rows, tmp_path / "m.parquet")
    summary = label_pass(str(tmp_path / "m.parquet"), tmp_path / "generated")
    table = pq.read_table(tmp_path / "generated").to_pydict()
    assert table["kept_answer"] == ["The answer is red circle moving left.", "The answer is score: 81.5. action: dive."]
    assert table["kept_from"] == ["label", "label"] and table["error"] == ["", ""]
    assert summary.videos == 2 and summary.generated == 0 and summary.kept_label == 2
    assert len(trained_rows(table, True, "train_on=labels", "keep_rationalized=intermediate")) == 2


def test_variant_names_and_train_on_are_checked():
    assert ablations.parse_variants("") == ["full", "no_filter", "no_rationalization", "label_only"]
    assert ablations.parse_variants("label_only, full") == ["label_only", "full"]
    with pytest.raises(ConfigError, match="nofilter"):
        ablations.parse_variants("full,nofilter")
    with pytest.raises(ConfigError, match="train_on"):
        load_config("configs/demo.yaml", ["train_on=everything"])


def test_ablation_table_states_the_claims_it_checks():
    md = ablations.markdown({"full": [0.2, 0.3, 0.5], "no_filter": [0.2, 0.25, 0.3], "label_only": [0.2, 0.4, 0.45]})
    assert "| full | 0.200 | 0.300 | 0.500 | +0.300 |" in md
    assert "full ends at or above every ablation: yes" in md
    assert "no_filter gains at most half of what full gains: yes (+0.100 vs +0.150)" in md
    md = ablations.markdown({"full": [0.2, 0.3], "no_filter": [0.2, 0.35]})
    assert "every ablation: no" in md and "half of what full gains: no" in md


@pytest.mark.slow
def test_demo_variants_run_on_the_same_data_and_stop_early(small_kit, tmp_path, capsys):
    """Two variants on the same data and seed. Each is given 2 cycles and ``early_stop_margin: 1.0``: held-out
    accuracy cannot improve by 1.0, so each variant stops after its first cycle. (Cycles that continue from the last
    model are conftest's ``lora_run``.)"""
    from vstar_ray.cli import main

    out = tmp_path / "ablations"
    args = ["demo", "--variants", "no_filter,label_only", "--out", str(out)]
    for item in small_run_overrides(small_kit) + ["cycles=2", "early_stop_margin=1.0"]:
        args += ["--set", item]
    try:
        assert main(args) == 0
    finally:
        import ray

        ray.shutdown()
    console = capsys.readouterr()
    assert console.out.count("stopping early") == 2
    assert_console(console.out + console.err)
    assert not (out / "no_filter" / "cycle_2").exists() and not (out / "label_only" / "cycle_2").exists()
    results = json.loads((out / "ablations.json").read_text())
    assert list(results) == ["no_filter", "label_only"] and all(len(a) == 2 for a in results.values())
    assert results["no_filter"][0] == results["label_only"][0]  # the same seed model on the same held-out set
    assert (out / "ablations.png").stat().st_size > 0 and "| label_only |" in (out / "ablations.md").read_text()

    manifest = pq.read_table(small_kit / "train.parquet").to_pylist()
    unfiltered = json.loads((out / "no_filter" / "cycle_1" / "train.json").read_text())
    generated = {r["id"]: r for r in pq.read_table(out / "no_filter" / "cycle_1" / "generated").to_pylist()}
    assert len(unfiltered) == len(manifest)  # every video, verified or not
    assert sum(not generated[r["id"]]["direct_verified"] for r in unfiltered) > 0
    assert all(r["conversations"][1]["value"] == generated[r["id"]]["answer"] for r in unfiltered)
    metrics = json.loads((out / "no_filter" / "metrics.json").read_text())
    assert metrics["cycles"][0]["kept_rationalized"] == 0  # no rationalization in the no-filter variant
    assert metrics["cycles"][0]["train"]["samples"] == len(manifest)

    labels = json.loads((out / "label_only" / "cycle_1" / "train.json").read_text())
    expected = {r["id"]: f"The answer is {prompts.render_label(json.loads(r['labels']))}." for r in manifest}
    assert {r["id"]: r["conversations"][1]["value"] for r in labels} == expected
    assert json.loads((out / "label_only" / "metrics.json").read_text())["cycles"][0]["generated"] == 0
    report = (out / "no_filter" / "report.md").read_text()
    assert "## Answers trained on" in report and "mean length (words)" in report
    assert np.isfinite(metrics["cycles"][0]["trained_answers"]["mean_words"])
