"""Verifier plug-ins (``verify.plugins``): a custom label type verified inside a real pass, in Ray workers."""

import dataclasses
import json

import pyarrow.parquet as pq
import pytest

from tests.helpers.runs import small_run_overrides
from vstar_ray.config import load_config
from vstar_ray.data.manifest import write_manifest
from vstar_ray.verify import PluginError, RecordError, load_plugins, plugin_error_kind, verify_records

PLUGIN = "tests/plugins/colour_verifier.py"  # the example of docs/verifiers.md
FLAKY = "tests/plugins/flaky_hue_verifier.py"


@pytest.fixture(autouse=True)
def builtin_types_after():
    """A plug-in's types stay registered in the process that loaded it; after each test here only the built-in
    types are left, as a later test file in this process (a pytest-xdist worker runs several) expects."""
    from vstar_ray.verify import plugins, registry

    verifiers, loaded = dict(registry.VERIFIERS), dict(plugins._LOADED)
    yield
    registry.VERIFIERS.clear()
    registry.VERIFIERS.update(verifiers)
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)


def test_a_plugin_that_cannot_be_used_is_one_clear_error(tmp_path):
    empty = tmp_path / "nothing.py"
    empty.write_text("X = 1\n")
    clash = tmp_path / "clash.py"
    clash.write_text("def verify_float(answer, label):\n    return True\n")
    twice = tmp_path / "twice.py"
    twice.write_text("def verify_colour(answer, label):\n    return True\n")
    load_plugins([PLUGIN])
    assert verify_records([{**_record(0), "verifiers": {"c": "colour"}}])[0]["verified"] is True
    for spec, match in ((str(tmp_path / "missing.py"), "is not a file"), (str(empty), "defines no verify_<type>"),
                        (str(clash), "'float' is a built-in type"), ("no_such_module_xyz", "cannot import"),
                        (str(twice), "'colour' is already defined by .*colour_verifier.py")):
        with pytest.raises(PluginError, match=match):
            load_plugins([spec])


