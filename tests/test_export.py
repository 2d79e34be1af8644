"""``vstar export``: a run's model as a plain HF folder that transformers (without vstar_ray) and vLLM load and that
answers as the run's own evaluation did, for a full finetune (tests/test_e2e.py's run) and for LoRA cycles that
continue from each other (here); bad input is one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest


HELPER = Path(__file__).parent / "helpers" / "plain_generate.py"


def plain_answers(model_dir: Path, run: Path, cycle: int, video_root: Path, tmp_path: Path, n: int = 4,
                  max_new_tokens: int = 64) -> tuple[list[str], list[str]]:
    """The run's own greedy answers of ``cycle``'s held-out eval, and the exported model's on the same clips and
    prompts, from plain transformers in a process where vstar_ray cannot be imported."""
    from vstar_ray import models
    from vstar_ray.data.video import decode_clip

    rows = [r for r in pq.read_table(run / f"cycle_{cycle}" / "eval").to_pylist() if not r["error"]][:n]
    clips, requests = {}, []
    for i, r in enumerate(rows):
        video = r["video"] if os.path.isabs(r["video"]) else str(video_root / r["video"])
        clip = decode_clip(video, 8, 56)
        clips[f"clip{i}"] = clip.frames
        requests.append({"prompt": r["prompt"], "max_new_tokens": max_new_tokens,
                         "metadata": models.video_metadata(clip.fps, clip.frame_indices, clip.clip_frames)})
    np.savez(tmp_path / "clips.npz", **clips)
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-P", str(HELPER), str(model_dir), str(tmp_path / "clips.npz"),
                           str(tmp_path / "requests.json"), str(tmp_path / "answers.json")], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [r["answer"] for r in rows], json.loads((tmp_path / "answers.json").read_text())


def vstar(*args):
    return subprocess.run([sys.executable, "-m", "vstar_ray", *args], capture_output=True, text=True, timeout=900)


def test_bad_input_is_one_line(tmp_path):
    run = tmp_path / "run"
    (run / "cycle_1" / "checkpoint").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {path: x}\n")
    (run / "metrics.json").write_text(json.dumps({"baseline": {"eval_accuracy": 0.1}, "cycles": [
        {"cycle": 1, "eval_accuracy": 0.2}]}))
    cases = [(["model", "--run", str(tmp_path), "--out", str(tmp_path / "m")], "is not a vstar run folder"),
             (["model", "--run", str(run), "--cycle", "3", "--out", str(tmp_path / "m")], "--cycle 3: .* has cycles 1"),
             (["model", "--run", str(run), "--out", str(run)], "--out .* exists"),
             (["data", "--run", str(run), "--cycles", "2", "--out", str(tmp_path / "d")], r"--cycles \[2\]"),
             (["model", "--run", str(run), "--out", str(tmp_path / "m")], "holds no checkpoint")]
    import re

    for args, message in cases:
        proc = vstar("export", *args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and re.search(message, lines[0]) and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_a_lora_continuation_exports_as_one_merged_model_with_the_run_s_answers(lora_run, small_kit, tmp_path):
    """conftest's ``lora_run``: each cycle's adapter is trained (not peft's zero init of lora_B), cycle 2's stands on
    cycle 1's, and the export merges the chain into one plain model that answers as the run's evaluation did."""
    from safetensors.torch import load_file

    from vstar_ray import models

    lora_run, _ = lora_run
    for k in (1, 2):
        weights = load_file(lora_run / f"cycle_{k}" / "checkpoint" / "adapter_model.safetensors")
        lora_b = [w for name, w in weights.items() if "lora_B" in name]
        assert lora_b and max(float(w.abs().max()) for w in lora_b) > 0
    assert not any("lora" in name for name, _ in models.load_model(str(lora_run / "cycle_1" / "checkpoint"))
                   .named_parameters())  # base + adapter, merged on load
    adapter = json.loads((lora_run / "cycle_2" / "checkpoint" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(lora_run / "cycle_1" / "checkpoint")
    proc = vstar("export", "model", "--run", str(lora_run), "--cycle", "last", "--dtype", "float32",
                 "--out", str(tmp_path / "model"))
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "model"
    assert not (folder / "adapter_config.json").exists() and (folder / "config.json").exists()
    assert {"generation_config.json", "README.md"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "LoRA (r=8" in card and "2 adapter(s) merged" in card and "| cycle 2 |" in card and "CC BY" not in card
    run_answers, exported = plain_answers(folder, lora_run, 2, small_kit, tmp_path)
    assert exported == run_answers


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not Path(os.environ.get("VSTAR_VLLM_PYTHON") or "/nonexistent").exists(),
                    reason="VSTAR_VLLM_PYTHON is not set to a Python with vLLM (make test-vllm)")
def test_vllm_serves_an_exported_model(lora_run, tmp_path):
    assert vstar("export", "model", "--run", str(lora_run[0]), "--out", str(tmp_path / "model"),
                 "--dtype", "float32").returncode == 0
    script = ("import os, sys; os.environ.setdefault('VLLM_CPU_KVCACHE_SPACE', '1')\n"
              "from vllm import LLM, SamplingParams\n"
              "if __name__ == '__main__':\n"
              "    llm = LLM(model=sys.argv[1], dtype='float32', max_model_len=512, enforce_eager=True)\n"
              "    out = llm.generate(['Describe the video.'], SamplingParams(max_tokens=8, temperature=0), use_tqdm=False)\n"
              "    print('ANSWER', len(out[0].outputs[0].token_ids))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    proc = subprocess.run([os.environ["VSTAR_VLLM_PYTHON"], "-c", script, str(tmp_path / "model")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "ANSWER" in proc.stdout, proc.stderr[-3000:]
