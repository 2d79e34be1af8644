"""Evaluation suites: TempCompass answer matching on the real question files; held-out QA scoring;
``vstar eval`` end to end on the demo model through the Ray generator pool."""

import json
import shutil

import pytest

from vstar_ray.evaluation import tempcompass as tc
from vstar_ray.evaluation.stats import wilson


@pytest.fixture(scope="module")
def questions(realdata):
    return tc.load_questions(realdata / "annotations" / "tempcompass")


def test_all_four_formats_load_with_prompts(questions):
    counts = {t: sum(q["task"] == t for q in questions) for t in tc.TASKS}
    assert counts == {"multi-choice": 1580, "yes_no": 2453, "caption_matching": 1503, "captioning": 2004}
    assert {q["dimension"] for q in questions} == set(tc.DIMENSIONS)
    mc = next(q for q in questions if q["task"] == "multi-choice")
    assert mc["prompt"].endswith("Please directly give the best option:")


def _cases(q):
    """(prediction, the official scripts' rating: 1, 0, or None where they ask their LLM judge)."""
    task, question, answer = q["task"], q["question"], q["answer"]
    if task == "multi-choice":
        gold = answer[0]
        other = next(x for x in "ABCD" if x != gold and f"{x}." in question)
        return [(answer, 1), (answer + "</s>", 1), (gold, 1), (other, 0), (f"{gold}. whatever", 1), (f"{other}) x", 0),
                (f"({gold})", None), (f"The answer is {gold}.", None), (answer.split(". ", 1)[-1], None)]
    if task == "yes_no":
        flip = "no" if answer == "yes" else "yes"
        return [(f"{answer.capitalize()}, it does.", 1), (answer, 1), (f"{flip.upper()}.", 0),
                (f"I think {answer}.", None), ("Nobody knows.", int(answer == "no"))]  # startswith("no"), as there
    if task == "caption_matching":
        lines = question.split("\n")[1:]
        label, sentence = answer.split(": ", 1)
        other = next(line for line in lines if line != answer)
        return [(answer, 1), (label, 1), (sentence, 1), (label.split()[1], 1), (label + ".", 1),
                (other, 0), (other.split(": ", 1)[1], 0), (f"I would pick {label}", None)]
    return [(answer, None), ("anything", None)]  # captioning: the LLM judge decides every answer


def test_scoring_follows_the_official_rules_on_every_real_question(questions):
    """Checked once against the official eval scripts themselves (github llyx97/TempCompass), which are not in
    this repository: 210,057 (question, prediction) pairs, the same rating for each."""
    wrong = []
    for q in questions:
        for prediction, rating in _cases(q):
            if tc.official_rating(q["task"], q["question"], q["answer"], prediction) != rating:
                wrong.append((q["id"], prediction, rating))
    assert not wrong, wrong[:5]
    assert tc.official_rating("multi-choice", "Q", "A. x", None) == 0  # no answer at all: 0, no judge


def test_what_the_rules_leave_to_the_judge_is_wrong_unless_a_judge_decides(questions):
    sample = [dict(q, prediction="I cannot tell.") for q in questions if q["task"] == "captioning"][:5]
    results = tc.score([dict(p) for p in sample])
    assert results["captioning"]["correct"] == 0 and results["captioning"]["left_to_judge"] == 5
    judged = tc.score([dict(p) for p in sample], judge=lambda task, question, prediction, answer: True)
    assert judged["captioning"]["correct"] == 5 and judged["captioning"]["left_to_judge"] == 0
    assert judged["captioning"]["judged"] == 5
    assert "ci95" in judged["captioning"]["by_dimension"][sample[0]["dimension"]]
    with pytest.raises(tc.TempCompassError, match="cannot load judge"):
        tc.load_judge("no_such_module:judge")


def test_wilson_interval():
    assert wilson(0, 0) == [0.0, 0.0]
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and round(lo, 3) == 0.237 and round(hi, 3) == 0.763
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0


@pytest.mark.slow
def test_vstar_eval_tempcompass_and_heldout_on_the_demo_model(small_kit, realdata, tmp_path):
    import ray

    from vstar_ray.cli import main

    videos = tmp_path / "tc_videos"
    videos.mkdir()
    shutil.copy(realdata / "videos" / "tempcompass_1021488277__pineapple_pickup.gif", videos / "1021488277.gif")
    (videos / "1021488277_reverse.mp4").write_bytes(b"not a video")  # present but undecodable
    common = ["--config", "configs/demo.yaml", "--set", "demo_kit=", "--set", "generate.max_new_tokens=24"]
    try:
        assert main(["eval", "--benchmark", "tempcompass", "--questions", str(realdata / "annotations/tempcompass"),
                     "--videos", str(videos), "--model", str(small_kit / "seed"), "--out", str(tmp_path / "tc"),
                     *common]) == 0
        result = json.loads((tmp_path / "tc" / "results.json").read_text())
        assert set(result["tasks"]) == set(tc.TASKS) and result["decoding"] == "greedy"
        assert result["failed_videos"] == ["1021488277_reverse"] and len(result["missing_videos"]) == 408
        answered = [json.loads(line) for line in (tmp_path / "tc" / "predictions.jsonl").read_text().splitlines()]
        assert len(answered) == result["answered"] == 3 + 6 + 3 + 4  # the GIF's questions in the four files
        assert all(p["prompt"].startswith(p["question"]) and p["video_id"] == "1021488277" for p in answered)
        assert "| yes_no |" in (tmp_path / "tc" / "results.md").read_text()

        assert main(["eval", "--manifest", str(small_kit / "heldout.parquet"), "--model", str(small_kit / "seed"),
                     "--out", str(tmp_path / "ho"), *common]) == 0
        metrics = json.loads((tmp_path / "ho" / "metrics.json").read_text())
        scores = metrics["scores"]
        assert scores["overall"]["total"] == 16 and set(scores["by_type"]) == {"class", "float", "temporal_range"}
        assert scores["overall"]["accuracy"] == metrics["eval_accuracy"]
        assert len(scores["overall"]["ci95"]) == 2 and "label type" in (tmp_path / "ho" / "report.md").read_text()
    finally:
        ray.shutdown()
    assert main(["eval", "--benchmark", "tempcompass", "--questions", str(tmp_path), "--videos", str(videos),
                 "--model", "x", "--out", str(tmp_path / "bad")]) == 2
