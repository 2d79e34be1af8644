"""The judge against a real ``vllm serve``: vLLM's CPU build in an environment of its own (``make test-vllm``), serving
a tiny random chat model with structured outputs, so its replies parse. Every benchmark, held-out QA under the
paper's protocol and a whole run with ``eval.benchmarks`` are scored through it; ``judge.backend: actors`` starts
its own ``vllm serve`` on a Ray actor."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import benchmark_files
from tests.helpers.runs import small_run_overrides
from tests.helpers.tiny_families import build_chat_judge

VLLM_PYTHON = os.environ.get("VSTAR_VLLM_PYTHON", "")
pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(not Path(VLLM_PYTHON or "/nonexistent").exists(),
                                 reason="VSTAR_VLLM_PYTHON is not set to a Python with vLLM (make test-vllm)")]


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory):
    return build_chat_judge(tmp_path_factory.mktemp("judge") / "tiny-chat")


@pytest.fixture(scope="module")
def vllm_serve(judge_model, tmp_path_factory):
    """``vllm serve`` on loopback; its URL once it answers (at most 5 minutes), stopped after the module."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["VLLM_CPU_KVCACHE_SPACE"] = "1"
    with open(log, "w") as out:
        proc = subprocess.Popen([VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(judge_model),
                                 "--served-model-name", "judge", "--host", "127.0.0.1", "--port", str(port),
                                 "--max-model-len", "2048", "--dtype", "float32", "--enforce-eager"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    try:
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen(url + "/models", timeout=5).read()
                break
            except OSError:
                assert time.time() < deadline, "vllm serve did not answer within 300 s:\n" + log.read_text()[-3000:]
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def judge_args(url: str, cache: Path) -> list[str]:
    return ["--set", f"judge.base_url={url}", "--set", "judge.model=judge", "--set", "judge.structured_outputs=true",
            "--set", f"judge.cache_dir={cache}", "--set", "judge.max_tokens=48"]


def test_every_benchmark_and_the_paper_protocol_are_judged_by_vllm_serve(vllm_serve, small_kit, realdata, tmp_path):
    import ray

    from vstar_ray.cli import main

    videos = benchmark_files.videos(realdata, tmp_path / "videos")
    q, a = benchmark_files.openqa(tmp_path / "openqa")
    vcg = benchmark_files.videochatgpt(tmp_path / "vcg")
    tc_questions, tc_videos = benchmark_files.tempcompass(realdata, tmp_path / "tc")
    model = ["--model", str(small_kit / "seed"), "--config", "configs/demo.yaml", "--set", "demo_kit=",
             "--set", "generate.max_new_tokens=16", *judge_args(vllm_serve, tmp_path / "cache")]
    runs = {"openqa": ["--benchmark", "openqa", "--questions", str(q), "--answers", str(a), "--videos", str(videos)],
            "vcg": ["--benchmark", "videochatgpt", "--questions", str(vcg), "--videos", str(videos)],
            "tc": ["--benchmark", "tempcompass", "--questions", str(tc_questions), "--videos", str(tc_videos)],
            "heldout": ["--manifest", str(small_kit / "heldout.parquet"), "--protocol", "paper"]}
    try:
        for name, args in runs.items():
            assert main(["eval", *args, *model, "--out", str(tmp_path / name)]) == 0, name
    finally:
        ray.shutdown()
    for name in ("openqa", "vcg", "tc"):
        result = json.loads((tmp_path / name / "results.json").read_text())
        assert result["judge"]["judge_failed"] == 0 and result["judge"]["requests"] > 0, name
        assert result["judge"]["model"] == "judge" and result["judge"]["temperature"] == 0.0
    openqa = json.loads((tmp_path / "openqa" / "results.json").read_text())
    assert openqa["parse_failed"] == 0 and openqa["overall"]["total"] == 3  # structured outputs: every reply parses
    assert 0 <= openqa["overall"]["score"] <= 5
    assert json.loads((tmp_path / "vcg" / "results.json").read_text())["parse_failed"] == 0
    tc = json.loads((tmp_path / "tc" / "results.json").read_text())
    assert set(tc["tasks"]) == {"multi-choice", "yes_no", "caption_matching", "captioning"}
    assert tc["tasks"]["captioning"]["decided_by"].get("judge") == tc["tasks"]["captioning"]["total"]
    heldout = json.loads((tmp_path / "heldout" / "metrics.json").read_text())["judged"]
    assert heldout["judge_failed"] == heldout["parse_failed"] == 0 and heldout["overall"]["total"] == 16
    assert set(heldout["by_source"]) == {"demo"} and "score_ci95" in heldout["by_source"]["demo"]


def test_a_run_scores_every_cycle_with_the_benchmarks_and_the_paper_protocol(vllm_serve, small_kit, realdata,
                                                                           tmp_path):
    import ray

    from vstar_ray.cli import main

    videos = benchmark_files.videos(realdata, tmp_path / "videos")
    q, a = benchmark_files.openqa(tmp_path / "openqa")
    vcg = benchmark_files.videochatgpt(tmp_path / "vcg")
    benchmarks = (f"[{{name: openqa, label: msvd, questions: {q}, answers: {a}, videos: {videos}}}, "
                  f"{{name: videochatgpt, questions: {vcg}, videos: {videos}}}]")
    args = ["run", "--config", "configs/demo.yaml", "--out", str(tmp_path / "run")]
    for item in small_run_overrides(small_kit) + ["eval.protocol=paper", f"eval.benchmarks={benchmarks}"]:
        args += ["--set", item]
    try:
        assert main(args + judge_args(vllm_serve, tmp_path / "cache")) == 0
    finally:
        ray.shutdown()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for entry in (metrics["baseline"], *metrics["cycles"]):
        assert set(entry["benchmarks"]) == {"msvd", "videochatgpt"} and entry["judged"]["overall"]["total"] == 16
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| demo (judged) | msvd | videochatgpt |" in report and "| gain, cycle 1 over seed (95% CI) |" in report
    (tmp_path / "report_table.md").write_text(report)  # the closing note quotes it


def test_a_judge_model_on_a_ray_actor_serves_itself_with_vllm(judge_model, tmp_path, ray_local):
    from vstar_ray.config import load_config
    from vstar_ray.evaluation.judge import Judge
    from vstar_ray.evaluation.judge_prompts import parse_qa, qa_request

    cfg = load_config(None, ["judge.backend=actors", "judge.engine=vllm", f"judge.vllm_python={VLLM_PYTHON}",
                             f"judge.model={judge_model}", "judge.structured_outputs=true", "judge.num_cpus=0.5",
                             f"judge.cache_dir={tmp_path}", "judge.max_tokens=24"])
    judge = Judge(cfg.judge)
    try:
        replies = judge.ask([qa_request("What is he doing?", "dunking", "He dunks.", {}),
                             qa_request("What colour?", "red", "Blue.", {})])
    finally:
        judge.close()
    assert all(parse_qa(r.text) is not None for r in replies), [r.text for r in replies]
