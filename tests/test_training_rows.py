"""What a cycle trains on: the prompt each sample trains under is the configured one (``train.prompt``), and
``train.json``, the trainer's dataset and the count all read the same rows."""

import json

import pyarrow.parquet as pq
import pytest

from vstar_ray import prompts
from vstar_ray.config import load_config
from vstar_ray.training.rows import count_trained, training_dataset, training_rows, write_train_json

COLUMNS = {"kept_from": ["direct", "rationalized", ""], "kept_answer": ["a1", "r2", ""], "answer": ["a1", "a2", "a3"],
           "error": ["", "", ""], "question": ["What happens?", "Which colour?", "How big?"],
           "labels": ['{"x": "red"}'] * 3}


@pytest.mark.parametrize("style", ["question", "answer_prompt"])
def test_each_sample_trains_under_the_configured_prompt(style):
    rows = training_rows(COLUMNS, load_config(None, [f"train.prompt={style}", "train.hinted_copies=true"]), False)
    plain = [rows.prompt(COLUMNS, k) for k in range(len(rows)) if not rows.hinted[k]]
    assert plain == [prompts.prompt_for(q, style) for q in ("What happens?", "Which colour?")]
    assert plain[0] == ("What happens?" if style == "question" else prompts.answer_prompt("What happens?"))
    hinted = [rows.prompt(COLUMNS, k) for k in range(len(rows)) if rows.hinted[k]]
    assert hinted == [prompts.rationalize_prompt("Which colour?", {"x": "red"})]


@pytest.mark.slow
@pytest.mark.parametrize("style", ["question", "answer_prompt"])
def test_train_json_and_the_trainer_s_dataset_hold_the_configured_prompt(style, small_kit, tmp_path, ray_local):
    from vstar_ray.demo.kit import write_kept_pass

    generated = write_kept_pass(small_kit, tmp_path / "generated")
    cfg = load_config("configs/demo.yaml", [f"train.prompt={style}", "demo_kit=", f"model.path={small_kit}/seed"])
    n = write_train_json(cfg, generated, tmp_path / "train.json", final_cycle=False)
    records = json.loads((tmp_path / "train.json").read_text())
    rows = training_dataset(cfg, generated, str(small_kit / "train.parquet"), final_cycle=False).take_all()
    questions = {r["id"]: r["question"] for r in pq.read_table(generated).to_pylist()}
    expected = sorted(prompts.prompt_for(q, style) for q in questions.values())
    assert sorted(r["conversations"][0]["value"].removeprefix("<video>\n") for r in records) == expected
    assert sorted(str(r["prompt"]) for r in rows) == expected
    assert n == len(rows) == count_trained(cfg, generated, final_cycle=False)
