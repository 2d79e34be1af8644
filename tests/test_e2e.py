"""A real Video-STaR cycle: local Ray cluster, real mp4 files, tiny real Qwen2-VL, real parquet, FSDP2 training."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from tests.helpers import benchmark_files
from tests.helpers.chat_server import ChatServer
from tests.helpers.runs import small_run_overrides
from vstar_ray.cli import main
from vstar_ray.data.manifest import write_manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(small_kit, realdata, tmp_path_factory):
    """One cycle over the small kit plus two bad videos and one real GIF (decord cannot open it)."""
    work = tmp_path_factory.mktemp("e2e")
    rows = pq.read_table(small_kit / "train.parquet").to_pylist()
    (small_kit / "videos" / "empty.mp4").write_bytes(b"")
    shutil.copy(realdata / "videos" / "tempcompass_1021488277__pineapple_pickup.gif", small_kit / "videos" / "pineapple.gif")
    extra = [
        {**rows[0], "id": "bad-empty", "video": "videos/empty.mp4"},
        {**rows[0], "id": "bad-missing", "video": "videos/nope.mp4"},
        {**rows[0], "id": "real-gif", "video": "videos/pineapple.gif", "labels": {"action": "picking up pineapple"}},
    ]
    write_manifest(rows + extra, work / "train.parquet")
    out = work / "run"
    tc_questions, tc_videos = benchmark_files.tempcompass(realdata, work / "tempcompass")
    q, a = benchmark_files.openqa(work / "openqa")
    videos = benchmark_files.videos(realdata, work / "videos")
    server = ChatServer().__enter__()  # the judge, over HTTP
    benchmarks = (f"[{{name: tempcompass, questions: {tc_questions}, videos: {tc_videos}, tasks: 'multi-choice,yes_no'}}, "
                  f"{{name: openqa, label: msvd, questions: {q}, answers: {a}, videos: {videos}}}]")
    overrides = small_run_overrides(small_kit) + [f"data.train_manifest={work}/train.parquet",
                                                  f"data.video_root={small_kit}", f"eval.benchmarks={benchmarks}",
                                                  f"judge.base_url={server.url}", "judge.model=judge",
                                                  f"judge.cache_dir={work / 'judge_cache'}"]
    args = ["run", "--config", "configs/demo.yaml", "--out", str(out)]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 0
    yield out, len(rows) + len(extra), args, overrides
    import ray

    ray.shutdown()
    server.stop()


def test_outputs_follow_the_design_layout(run_dir):
    out, n_rows, _, _ = run_dir
    for rel in ("config.yaml", "state.json", "metrics.json", "report.md", "report.png", "cycle_1/train.json",
                "cycle_1/metrics.json", "cycle_1/checkpoint/config.json", "cycle_1/generated"):
        assert (out / rel).exists(), rel
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["baseline"]["eval_accuracy"] <= 1.0
    (cycle,) = metrics["cycles"]
    for key in ("cycle", "videos", "failed_videos", "generated", "answers", "kept_direct", "kept_rationalized",
                "rejected", "eval_accuracy", "seconds", "timings", "nodes"):
        assert key in cycle, key
    assert cycle["videos"] == n_rows
    assert cycle["failed_videos"] == 2  # the empty and the missing file; the GIF decodes through PyAV
    assert cycle["generated"] == n_rows - 2
    assert cycle["kept_direct"] + cycle["kept_rationalized"] + cycle["rejected"] == cycle["generated"]
    assert cycle["kept_rationalized"] > 0
    rationalized = sum(bool(r["rationalize_prompt"]) for r in pq.read_table(out / "cycle_1" / "generated").to_pylist())
    assert cycle["answers"] == cycle["generated"] + rationalized  # a direct answer each, plus a rationalization
    assert set(cycle["timings"]) >= {"generate", "train", "eval"}
    assert cycle["nodes"]["generate.answer"]
    for entry in (metrics["baseline"], cycle):  # the judged benchmarks, seed and every cycle
        assert set(entry["benchmarks"]) == {"tempcompass", "msvd"}
        assert set(entry["benchmarks"]["tempcompass"]["figures"]) == {"multi-choice", "yes_no", "average"}
        assert set(entry["benchmarks"]["msvd"]["figures"]) == {"accuracy", "score"}
    by_type = cycle["eval"]["by_type"]  # the kit's three label types, a third of the held-out videos each
    assert {t: c["total"] for t, c in by_type.items()} == {"class": 6, "temporal_range": 5, "float": 5}
    assert len(cycle["eval"]["overall"]["ci95"]) == 2
    report = (out / "report.md").read_text()
    assert "Held-out accuracy by label type" in report and "Accuracy / Score as the paper reports them" in report
    assert "| gain, cycle 1 over seed (95% CI) |" in report
    assert (out / "cycle_1" / "eval_report.md").exists()
    assert (out / "cycle_1" / "benchmarks" / "msvd" / "results.json").exists()
    evaluated = pq.read_table(out / "cycle_1" / "eval").to_pylist()
    assert all(r["prompt"].startswith("Question: ") for r in evaluated if not r["error"])  # prompts recorded


def test_every_manifest_row_exactly_once_with_reasons(run_dir):
    out, n_rows, _, _ = run_dir
    table = pq.read_table(out / "cycle_1" / "generated").to_pylist()
    assert sorted(r["id"] for r in table) == sorted(set(r["id"] for r in table)) and len(table) == n_rows
    by_id = {r["id"]: r for r in table}
    assert by_id["bad-empty"]["error"].startswith("decode failed") and not by_id["bad-empty"]["kept"]
    assert "nope.mp4" in by_id["bad-missing"]["error"]
    assert by_id["real-gif"]["error"] == "" and by_id["real-gif"]["answer"]
    for r in table:
        if r["kept_from"] == "direct":
            assert r["direct_verified"] and r["kept_answer"] == r["answer"]
        if r["kept_from"] == "rationalized":
            assert r["rationalized"] and r["rationalized_verified"] and r["kept_answer"] == r["rationalized_answer"]
        if r["direct_verified"]:
            assert not r["rationalized"]  # only failures are rationalized


def test_train_json_is_llava_format_without_hint(run_dir):
    out, _, _, _ = run_dir
    records = json.loads((out / "cycle_1" / "train.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())["cycles"][0]
    assert len(records) == metrics["kept_direct"] + metrics["kept_rationalized"]
    for r in records:
        human, gpt = r["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<video>\n")
        assert "Answer:" not in human["value"]  # the hint never reaches the training prompt
        assert gpt["from"] == "gpt" and gpt["value"]


def test_hinted_copies_train_rationalized_answers_under_their_hint_too(run_dir):
    from vstar_ray.config import load_config
    from vstar_ray.training.rows import count_trained, training_dataset

    out, _, _, overrides = run_dir
    generated = out / "cycle_1" / "generated"
    kept = {r["id"]: r for r in pq.read_table(generated).to_pylist() if r["kept"]}
    rationalized = {i for i, r in kept.items() if r["kept_from"] == "rationalized"}
    for copies in (True, False):
        cfg = load_config("configs/demo.yaml", overrides + [f"train.hinted_copies={str(copies).lower()}"])
        rows = training_dataset(cfg, generated, cfg.data.train_manifest[0].manifest, final_cycle=False).take_all()
        hinted = [r for r in rows if "\nAnswer: " in r["prompt"]]
        assert len(rows) == count_trained(cfg, generated, final_cycle=False) == len(kept) + len(hinted)
        assert len(hinted) == (len(rationalized) if copies else 0)
        for r in hinted:  # the same answer, under the prompt that produced it
            assert r["kept_answer"] in {kept[i]["rationalized_answer"] for i in rationalized}
            assert r["prompt"] in {kept[i]["rationalize_prompt"] for i in rationalized}


def test_checkpoint_loads_and_differs_from_seed(run_dir, small_kit):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    out, _, _, _ = run_dir
    trained = AutoModelForImageTextToText.from_pretrained(out / "cycle_1" / "checkpoint")
    seed = AutoModelForImageTextToText.from_pretrained(small_kit / "seed")
    AutoProcessor.from_pretrained(out / "cycle_1" / "checkpoint")
    diffs = [not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), seed.state_dict().values())]
    assert any(diffs)


def test_resume_skips_finished_stages(run_dir, capsys):
    out, _, args, _ = run_dir
    before = json.loads((out / "metrics.json").read_text())
    assert main(args) == 2  # an existing run is not overwritten without --resume
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    assert "cycle_1/train: done earlier, skipped" in capsys.readouterr().out
    after = json.loads((out / "metrics.json").read_text())
    assert after == before


def test_the_run_s_generator_processes_started_once_and_served_every_pass(run_dir):
    """The pool's actors answered the baseline eval, the generation pass and the cycle's eval (and TempCompass):
    no pass started a model process of its own; each actor loaded the seed, then the cycle's checkpoint."""
    out, _, _, _ = run_dir
    first = json.loads((out / "generators.json").read_text())[0]  # the first invocation (a resume test runs later)
    pool = {g["actor"]: g for g in first["processes"]}
    assert len(pool) == len({g["pid"] for g in pool.values()}) == 2  # configs/demo.yaml: generate.max_actors
    served = set()
    for folder in ("baseline/eval", "cycle_1/generated", "cycle_1/eval", "cycle_1/benchmarks/tempcompass/answers"):
        table = pq.read_table(out / folder)
        for column in ("answer_call", "rationalize_call"):
            if column in table.column_names:
                served |= {json.loads(c)[0] for c in table[column].to_pylist() if c}
    assert served <= set(pool) and served
    assert all(g["loads"] <= 2 for g in pool.values())  # the seed, then cycle 1's checkpoint, in place


