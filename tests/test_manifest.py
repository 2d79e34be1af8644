"""A manifest is checked before any work: a bad row, a duplicate id or a missing column is named."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vstar_ray.data.manifest import ManifestError, validate_manifest, write_manifest


def test_manifest_errors_name_the_row(tmp_path):
    ok = {"id": "a", "video": "a.mp4", "labels": {"x": "cat"}, "verifiers": {"x": "class"}}
    write_manifest([ok, {**ok, "id": "b", "labels": {"x": [0, 1, 2]}, "verifiers": {"x": "bbox"}}], tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="row 'b'.*bbox label"):
        validate_manifest(tmp_path / "m.parquet")
    write_manifest([ok, ok], tmp_path / "dup.parquet")
    with pytest.raises(ManifestError, match="duplicate id 'a'"):
        validate_manifest(tmp_path / "dup.parquet")
    pq.write_table(pa.table({"id": ["a"], "video": ["a.mp4"]}), tmp_path / "cols.parquet")
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['labels', 'verifiers'\]"):
        validate_manifest(tmp_path / "cols.parquet")
