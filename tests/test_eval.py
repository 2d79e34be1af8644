"""Evaluation suites: TempCompass answer matching on the real question files; held-out QA scoring;
``vstar eval`` end to end on the demo model through the Ray generator pool."""

import json

import pytest

from vstar_ray.config import load_config
from vstar_ray.evaluation import tempcompass as tc
from vstar_ray.evaluation.judge import Judge
from vstar_ray.evaluation.stats import bootstrap_gain, bootstrap_mean, wilson
from vstar_ray.evaluation.tempcompass_rules import official_rating


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
    task, question, answer = q["task"], q["question"], q["gold"]
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
            if official_rating(q["task"], q["question"], q["gold"], prediction) != rating:
                wrong.append((q["id"], prediction, rating))
    assert not wrong, wrong[:5]
    assert official_rating("multi-choice", "Q", "A. x", None) == 0  # no answer at all: 0, no judge


def caption_judge(messages, item):
    """Answers a captioning judge request with the option the caption names (a stand-in LLM)."""
    question = messages[-1]["content"].split("Multi-Choice Question:\n", 1)[1]
    option = next(line for line in question.split("\n") if line[3:] and line[3:] in item["prediction"])
    return f"Reasoning: the caption says so.\nAnswer: {option}"


def test_captioning_is_judged_through_the_multiple_choice_question(questions, realdata):
    mc = {vid: dims for vid, dims in
          json.loads((realdata / "annotations" / "tempcompass" / "multi-choice.json").read_text()).items()}
    meta = json.loads((realdata / "annotations" / "tempcompass" / "meta_info.json").read_text())
    sample = [q for q in questions if q["task"] == "captioning"][:6]
    for k, q in enumerate(sample):  # half the captions name the right option, half a wrong one
        first = mc[q["video_id"]][q["dimension"]][0]
        options = [line[3:] for line in first["question"].split("\n")[1:]]
        right = first["answer"][3:]
        q["prediction"] = f"A video of {right}." if k % 2 == 0 else f"A video of {next(o for o in options if o != right)}."
        q["rating"] = None
    unjudged = [dict(q) for q in sample]
    tc.judge_open(unjudged, None, mc)
    results = tc.score(unjudged, meta)["captioning"]
    assert results["correct"] == 0 and results["left_to_judge"] == 6  # the official --disable_llm
    judge = Judge(load_config(None, ["judge.backend=callable", "judge.function=tests.test_eval:caption_judge",
                                     "judge.cache=false"]).judge)
    judged = [dict(q) for q in sample]
    tc.judge_open(judged, judge, mc)
    results = tc.score(judged, meta)["captioning"]
    assert results["correct"] == 3 and results["total"] == 6 and results["decided_by"] == {"judge": 6}
    assert set(results["by_aspect"]) <= set(tc.ASPECTS) and results["by_aspect"]
    assert all("ci95" in cell for cell in results["by_dimension"].values())


