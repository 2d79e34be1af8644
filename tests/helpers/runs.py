"""Config overrides for a small real run on the test demo kit."""

from pathlib import Path


def small_run_overrides(kit: Path) -> list[str]:
    return [
        f"data.train_manifest={kit}/train.parquet",
        f"data.eval_manifest={kit}/heldout.parquet",
        f"model.path={kit}/seed",
        f"verify.thresholds={kit}/thresholds.yaml",
        "demo_kit=",
        "cycles=1",
        "generate.max_new_tokens=64",
        "train.epochs=1",
        "train.batch_size=4",
    ]


def kit_subset(kit: Path, split: str, n: int, out: Path) -> Path:
    """The first ``n`` rows of the kit's ``split`` ("train" or "heldout"; absolute video paths), for runs whose size
    is not what a test checks: a pass, a finetune or an eval of fewer videos (the kit's label types alternate, so
    a few rows have every type)."""
    import pyarrow.parquet as pq

    from vstar_ray.data.manifest import write_manifest

    rows = pq.read_table(kit / f"{split}.parquet").to_pylist()[:n]
    write_manifest([{**row, "video": str(kit / row["video"])} for row in rows], out)
    return out
