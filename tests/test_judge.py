"""The judge over real HTTP (a loopback OpenAI-compatible server that misbehaves on purpose): every failure is
counted, bounded in time and never hangs; replies are cached and a second scoring needs no server; the key is never
written anywhere; a Python function can be the judge."""

import json
import time

import pytest

from tests.helpers import chat_server
from tests.helpers.chat_server import ChatServer
from vstar_ray.config import load_config
from vstar_ray.evaluation.judge import Judge, JudgeUnusable
from vstar_ray.evaluation.judge_prompts import parse_qa, qa_request

ITEMS = [("What is the man doing?", "dunking", "He is dunking a basketball."),
         ("What colour is the car?", "red", "The car is blue."),
         ("Who is talking?", "a woman", "A woman talks to the camera.")]


def judge_for(server, tmp_path, model="judge", **keys):
    overrides = [f"judge.base_url={server.url}", f"judge.model={model}", f"judge.cache_dir={tmp_path / 'cache'}",
                 "judge.backoff_s=0.05"] + [f"judge.{k}={v}" for k, v in keys.items()]
    return Judge(load_config(None, overrides).judge)


def requests():
    return [qa_request(q, a, p, {"question": q}) for q, a, p in ITEMS]


def test_replies_parse_and_a_second_scoring_needs_no_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-do-not-write-1234")
    with ChatServer() as server:
        judge = judge_for(server, tmp_path)
        first = [parse_qa(r.text) for r in judge.ask(requests())]
        assert first == [{"yes": True, "score": 4}, {"yes": False, "score": 1}, {"yes": True, "score": 4}]
        assert judge.record()["calls"] == 3 and judge.record()["cache_hits"] == 0
        body = server.bodies[0]
        assert body["temperature"] == 0.0 and body["seed"] == 0 and body["messages"][0]["role"] == "system"
    again = judge_for(server, tmp_path)  # the server is gone
    second = [parse_qa(r.text) for r in again.ask(requests())]
    assert second == first and again.record()["cache_hits"] == 3 and again.record()["calls"] == 0
    written = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert written and "sk-secret" not in written and server.url not in written
    assert "sk-secret" not in json.dumps(again.record())


@pytest.mark.parametrize("model,reason,calls_per_item", [("error500", "http 500", 3), ("garbage", "bad reply", 3),
                                                          ("drop", "connection", 3)])
def test_a_misbehaving_server_fails_items_counted_and_bounded(tmp_path, model, reason, calls_per_item):
    with ChatServer() as server:
        judge = judge_for(server, tmp_path, model, retries=2, timeout_s=5)
        start = time.time()
        replies = judge.ask(requests())
        assert time.time() - start < 20
    assert all(r.text is None and r.error.startswith(reason) for r in replies), [r.error for r in replies]
    record = judge.record()
    assert record["judge_failed"] == 3 and record["failures"] == {reason.split(":")[0]: 3}
    assert server.calls[model] == 3 * calls_per_item
    assert not list((tmp_path / "cache").rglob("*.json"))  # a failure is never cached


def test_a_slow_server_times_out_within_its_limit(tmp_path):
    with ChatServer() as server:
        judge = judge_for(server, tmp_path, "slow", retries=1, timeout_s=0.5, concurrency=3)
        start = time.time()
        replies = judge.ask(requests())
        elapsed = time.time() - start
    assert elapsed < chat_server.SLOW_S, elapsed  # two attempts of 0.5 s each, all items at once
    assert all(r.error.startswith("timeout: no reply within judge.timeout_s=0.5s") for r in replies)


def test_a_flaky_server_is_retried_and_an_unparsed_reply_is_counted(tmp_path):
    with ChatServer() as server:
        judge = judge_for(server, tmp_path, "flaky", retries=2)
        assert [parse_qa(r.text)["yes"] for r in judge.ask(requests())] == [True, False, True]
        assert judge.record()["calls"] == 6 and judge.record()["judge_failed"] == 0
        prose = judge_for(server, tmp_path, "prose")
        replies = prose.ask(requests())
    assert all(r.text == "I would rather not say." and parse_qa(r.text) is None for r in replies)


