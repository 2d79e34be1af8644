"""Build (once, cached) the demo kit: labeled mp4 videos, train/held-out manifests and the seed model.

Layout of a kit folder::

    videos/train/*.mp4  videos/heldout/*.mp4
    train.parquet  heldout.parquet     manifests (docs/architecture.md, "Contracts")
    thresholds.yaml                    the verifier thresholds of this benchmark (``videos.THRESHOLDS``)
    seed/                              HF-format tiny Qwen2-VL + processor
    kit.json                           version and what was built (written last)
"""

from __future__ import annotations

import fcntl
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from vstar_ray.demo import seed as seed_model
from vstar_ray.demo import tasks
from vstar_ray.demo.videos import THRESHOLDS, make_clips, render, sampled_frames, write_mp4
from vstar_ray.io import atomic_dir, atomic_write_json
from vstar_ray.data.manifest import write_manifest

# 2: discs (colour, size, when) instead of shapes moving; the seed pretrains on its own pool
# 3: three label types (class, temporal_range, float), a disc in the middle instead of throughout, thresholds.yaml
# 4: the seed speaks its own words (big/little, first half/centre/second half) and meets the labels' only in hints
KIT_VERSION = 4


@dataclass(frozen=True)
class KitSpec:
    n_train: int = 192
    n_heldout: int = 96  # 32 per label type
    num_frames: int = 8
    frame_size: int = 56
    seed_pool: int = 1024  # clips rendered in memory for the seed's pretraining (not the train videos)
    seed_caption_steps: int = 600  # first captions only: the seed learns to perceive colour, size and time
    seed_steps: int = 600  # then captions, answers in its own words and hint-following
    seed_batch_size: int = 16
    seed_lr: float = 1e-3
    seed_qa_fraction: float = 0.5
    seed: int = 0
    version: int = KIT_VERSION


def kit_ready(path: Path, spec: KitSpec) -> bool:
    marker = path / "kit.json"
    return marker.exists() and json.loads(marker.read_text()).get("spec") == asdict(spec)


def ensure_kit(path: str | Path, spec: KitSpec = KitSpec(), log=print) -> Path:
    """Build the kit at ``path`` unless an identical one is there; safe against concurrent builders."""
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if kit_ready(path, spec):
            return path
        with atomic_dir(path) as tmp:
            build_kit(tmp, spec, log)
    return path


def build_kit(out: Path, spec: KitSpec, log=print) -> None:
    start = time.time()
    log(f"[demo] building the demo kit in {out.name} (videos, manifests, seed model) ...")
    for split, n, offset in (("train", spec.n_train, 0), ("heldout", spec.n_heldout, 10_000)):
        (out / "videos" / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for i, clip in enumerate(make_clips(n, spec.seed + offset)):
            rid = f"demo-{split}-{i:05d}"
            task = tasks.TASKS[i % len(tasks.TASKS)]
            labels, verifiers = tasks.labels(clip, task)
            rel = f"videos/{split}/{rid}.mp4"
            write_mp4(render(clip, random.Random(spec.seed * 1_000_003 + offset + i)), out / rel)
            rows.append({
                "id": rid,
                "video": rel,
                "source": "demo",
                "split": split,
                "labels": labels,
                "verifiers": verifiers,
                "question": tasks.question(rid, task, spec.seed),
            })
        write_manifest(rows, out / f"{split}.parquet")
    (out / "thresholds.yaml").write_text(yaml.safe_dump(THRESHOLDS))
    log(f"[demo] wrote {spec.n_train} train and {spec.n_heldout} held-out videos ({time.time() - start:.0f}s)")

    tokenizer = seed_model.build_tokenizer()
    processor = seed_model.build_processor(tokenizer, spec.frame_size)
    model = seed_model.build_model(tokenizer, spec.seed)
    pool = make_clips(spec.seed_pool, spec.seed + 20_000)
    frames = [sampled_frames(c, random.Random(spec.seed * 1_000_003 + 20_000 + i), spec.num_frames, spec.frame_size)
              for i, c in enumerate(pool)]
    examples = seed_model.pretraining_examples(pool, frames, spec.seed_qa_fraction, spec.seed)
    captions = [e for e in examples if e[1] == seed_model.CAPTION_PROMPT]
    losses = []
    for data, steps in ((captions, spec.seed_caption_steps), (examples, spec.seed_steps)):
        losses += seed_model.pretrain(model, processor, data, steps, spec.seed_batch_size, spec.seed_lr, spec.seed)
    seed_model.save(model, processor, out / "seed")
    log(f"[demo] seed model pretrained {spec.seed_caption_steps} caption + {spec.seed_steps} mixed steps on "
        f"{spec.seed_pool} clips, loss {losses[0]:.2f} -> {losses[-1]:.2f} ({time.time() - start:.0f}s)")
    atomic_write_json(out / "kit.json", {"spec": asdict(spec), "seconds": round(time.time() - start, 1)})


def write_kept_pass(kit: Path, out: Path) -> Path:
    """A generated-pass folder in which every training row of ``kit`` is kept with a reasoning answer that
    verifies (tests and benchmarks of training, without a generation pass)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = pq.read_table(kit / "train.parquet").to_pylist()
    rng = random.Random(0)
    for row in rows:
        row["kept_from"], row["kept_answer"] = "direct", tasks.answer_for(json.loads(row["labels"]), rng)
        row["answer"], row["error"] = row["kept_answer"], ""  # a generation pass's columns
    out.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), out / "part-0.parquet")
    return out
