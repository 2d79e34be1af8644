"""``vstar prepare --source kinetics700`` at Kinetics scale (run by hand; prints figures).

    python benchmarks/prepare_kinetics.py [--rows 650000] [--work /tmp/k700-bench]

Writes a synthetic Kinetics-700 CSV (real class names from the K700 label map, ``--missing`` of the
clips absent, a few bad rows) and a matching tree of empty clip files under per-label folders, then
times ``prepare`` (folder scan + CSV streaming + parquet) and reports rows/s and peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import string
import time
from pathlib import Path

from vstar_ray.prepare import prepare

LABEL_MAP = Path(__file__).resolve().parents[2] / "shared/realdata/annotations/kinetics/label_map_k700__mmaction2.txt"


def build(work: Path, rows: int, missing: float, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    classes = LABEL_MAP.read_text().splitlines() if LABEL_MAP.exists() else [f"class {i}" for i in range(700)]
    videos = work / "videos"
    for c in classes:
        (videos / c).mkdir(parents=True, exist_ok=True)
    alphabet = string.ascii_letters + string.digits + "-_"
    csv = work / "k700_train.csv"
    with open(csv, "w") as f:
        f.write("label,youtube_id,time_start,time_end,split\n")
        for i in range(rows):
            label = classes[i % len(classes)]
            yid = "".join(rng.choice(alphabet) for _ in range(11))
            start = rng.randrange(0, 300)
            end = start + 10 if i % 10_000 else start  # a few bad windows
            f.write(f'"{label}",{yid},{start},{end},train\n')
            if rng.random() >= missing and end > start:
                (videos / label / f"{yid}_{start:06d}_{end:06d}.mp4").touch()
    return csv, videos


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=650_000)
    parser.add_argument("--missing", type=float, default=0.05)
    parser.add_argument("--work", default="/tmp/k700-bench")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    csv, videos = build(work, args.rows, args.missing)
    t1 = time.perf_counter()
    report = prepare("kinetics700", csv, videos, work / "train.parquet", classes=str(LABEL_MAP) if LABEL_MAP.exists() else None)
    t2 = time.perf_counter()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"built {args.rows} CSV rows + clip tree in {t1 - t0:.1f} s")
    print(f"prepare: {report['rows']} rows written, {report['skipped']} skipped {report['skipped_by_reason']}")
    print(f"prepare: {t2 - t1:.1f} s, {args.rows / (t2 - t1):,.0f} rows/s, peak RSS {rss_mb:.0f} MB")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
