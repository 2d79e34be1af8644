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


@pytest.mark.slow
def test_training_reads_the_frames_the_pass_decoded_byte_for_byte(small_kit, tmp_path, ray_local):
    """With ``data.frame_cache``, the decode stage of a pass stores each clip; the trainer's dataset reads the same
    clips from the cache (no decode), every epoch, and gets exactly the frames the answers were generated from."""
    import hashlib

    from vstar_ray.data.decode import decoded, read_manifest
    from vstar_ray.demo.kit import write_kept_pass

    generated = write_kept_pass(small_kit, tmp_path / "generated")
    cfg = load_config("configs/demo.yaml", ["demo_kit=", f"model.path={small_kit}/seed",
                                            f"data.frame_cache={tmp_path / 'cache'}"])
    passed = decoded(cfg, read_manifest(cfg, str(small_kit / "train.parquet")), str(small_kit)).take_all()
    assert {r["frames_from"] for r in passed} == {"file"} and not any(r["error"] for r in passed)
    digest = lambda frames: hashlib.sha256(frames.tobytes()).hexdigest()  # noqa: E731
    pass_frames = {digest(r["frames"]) for r in passed}
    dataset = training_dataset(cfg, generated, str(small_kit / "train.parquet"), final_cycle=False)
    for _ in range(2):  # two epochs: Ray Data runs the chain again, and reads the cache again
        rows = dataset.take_all()
        assert rows and {r["frames_from"] for r in rows} == {"cache"}
        assert {digest(r["frames"]) for r in rows} <= pass_frames