def test_the_model_exports_as_a_plain_hf_folder_with_the_run_s_answers(run_dir, small_kit, tmp_path):
    """The full finetune of cycle 1 (FSDP2, two workers) as a folder plain transformers loads: its greedy answers
    are the run's own held-out answers. Its model card names the base and the run's figures."""
    from tests.test_export import plain_answers, vstar

    out, _, _, _ = run_dir
    proc = vstar("export", "model", "--run", str(out), "--cycle", "best", "--dtype", "float32",
                 "--out", str(tmp_path / "model"))
    assert proc.returncode == 0, proc.stderr
    card = (tmp_path / "model" / "README.md").read_text()
    assert f"from `{small_kit / 'seed'}`" in card and "full finetune" in card and "| cycle 1 |" in card
    assert "vstar-ray's synthetic demo videos" in card  # the licence of each source
    run_answers, exported = plain_answers(tmp_path / "model", out, 1, small_kit, tmp_path)
    assert exported == run_answers


def test_the_data_exports_as_a_dataset_with_the_run_s_counts(run_dir, tmp_path):
    import datasets

    from tests.test_export import vstar

    out, _, _, _ = run_dir
    proc = vstar("export", "data", "--run", str(out), "--out", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    (cycle,) = json.loads((out / "metrics.json").read_text())["cycles"]
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "data"), split="train")
    assert len(loaded) == cycle["kept_direct"] + cycle["kept_rationalized"]
    assert sum(loaded["rationalized"]) == cycle["kept_rationalized"] and set(loaded["cycle"]) == {1}
    row = loaded[0]
    assert row["question"] and row["answer"] and row["label_types"] and row["source"] == "demo"
    assert not row["video"].startswith("/")  # relative to the videos' folder, named in the card
    card = (tmp_path / "data" / "README.md").read_text()
    assert "| 1 |" in card and "| demo |" in card and "Answer length" in card
    llava = json.loads((tmp_path / "data" / "__llava" / "train.json").read_text())
    assert len(llava) == len(loaded) and llava[0]["conversations"][0]["value"].startswith("<video>\n")
    copied = vstar("export", "data", "--run", str(out), "--out", str(tmp_path / "copied"), "--copy-videos")
    assert copied.returncode == 0, copied.stderr
    first = datasets.load_dataset("parquet", data_dir=str(tmp_path / "copied"), split="train")[0]
    assert (tmp_path / "copied" / first["video"]).is_file()
