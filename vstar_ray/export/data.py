"""``vstar export data``: the instruction data a run generated, as a dataset release (as VSTaR-1M is).

One row per kept answer of the chosen cycles, in parquet shards under ``OUT/data/`` that
``datasets.load_dataset("parquet", data_dir=OUT)`` loads: the video reference (relative to the videos' common
folder, or a URI; ``start``/``end`` for clip windows), the question, the answer, whether it was rationalized,
the labels and their verifier types, the source dataset and the cycle. ``OUT/__llava/train.json`` holds the same
rows as LLaVA conversations; ``OUT/README.md`` is the dataset card. Videos are referenced, not copied, unless
``copy_videos`` (then under ``OUT/__videos/``: ``load_dataset`` reads every file of a folder but ``__`` ones).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vstar_ray.data.manifest import is_uri, resolve_video, video_root_for
from vstar_ray.errors import InputError
from vstar_ray.export.cards import dataset_card
from vstar_ray.export.run_folder import Run
from vstar_ray.io import atomic_dir, atomic_write_text

KEPT = ("direct", "rationalized", "label")
SCHEMA = pa.schema([("id", pa.string()), ("cycle", pa.int64()), ("video", pa.string()), ("start", pa.float64()),
                    ("end", pa.float64()), ("question", pa.string()), ("answer", pa.string()),
                    ("rationalized", pa.bool_()), ("kept_from", pa.string()), ("labels", pa.string()),
                    ("verifiers", pa.string()), ("label_types", pa.list_(pa.string())), ("source", pa.string())])


def _manifest(run: Run) -> str:
    """The manifest the run generated from (its mix of sources, or its one manifest)."""
    mixed = run.folder / "data" / "train.parquet"
    if mixed.exists():
        return str(mixed)
    sources = run.config.get("data", {}).get("train_manifest") or []
    if not sources:
        raise InputError(f"{run.folder}/config.yaml names no data.train_manifest")
    return sources[0]["manifest"]


def kept_rows(run: Run, k: int, video_root: str) -> list[dict]:
    folder = run.folder / f"cycle_{k}" / "generated"
    if not folder.is_dir():
        raise InputError(f"{folder} is missing: cycle {k} has no generated data")
    rows = []
    for r in pq.read_table(folder).to_pylist():
        if r.get("kept_from") not in KEPT:
            continue
        video = r["video"] if is_uri(r["video"]) else resolve_video(r["video"], video_root)
        rows.append({"id": r["id"], "cycle": k, "video": video, "start": _window(r.get("start")),
                     "end": _window(r.get("end")), "question": r.get("question") or "", "answer": r["kept_answer"],
                     "rationalized": r["kept_from"] == "rationalized", "kept_from": r["kept_from"],
                     "labels": r["labels"], "verifiers": r["verifiers"],
                     "label_types": sorted(set(json.loads(r["verifiers"]).values())), "source": r.get("source") or ""})
    return rows


def _window(value) -> float | None:
    return None if value is None or value != value else float(value)


def _place_videos(rows: list[dict], out: Path, copy: bool) -> str:
    """Video references relative to the videos' common folder (returned), or copies under ``out/videos``."""
    local = sorted({r["video"] for r in rows if not is_uri(r["video"])})
    if copy:
        names = {}
        for path in local:
            digest = hashlib.sha1(path.encode()).hexdigest()[:8]
            names[path] = f"__videos/{digest}_{os.path.basename(path.rstrip('/'))}"  # a folder load_dataset skips
            (out / names[path]).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if os.path.isdir(path) else shutil.copy)(path, out / names[path])
        for r in rows:
            r["video"] = names.get(r["video"], r["video"])
        return "__videos/ (copied)"
    root = os.path.commonpath(local) if local else ""
    root = root if not local or not os.path.isfile(root) else os.path.dirname(root)
    for r in rows:
        if not is_uri(r["video"]):
            r["video"] = os.path.relpath(r["video"], root)
    return root


def export_data(run_dir: str | Path, out: str | Path, cycles: list[int] | None = None,
                copy_videos: bool = False) -> dict:
    out = Path(out)
    if out.exists():
        raise InputError(f"--out {out} exists: choose a new folder")
    run = Run.open(run_dir)
    done = [c.cycle for c in run.record.cycles]
    cycles = cycles or done
    unknown = [k for k in cycles if k not in done]
    if unknown:
        raise InputError(f"--cycles {unknown}: {run.folder} has cycles {', '.join(map(str, done))}")
    manifest = _manifest(run)
    video_root = video_root_for(manifest, run.config.get("data", {}).get("video_root", ""))
    per_cycle = {k: kept_rows(run, k, video_root) for k in cycles}
    with atomic_dir(out) as tmp:
        root = _place_videos([r for rows in per_cycle.values() for r in rows], tmp, copy_videos)
        for k, rows in per_cycle.items():
            (tmp / "data").mkdir(exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp / "data" / f"cycle_{k}.parquet")
        llava = [{"id": f"{r['id']}@{r['cycle']}", "video": r["video"],
                  **({"start": r["start"], "end": r["end"]} if r["start"] is not None or r["end"] is not None else {}),
                  "conversations": [{"from": "human", "value": "<video>\n" + r["question"]},
                                    {"from": "gpt", "value": r["answer"]}], "kept_from": r["kept_from"],
                  "source": r["source"], "cycle": r["cycle"]} for rows in per_cycle.values() for r in rows]
        # in a folder load_dataset skips (it reads every file of data_dir, whatever its format, but "__" folders)
        atomic_write_text(tmp / "__llava" / "train.json", json.dumps(llava, indent=1, ensure_ascii=False) + "\n")
        atomic_write_text(tmp / "README.md", dataset_card(run, per_cycle, root))
    return {"rows": {k: len(v) for k, v in per_cycle.items()}, "video_root": root, "out": str(out)}
