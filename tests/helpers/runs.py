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
