"""The ``vstar verify`` record contract (docs/architecture.md, "Contracts"), through the real command line."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vstar_ray.cli import main

RECORDS = [
    {"id": "ok", "question": "What happens?", "output": "A red circle is moving left.",
     "labels": {"action": "red circle moving left"}, "verifiers": {"action": "class"}},
    {"id": "wrong", "question": "Score?", "output": "I think 12.", "labels": {"score": 80.5},
     "verifiers": {"score": "float"}},
    {"id": "seq", "question": "Steps?", "output": "He takes off forward, then tucks into a pike, then enters the water.",
     "labels": {"steps": ["forward", "pike", "entry into the water"]}, "verifiers": {"steps": "sentence_sequence"}},
    {"id": "box3", "question": "Where?", "output": "[0.1, 0.2, 0.3, 0.4]", "labels": {"b": [0.1, 0.2, 0.3]},
     "verifiers": {"b": "bbox"}},
    {"id": "nokind", "question": "?", "output": "x", "labels": {"a": "cat"}, "verifiers": {"a": "colour"}},
    {"id": "nooutput", "question": "?", "labels": {"a": "cat"}, "verifiers": {"a": "class"}},
    {"id": "zero", "question": "?", "output": "", "labels": {"n": 0}, "verifiers": {"n": "float"}},
]


def vstar(*args):
    """``vstar`` in this process (``cli.main``: the parser and exit codes of the command), so that the sentence
    model loads once for the module; the first test runs the installed command in a process of its own."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture
def records_file(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in RECORDS]
    lines.insert(4, "{not json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_record_stops_with_its_id_and_writes_nothing(records_file, tmp_path):
    out = tmp_path / "out.jsonl"
    res = subprocess.run([str(Path(sys.executable).parent / "vstar"), "verify", "--in", str(records_file), "--out",
                          str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "line 4: record 'box3'" in res.stderr and "bbox label" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))


def test_skip_invalid_keeps_every_other_record(records_file, tmp_path):
    out = tmp_path / "out.jsonl"
    res = vstar("verify", "--in", str(records_file), "--out", str(out), "--skip-invalid", "--batch-size", "3")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(RECORDS) + 1
    by_id = {r.get("id"): r for r in rows}
    assert by_id["ok"]["verified"] is True and by_id["ok"]["verdicts"] == {"action": True}
    assert by_id["ok"]["extracted"] == {"action": "red circle moving left"} and by_id["ok"]["question"] == "What happens?"
    assert by_id["wrong"]["verified"] is False and by_id["wrong"]["extracted"] == {"score": 12.0}
    assert by_id["seq"]["verified"] is True
    assert by_id["zero"]["verified"] is False and by_id["zero"]["extracted"] == {"n": None}
    assert "bbox label" in by_id["box3"]["error"] and "verified" not in by_id["box3"]
    assert "unknown verifier type 'colour'" in by_id["nokind"]["error"]
    assert "missing field 'output'" in by_id["nooutput"]["error"]
    assert "not valid JSON" in rows[4]["error"]
    assert "4 invalid" in res.stdout and "line 5" in res.stderr


def test_thresholds_file_changes_the_verdict(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "f", "question": "?", "output": "final score: 85", "labels": {"s": 80.0},
                               "verifiers": {"s": "float"}}) + "\n")
    loose = tmp_path / "t.yaml"
    loose.write_text("float: {rel_tol: 0.1}\n")
    for thresholds, expected in ((None, False), (loose, True)):
        out = tmp_path / "out.jsonl"
        res = vstar("verify", "--in", str(src), "--out", str(out), *(["--thresholds", str(thresholds)] if thresholds else []))
        assert res.returncode == 0, res.stderr
        assert json.loads(out.read_text())["verified"] is expected
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: {x: 1}\n")
    res = vstar("verify", "--in", str(src), "--out", str(tmp_path / "o.jsonl"), "--thresholds", str(bad))
    assert res.returncode == 2 and "unknown verifier type 'nope'" in res.stderr


def test_a_line_that_is_not_utf8_is_named_and_only_it_is_skipped(tmp_path):
    good = [json.dumps(RECORDS[0]), json.dumps({**RECORDS[1], "id": "ok"})]  # the same id twice, on lines 1 and 3
    src = tmp_path / "in.jsonl"
    src.write_bytes(good[0].encode() + b"\n" + b'{"id": "latin", "output": "caf\xe9"}\n' + good[1].encode() + b"\n")
    res = vstar("verify", "--in", str(src), "--out", str(tmp_path / "o.jsonl"))
    assert res.returncode == 2 and f"{src} line 2: not UTF-8 text" in res.stderr
    res = vstar("verify", "--in", str(src), "--out", str(tmp_path / "o.jsonl"), "--skip-invalid")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r.get("verified") for r in rows] == [True, None, False] and "not UTF-8" in rows[1]["error"]
    assert f"skipped: {src} line 2: not UTF-8 text" in res.stderr
    bad_second = tmp_path / "dup.jsonl"  # the error names the line of the bad record, not of its id's first use
    bad_second.write_text(good[0] + "\n" + json.dumps({**RECORDS[3], "id": "ok"}) + "\n")
    res = vstar("verify", "--in", str(bad_second), "--out", str(tmp_path / "o2.jsonl"))
    assert res.returncode == 2 and f"{bad_second} line 2: record 'ok'" in res.stderr


def test_a_runaway_answer_of_ten_megabytes_is_verified(tmp_path):
    """The sentence splitter is linear and matches the first segments only (it once took tens of minutes)."""
    answer = "The diver leaves the board, and then he tucks. " * 210_000
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps({"id": "big", "question": "?", "output": answer, "labels": {"s": "the diver tucks"},
                               "verifiers": {"s": "sentence"}}) + "\n")
    res = vstar("verify", "--in", str(src), "--out", str(tmp_path / "o.jsonl"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "o.jsonl").read_text())["verified"] is True
