"""A pass's committed shards (``stages.commit_batch``), as ``--resume`` finds them: each is read in full and its
page checksums verified; a damaged or truncated one is named and dropped, and only its rows are made again (a real
kill and resume with a damaged shard: tests/test_passes.py)."""

import numpy as np
import pyarrow.parquet as pq

from tests.helpers.processes import damage_column
from vstar_ray.generation.pipeline import committed_ids
from vstar_ray.generation.stages import commit_batch


def commit(folder, batch: int, n: int = 5) -> None:
    commit_batch({"id": np.array([f"r{batch}-{i}" for i in range(n)], dtype=object),
                  "answer": np.array([f"answer number {i} " * 20 for i in range(n)], dtype=object),
                  "error": np.array([""] * n, dtype=object)}, str(folder))


def test_a_damaged_or_truncated_shard_is_named_and_only_its_rows_are_dropped(tmp_path, capsys):
    """Once: a shard damaged in the middle passed the check (its id column still read), the pass was promoted and
    then died on ``Couldn't deserialize thrift``; a truncated shard was deleted without a word."""
    for b in range(3):
        commit(tmp_path, b)
    by_first_id = {pq.read_table(s)["id"][0].as_py(): s for s in tmp_path.glob("part-*.parquet")}
    damaged, truncated = by_first_id["r0-0"], by_first_id["r1-0"]
    damage_column(damaged, "answer")
    assert pq.read_table(damaged, columns=["id"]).num_rows == 5  # what the old check read
    truncated.write_bytes(truncated.read_bytes()[:300])
    ids, dropped = committed_ids(tmp_path, "cycle_1/generate")
    assert ids == {f"r2-{i}" for i in range(5)} and dropped == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [by_first_id["r2-0"].name]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("cycle_1/generate: committed shard" in line for line in lines)
    assert any(f"{damaged} is unreadable (could not verify page integrity" in line for line in lines)
    assert any(f"{truncated} is unreadable" in line for line in lines)
