"""What a person sees and what a run leaves for the tools of this field: a short console, logs in OUT/logs/,
TensorBoard event files read back, MLflow (sqlite) and W&B (offline) runs; its second cycle continues from the
first's model (``train.restart_from_pretrained: false``). The run is conftest's ``lora_run``."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.console import assert_console


pytestmark = pytest.mark.slow


def read_events(folder) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in a TensorBoard event folder (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            scalars += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return scalars


def test_a_run_s_console_logs_and_tracking(lora_run, small_kit):
    out, proc = lora_run
    # the console: stage lines, progress lines and the table; nothing from Ray, the libraries or warnings
    console = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(console) <= 40, "\n".join(console)
    assert_console(proc.stdout + proc.stderr)
    for noise in ("WARNING", "Warning", "Traceback", "(GeneratorActor", "RayTrainWorker", "Loading weights", "INFO"):
        assert noise not in proc.stdout + proc.stderr, noise
    assert console[-1].lstrip().startswith("2 ") and "cycle_2/train: " in proc.stdout
    assert (out / "logs" / "vstar.log").stat().st_size > 0 and (out / "logs" / "ray").is_dir()

    # cycle 2 continued from cycle 1's model (train.restart_from_pretrained: false)
    metrics = json.loads((out / "metrics.json").read_text())
    first, second = metrics["cycles"]
    assert first["train"]["base_model"] == str(small_kit / "seed")
    assert second["train"]["base_model"] == str(out / "cycle_1" / "checkpoint")

    # TensorBoard: every optimizer step of both finetunes on one axis, and the per-cycle scalars
    steps = sum(c["train"]["steps"] for c in metrics["cycles"])
    scalars = read_events(out / "tensorboard")
    losses = sorted(step for tag, step, _ in scalars if tag == "train/loss")
    assert losses == list(range(steps)) and any(tag == "train/lr" for tag, _, _ in scalars)
    accuracy = {step: value for tag, step, value in scalars if tag == "eval/accuracy"}
    assert accuracy == pytest.approx({0: metrics["baseline"]["eval_accuracy"],
                                      **{c["cycle"]: c["eval_accuracy"] for c in metrics["cycles"]}})
    tags = {tag for tag, _, _ in scalars}
    assert {"generate/yield", "generate/kept_direct", "time/train_s", "eval/accuracy/temporal_range"} <= tags

    # MLflow (sqlite in the run folder) and W&B (offline) got the same run
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run_id = (out / ".mlflow_run_id").read_text().strip()
    history = client.get_metric_history(run_id, "eval/accuracy")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert len(client.get_metric_history(run_id, "train/loss")) == steps
    assert client.get_run(run_id).data.params["train.lr"] == "0.005"
    (records,) = (out / "wandb").glob("offline-run-*/run-*.wandb")  # wandb's own record log (protobuf)
    data = records.read_bytes()
    assert b"eval/accuracy" in data and b"train/loss" in data and b"generate/yield" in data


def test_messages_ray_s_cluster_sends_the_driver_go_to_the_log_file(tmp_path):
    """Ray's driver prints the raylet's messages (``WARNING: N PYTHON worker processes have been started``, ``Task
    ... failed``) whatever ``log_to_driver`` says; vstar's console routes them to OUT/logs/vstar.log."""
    helper = Path(__file__).parent / "helpers" / "ray_message.py"
    proc = subprocess.run([sys.executable, str(helper), str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_ADDRESS": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "published" and "PYTHON worker" not in proc.stderr, proc.stdout + proc.stderr
    assert "(raylet) WARNING: 9 PYTHON worker processes" in (tmp_path / "logs" / "vstar.log").read_text()