def test_a_refused_key_or_an_unknown_model_stops_at_once(tmp_path):
    with ChatServer() as server:
        with pytest.raises(JudgeUnusable, match="refused the key.*OPENAI_API_KEY"):
            judge_for(server, tmp_path, "auth").ask(requests())
        with pytest.raises(JudgeUnusable, match="does not serve judge.model 'nope'"):
            judge_for(server, tmp_path, "nope").ask(requests())
        assert server.calls["auth"] <= 3  # no retries, whatever the concurrency


def test_the_judge_identity_keys_the_cache(tmp_path):
    with ChatServer() as server:
        judge_for(server, tmp_path).ask(requests()[:1])
        other = judge_for(server, tmp_path, max_tokens=64)  # another identity: not the same cache entry
        other.ask(requests()[:1])
        original = judge_for(server, tmp_path, preset="original")
        original.ask(requests()[:1])
    assert other.record()["cache_hits"] == 0 and server.calls["judge"] == 3
    assert server.bodies[-1]["temperature"] == 1.0 and "seed" not in server.bodies[-1]
    assert original.record()["preset"] == "original"


def answer_all_correct(messages, item):
    return "{'pred': 'yes', 'score': 5}" if item["question"] != "Who is talking?" else 1 / 0


def legacy(task, question, prediction, answer):
    return answer in prediction


def test_a_function_is_a_judge_and_its_failures_are_its_items_only(tmp_path):
    judge = Judge(load_config(None, ["judge.backend=callable", "judge.function=tests.test_judge:answer_all_correct",
                                     f"judge.cache_dir={tmp_path}"]).judge)
    replies = judge.ask(requests())
    assert [r.text is not None for r in replies] == [True, True, False]
    assert replies[2].error.startswith("raised: tests.test_judge:answer_all_correct: ZeroDivisionError")
    old = Judge(load_config(None, ["judge.backend=callable", "judge.function=tests.test_judge:legacy",
                                   "judge.cache=false"]).judge)
    item = {"task": "yes_no", "question": "q", "prediction": "it is dunking", "answer": "dunking"}
    assert old.ask([qa_request("q", "dunking", "it is dunking", item)])[0].text == "Correct"


@pytest.mark.slow
def test_a_judge_model_on_ray_actors_answers_within_its_bounds(tmp_path, ray_local):
    """``judge.backend: actors`` with HF generate: a tiny random chat model answers every request from a Ray actor
    (its replies are noise, so they parse or are counted unparsed); a call that cannot finish in time fails its
    requests within the limit, and the actor is restarted for the next."""
    from tests.helpers.tiny_families import build_chat_judge

    model = build_chat_judge(tmp_path / "judge_model")
    cfg = load_config(None, ["judge.backend=actors", f"judge.model={model}", "judge.max_tokens=12",
                             f"judge.cache_dir={tmp_path / 'cache'}", "judge.concurrency=2", "judge.num_cpus=0.5"])
    judge = Judge(cfg.judge)
    try:
        replies = judge.ask(requests())
        assert all(isinstance(r.text, str) for r in replies) and judge.record()["judge_failed"] == 0
        assert judge.ask(requests())[0].text == replies[0].text and judge.record()["cache_hits"] == 3
    finally:
        judge.close()
    slow = Judge(load_config(None, ["judge.backend=actors", f"judge.model={model}", "judge.max_tokens=4000",
                                    "judge.timeout_s=0.05", "judge.retries=1", "judge.cache=false",
                                    "judge.num_cpus=0.5"]).judge)
    try:
        start = time.time()
        failed = slow.ask(requests())
        assert all(r.text is None and r.error.startswith("timeout") for r in failed)
        assert time.time() - start < 60
    finally:
        slow.close()
