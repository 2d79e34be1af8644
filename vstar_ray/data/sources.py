"""Several labeled datasets in one run, as the paper's VSTaR-1M mixes them.

``data.train_manifest`` and ``data.eval_manifest`` list sources (``config.ManifestSource``: a manifest, its video
root, a row cap and a sampling weight). A run mixes them once into ``OUT/data/{train,eval}.parquet``: every
video path made absolute against its own source's root, each row's ``source`` filled (the manifest's own
``source`` column, else its file name), weights and caps applied with the run's seed, and ids checked to be
unique across sources. One source without a cap or weight is used as it is. Every pass, ``train.json`` and
the reports then carry the ``source`` of each row, and count yield, kept and rejected answers per source.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from vstar_ray.config import ManifestSource
from vstar_ray.io import atomic_write_parquet
from vstar_ray.data.manifest import SCHEMA, ManifestError, is_uri, resolve_video, video_root_for
from vstar_ray.verify import RecordError


def _as_is(sources: list[ManifestSource]) -> bool:
    return len(sources) == 1 and not sources[0].max_rows and sources[0].weight == 1.0 and not sources[0].video_root


def sampled(weight: float, rows: int) -> int:
    """How many of a source's ``rows`` its ``weight`` keeps (before its cap)."""
    return round(weight * rows) if weight < 1.0 else rows


def check_source(source: ManifestSource, rows: int, key: str) -> None:
    """A source that would add no rows, or whose ``video_root`` is not a folder, is refused naming ``key``
    (``data.train_manifest[1]``): otherwise a run would go on with one source silently empty or failed."""
    if sampled(source.weight, rows) == 0:
        raise ManifestError(f"{key}.weight={source.weight:g} samples none of the {rows} rows of {source.manifest} "
                            f"(it keeps round(weight x rows)); give it a weight of at least {0.51 / rows:.2g}")
    root = source.video_root
    if root and not is_uri(root) and not Path(root).expanduser().is_dir():
        raise ManifestError(f"{key}.video_root {root!r} is not a folder")


def _rows(source: ManifestSource, index: int, default_root: str, seed: int) -> pa.Table:
    manifest = source.manifest if is_uri(source.manifest) else str(Path(source.manifest).expanduser())
    table = pq.read_table(manifest)
    keep = list(range(table.num_rows))
    if source.weight < 1.0:
        keep = sorted(random.Random(f"{seed}:{index}:{manifest}").sample(keep, sampled(source.weight, len(keep))))
    if source.max_rows:
        keep = keep[:source.max_rows]
    table = table.take(pa.array(keep, pa.int64()))
    root = source.video_root or video_root_for(manifest, default_root)
    videos = []
    for rid, video in zip(table["id"].to_pylist(), table["video"].to_pylist()):
        try:
            videos.append(resolve_video(video, os.path.expanduser(root)))
        except RecordError as e:
            raise ManifestError(f"manifest {manifest}: row {rid!r}: {e}") from e
    name = Path(manifest.rstrip("/")).stem
    given = table["source"].to_pylist() if "source" in table.column_names else [None] * table.num_rows
    columns = {c: table[c] if c in table.column_names else pa.nulls(table.num_rows, SCHEMA.field(c).type)
               for c in SCHEMA.names}
    columns["video"] = pa.array(videos, pa.string())
    columns["source"] = pa.array([s or name for s in given], pa.string())
    return pa.table(columns, schema=SCHEMA)


def mix(sources: list[ManifestSource], out: Path, default_root: str, seed: int) -> str:
    """The manifest a run reads for ``sources``: the one source as it is, or the mix written to ``out``."""
    if not sources:
        raise ManifestError("no manifest given")
    if _as_is(sources):
        return sources[0].manifest
    tables, first_seen, named = [], {}, {}
    for i, source in enumerate(sources):
        table = _rows(source, i, default_root, seed)
        # two sources that carry the same source name stay apart in every per-source count: the later is NAME[i]
        names = [name if named.setdefault(name, i) == i else f"{name}[{i}]" for name in table["source"].to_pylist()]
        table = table.set_column(table.schema.get_field_index("source"), "source", pa.array(names, pa.string()))
        for rid in table["id"].to_pylist():
            if rid in first_seen:
                raise ManifestError(f"id {rid!r} is in both {first_seen[rid]} and {source.manifest}: ids must be "
                                    f"unique across a run's sources (vstar prepare writes ids from the dataset's "
                                    f"own keys; prefix one source's ids)")
            first_seen[rid] = source.manifest
        tables.append(table)
    atomic_write_parquet(pa.concat_tables(tables), out)
    return str(out)
