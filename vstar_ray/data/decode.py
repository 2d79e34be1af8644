"""Manifest rows as a Ray Dataset, and the decode stage over them: the one place where clips become frames for
every consumer (a generation pass, training, held-out evaluation)."""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import ray

from vstar_ray.config import Config
from vstar_ray.data.decode_worker import decode_with_timeout
from vstar_ray.data.frame_cache import CorruptEntry, entry_key, open_cache
from vstar_ray.data.manifest import resolve_video
from vstar_ray.data.video import DecodeError
from vstar_ray.verify import RecordError

VIDEO_COLUMNS = ("frames", "fps", "frame_index", "clip_frames")  # what decode_batch adds; dropped before writing
# also added, and kept in a pass's rows: where the frames came from ("file": decoded; "cache": data.frame_cache;
# "" when the clip failed), and whether a cache entry was found damaged and decoded again
SOURCE_COLUMNS = ("frames_from", "cache_damaged")
ROWS_PER_DECODE_TASK_BATCHES = 4  # decode batches per input block (one decode task each)


def node_id() -> str:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"


def read_manifest(cfg: Config, path: str, columns: list[str] | None = None) -> ray.data.Dataset:
    """Parquet rows as a Dataset: read here with pyarrow and handed to Ray Data in blocks of a few decode
    batches (one decode task each, so clips decode in parallel and blocks do not grow with the manifest).

    No Ray task reads, samples or inspects the rows before the pass runs: Ray 2.60's parquet datasource (and
    ``from_arrow``) run such tasks asking for a whole CPU, and on a cluster of 1-CPU nodes whose generator
    actors hold a share of each CPU for the whole run they never ran (tests/test_job_submit.py).
    ``from_blocks`` takes the blocks' metadata here."""
    # a map function's own exception (a verifier plug-in's PluginError, a full disk's OSError) reaches the driver as
    # the cause of Ray's error, not as the text of a UserCodeException (whose cause does not survive pickling)
    ray.data.DataContext.get_current().raise_original_map_exception = True
    if columns is not None:
        present = set(pq.ParquetDataset(path).schema.names)
        columns = [c for c in columns if c in present]
    table = pq.read_table(path, columns=columns)
    step = ROWS_PER_DECODE_TASK_BATCHES * cfg.data.decode_batch_size
    return ray.data.from_blocks([table.slice(i, step) for i in range(0, max(1, table.num_rows), step)])


def decode_batch(
    batch: dict[str, np.ndarray], video_root: str, num_frames: int, size: int, timeout_s: float = 0.0,
    folder_fps: float = 0.0, frame_cache: str = "", frame_cache_format: str = "lz4",
) -> dict[str, np.ndarray]:
    """Adds ``frames`` (B, T, size, size, 3), their timing (``fps``, ``frame_index`` (B, T) within the clip,
    ``clip_frames``), ``error`` ('' when decoded) and ``SOURCE_COLUMNS``. A bad file never raises; with
    ``timeout_s`` > 0 a clip is decoded in a child process that is killed when it takes longer. With
    ``frame_cache`` (a folder or URI) a clip is read from there when an entry verifies, else decoded, stored, and
    used as the entry holds it; a cache that cannot be written (a full disk) fails the task, naming the file."""
    start = time.perf_counter()
    n = len(batch["id"])
    frames = np.zeros((n, num_frames, size, size, 3), dtype=np.uint8)
    fps = np.zeros(n, dtype=np.float64)
    frame_index = np.zeros((n, num_frames), dtype=np.int64)
    clip_frames = np.zeros(n, dtype=np.int64)
    errors = [""] * n
    frames_from = [""] * n
    damaged = np.zeros(n, dtype=bool)
    cache = open_cache(frame_cache, frame_cache_format) if frame_cache else None
    starts = batch.get("start", np.full(n, np.nan))
    ends = batch.get("end", np.full(n, np.nan))
    for i in range(n):
        key = ""
        try:
            path = resolve_video(str(batch["video"][i]), video_root)
            clip_start = None if starts[i] is None or np.isnan(starts[i]) else float(starts[i])
            clip_end = None if ends[i] is None or np.isnan(ends[i]) else float(ends[i])
            key = entry_key(path, clip_start, clip_end, num_frames, size, folder_fps, cache.fmt) if cache else ""
        except (RecordError, OSError) as e:  # a path outside the root, a missing file
            errors[i] = f"decode failed: {e}"
            continue
        clip = None
        if cache:
            try:
                clip = cache.get(key)
            except CorruptEntry:
                damaged[i] = True
        if clip is not None:
            frames_from[i] = "cache"
        else:
            try:
                clip = decode_with_timeout(path, num_frames, size, clip_start, clip_end, timeout_s, folder_fps)
            except (DecodeError, RecordError, OSError) as e:
                errors[i] = f"decode failed: {e}"
                continue
            frames_from[i] = "file"
            if cache:
                clip = cache.put(key, clip)  # the frames as every later reader gets them
        frames[i], fps[i], frame_index[i], clip_frames[i] = clip.frames, clip.fps, clip.frame_indices, clip.clip_frames
    batch["frames"] = frames
    batch["frames_from"] = np.array(frames_from, dtype=object)
    batch["cache_damaged"] = damaged
    batch["fps"], batch["frame_index"], batch["clip_frames"] = fps, frame_index, clip_frames
    batch["error"] = np.array(errors, dtype=object)
    batch["decode_s"] = np.full(n, (time.perf_counter() - start) / max(n, 1))
    batch["decode_node"] = np.array([node_id()] * n, dtype=object)
    return batch


def decoded(cfg: Config, ds: ray.data.Dataset, video_root: str, wrap=None) -> ray.data.Dataset:
    """The decode stage: CPU tasks spread over the nodes, retried when their worker dies. ``wrap`` (a pass's
    row counter) wraps ``decode_batch``."""
    data = cfg.data
    return ds.map_batches(
        wrap(decode_batch) if wrap else decode_batch,
        fn_kwargs=dict(video_root=video_root, num_frames=data.num_frames, size=data.frame_size,
                       timeout_s=data.decode_timeout_s, folder_fps=data.frame_folder_fps,
                       frame_cache="" if data.frame_cache in ("off", "run") else data.frame_cache,
                       frame_cache_format=data.frame_cache_format),
        batch_size=data.decode_batch_size,
        num_cpus=data.decode_num_cpus,
        scheduling_strategy="SPREAD",  # decode across nodes
        max_retries=3,  # a decode task whose worker crashed runs again
    )