def _plugin(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(body)
    return str(path)


def _record(i: int, label: str = "red") -> dict:
    return {"id": f"r{i}", "question": "q", "output": f"it is {label}", "labels": {"c": label},
            "verifiers": {"c": "TYPE"}}


@pytest.mark.parametrize("returned, shown", [
    ('"no"', "returned 'no' (str)"),
    ("numpy.array([True, False])", "returned array([ True, False]) (ndarray)"),
    ("(True,)", "returned (True,) (tuple)"),
    ("(True, object())", "not JSON-serialisable (object"),
    ("None", "returned None (NoneType)"),
])
def test_a_plugin_that_returns_anything_but_its_contract_is_named_with_its_line(tmp_path, returned, shown):
    """A str ``"no"`` used to count as verified; a numpy array, ``(True,)`` or an unserialisable extracted value
    gave a traceback naming nothing."""
    kind = f"ret{abs(hash(returned)) % 10**8}"
    spec = _plugin(tmp_path, kind, f"import numpy\n\n\ndef verify_{kind}(answer, label):\n    return {returned}\n")
    load_plugins([spec])
    record = {**_record(0), "verifiers": {"c": kind}}
    with pytest.raises(PluginError) as e:
        verify_records([record])
    assert f"verify_{kind} ({kind}.py:4) " in str(e.value) and shown in str(e.value), str(e.value)
    # numpy's own bool is a bool
    np_ok = _plugin(tmp_path, f"{kind}np", f"import numpy\n\n\ndef verify_{kind}np(answer, label):\n"
                                          "    return numpy.bool_(True), [1, 'a']\n")
    load_plugins([np_ok])
    assert verify_records([{**record, "verifiers": {"c": f"{kind}np"}}])[0]["verified"] is True


def test_a_plugin_that_raises_fails_its_record_only_and_exit_on_import_is_a_load_error(tmp_path, capsys):
    spec = _plugin(tmp_path, "raising", "def verify_raising(answer, label):\n"
                                        "    if label == 'yellow':\n        raise ZeroDivisionError('division by zero')\n"
                                        "    return label in answer\n")
    load_plugins([spec])
    records = [{**_record(i, label), "verifiers": {"c": "raising"}} for i, label in enumerate(["red", "yellow", "red"])]
    out = verify_records(records, skip_invalid=True)
    assert [r.get("verified") for r in out] == [True, None, True]
    assert out[1]["error"] == ("record 'r1': plug-in verify_raising (raising.py:1) raised ZeroDivisionError: "
                               "division by zero")
    with pytest.raises(RecordError, match="record 'r1': plug-in verify_raising .* ZeroDivisionError"):
        verify_records(records)
    assert plugin_error_kind(out[1]["error"]) == "verify_raising (raising.py:1): ZeroDivisionError"

    exits = _plugin(tmp_path, "exits", "import sys\nsys.exit(3)\n")
    with pytest.raises(PluginError, match=r"exits.py' failed to load: SystemExit: 3"):
        load_plugins([exits])
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    from vstar_ray.cli import main

    assert main(["verify", "--in", str(jsonl), "--plugins", exits, "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "SystemExit: 3" in capsys.readouterr().err
    assert main(["verify", "--in", str(jsonl), "--plugins", spec, "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "record 'r1': plug-in verify_raising (raising.py:1) raised ZeroDivisionError" in err[0]
    assert main(["verify", "--in", str(jsonl), "--plugins", spec, "--out", str(tmp_path / "o.jsonl"),
                 "--skip-invalid"]) == 0
    written = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [bool(r.get("error")) for r in written] == [False, True, False]


@pytest.mark.slow
def test_a_custom_label_type_is_verified_inside_a_real_pass(small_kit, tmp_path, ray_local):
    """The kit's class labels name a colour; a plug-in type checks it. Ray's verify workers load the plug-in
    themselves (a ``register()`` in this process alone came back as "unknown verifier type" on every row).
    The plug-in divides by zero on yellow: those rows fail with its name and exception, counted in the pass's
    summary, and the others are verified; ``verify.plugin_errors: fail`` stops the pass, naming a record."""
    from vstar_ray.errors import InputError, cause_inside
    from vstar_ray.generation.pipeline import run_pass
    from vstar_ray.preflight import load_verifier_plugins

    rows = pq.read_table(small_kit / "train.parquet").to_pylist()
    colours = ("red", "green", "blue", "yellow")
    for row in rows:
        words = json.loads(row["labels"])["action"].split() if "action" in json.loads(row["labels"]) else []
        colour = next((w for w in words if w in colours), "red")
        row.update(labels={"hue": colour}, verifiers={"hue": "hue"}, video=str(small_kit / row["video"]))
    yellow = {r["id"] for r in rows if r["labels"]["hue"] == "yellow"}
    assert 0 < len(yellow) < len(rows)
    write_manifest(rows, tmp_path / "colours.parquet")
    cfg = load_config("configs/demo.yaml", small_run_overrides(small_kit) + [f"verify.plugins=[{FLAKY}]",
                                                                            "generate.max_new_tokens=32"])
    load_verifier_plugins(cfg)
    summary = run_pass(cfg, str(tmp_path / "colours.parquet"), cfg.model.path, tmp_path / "generated", "train")
    out = pq.read_table(tmp_path / "generated").to_pylist()
    assert summary.videos == len(rows) and {r["id"] for r in out if r["error"]} == yellow
    assert all("plug-in verify_hue (flaky_hue_verifier.py:6) raised ZeroDivisionError" in r["error"]
               for r in out if r["error"])
    assert summary.plugin_errors == {"verify_hue (flaky_hue_verifier.py:6): ZeroDivisionError": len(yellow)}
    assert summary.failed_videos == len(yellow) and "rows failed in plug-in verify_hue" in summary.line("train")
    assert all(json.loads(r["direct_extracted"]).keys() == {"hue"} for r in out if not r["error"])
    assert summary.kept_direct + summary.kept_rationalized > 0

    strict = dataclasses.replace(cfg, verify=dataclasses.replace(cfg.verify, plugin_errors="fail"))
    with pytest.raises(Exception) as e:
        run_pass(strict, str(tmp_path / "colours.parquet"), cfg.model.path, tmp_path / "strict", "train")
    named = cause_inside(e.value, (InputError,))
    assert named is not None and "verify.plugin_errors is fail: record '" in str(named), repr(e.value)
    assert "verify_hue (flaky_hue_verifier.py:6) raised ZeroDivisionError" in str(named)