@pytest.mark.parametrize("content,match", [
    ({"vid": ["not", "a", "mapping"]}, r"vid: expected \{dimension"),
    ({"vid": {"action": [{"question": 3, "answer": "yes"}]}}, r"vid/action\[0\]: expected question and answer as text"),
    ({}, "no questions"),
])
def test_a_malformed_question_file_is_named(tmp_path, content, match):
    (tmp_path / "yes_no.json").write_text(json.dumps(content))
    with pytest.raises(tc.TempCompassError, match=match):
        tc.load_questions(tmp_path, ["yes_no"])
    (tmp_path / "yes_no.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(tc.TempCompassError, match=f"{tmp_path / 'yes_no.json'}: not UTF-8"):
        tc.load_questions(tmp_path, ["yes_no"])


def test_bootstrap_intervals():
    lo, hi = bootstrap_mean([1, 2, 3, 4, 5] * 20)
    assert lo < 3 < hi and hi - lo < 1
    assert bootstrap_mean([]) == [0.0, 0.0]
    lo, hi = bootstrap_gain([0] * 50 + [1] * 50, [1] * 100)
    assert 0 < lo <= 0.5 <= hi


def test_wilson_interval():
    assert wilson(0, 0) == [0.0, 0.0]
    lo, hi = wilson(5, 10)
    assert lo < 0.5 < hi and round(lo, 3) == 0.237 and round(hi, 3) == 0.763
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0


def figures(path):
    """results.json without what differs between two scorings of the same answers (time, cache counts)."""
    data = json.loads(path.read_text())
    data.pop("seconds", None)
    data.pop("judge", None)
    (data.get("judged") or {}).pop("judge", None)
    return data


@pytest.mark.slow
def test_vstar_eval_scores_every_benchmark_judged_over_http_and_again_offline(small_kit, realdata, tmp_path):
    """The demo model on open-ended QA, the generation benchmark, TempCompass and held-out QA under the paper
    protocol, judged over HTTP; then every figure again from the cache with the judge server gone."""
    import ray

    from tests.helpers import benchmark_files
    from tests.helpers.chat_server import ChatServer
    from vstar_ray.cli import main

    videos = benchmark_files.videos(realdata, tmp_path / "videos")
    q, a = benchmark_files.openqa(tmp_path / "openqa")
    vcg = benchmark_files.videochatgpt(tmp_path / "vcg")
    tc_questions, tc_videos = benchmark_files.tempcompass(realdata, tmp_path / "tc")
    model = ["--model", str(small_kit / "seed"), "--config", "configs/demo.yaml", "--set", "demo_kit=",
             "--set", "generate.max_new_tokens=16"]
    runs = {"openqa": ["--benchmark", "openqa", "--questions", str(q), "--answers", str(a), "--videos", str(videos),
                       "--label", "msvd"],
            "vcg": ["--benchmark", "videochatgpt", "--questions", str(vcg), "--videos", str(videos)],
            "tc": ["--benchmark", "tempcompass", "--questions", str(tc_questions), "--videos", str(tc_videos),
                   "--tasks", "yes_no,captioning"],
            "heldout": ["--manifest", str(small_kit / "heldout.parquet"), "--protocol", "paper"]}
    try:
        with ChatServer() as server:
            judge = ["--set", f"judge.base_url={server.url}", "--set", "judge.model=judge",
                     "--set", f"judge.cache_dir={tmp_path / 'cache'}"]
            for name, args in runs.items():
                assert main(["eval", *args, *model, *judge, "--out", str(tmp_path / name)]) == 0, name
            calls = dict(server.calls)
        openqa = json.loads((tmp_path / "openqa" / "results.json").read_text())
        assert openqa["answered"] == 3 and openqa["missing_videos"] == ["missing_video"]  # v_armwrestle found
        assert openqa["overall"]["total"] == 3 and set(openqa["by_type"]) == {"0", "1"}
        assert len(openqa["overall"]["score_ci95"]) == 2 and openqa["judge"]["model"] == "judge"
        items = [json.loads(line) for line in (tmp_path / "openqa" / "predictions.jsonl").read_text().splitlines()]
        assert {i["id"]: i["gold"] for i in items} == {"v_1": "arm wrestling", "v_2": "pancake", "v_3": "makeup"}
        assert all(i["prompt"] == i["question"] for i in items)  # the bare question
        vcg_result = json.loads((tmp_path / "vcg" / "results.json").read_text())
        assert set(vcg_result["scores"]) == {"correctness", "detail", "context", "temporal", "consistency"}
        assert vcg_result["scores"]["correctness"]["n"] == 2 and vcg_result["scores"]["consistency"]["n"] == 1
        tc_result = json.loads((tmp_path / "tc" / "results.json").read_text())
        assert tc_result["failed_videos"] == ["1021488277_reverse"] and set(tc_result["tasks"]) == {"yes_no",
                                                                                                     "captioning"}
        assert tc_result["tasks"]["captioning"]["decided_by"] == {"judge": 4}  # through the multiple-choice question
        heldout = json.loads((tmp_path / "heldout" / "metrics.json").read_text())
        assert heldout["judged"]["overall"]["total"] == 16 and set(heldout["judged"]["by_type"]) == {
            "class", "float", "temporal_range"}
        assert "The paper's protocol" in (tmp_path / "heldout" / "report.md").read_text()
        import pyarrow.parquet as pq

        asked = pq.read_table(tmp_path / "heldout" / "eval").to_pylist()
        assert all(r["prompt"] == r["question"] for r in asked)  # the bare question (eval.prompt: auto)
        # the judge server is gone: every figure again, from the cached replies
        for name, args in runs.items():
            before = figures(tmp_path / name / ("metrics.json" if name == "heldout" else "results.json"))
            assert main(["eval", *args, *model, *judge, "--rescore", "--out", str(tmp_path / name)]) == 0, name
            after = figures(tmp_path / name / ("metrics.json" if name == "heldout" else "results.json"))
            assert after == before, name
        assert sum(calls.values()) == len(server.bodies)
    finally:
        ray.shutdown()
    rules_only = ["eval", *runs["tc"], *model, "--out", str(tmp_path / "tc_rules"), "--rescore"]
    assert main(rules_only) == 2  # nothing answered there yet
    assert main(["eval", "--benchmark", "tempcompass", "--questions", str(tmp_path), "--videos", str(videos),
                 "--model", "x", "--out", str(tmp_path / "bad")]) == 2
    assert main(["eval", *runs["openqa"], "--model", "x", "--out", str(tmp_path / "nojudge")]) == 2  # no judge set
