"""The stages of a generation pass: the table that names them (``STAGES``, the one owner of which stages a pass
has and what each writes), and the plain functions over numpy batches that run them.

``verify_batch`` and ``finalize_batch`` run on CPUs; ``generate_batch`` hands its rows to the run's generator
actors (``pool``) and waits; ``commit_batch`` writes the finished rows as one parquet shard, so that a pass
killed half-way keeps what it committed (``pipeline``). Decoding is ``data.decode``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vstar_ray import prompts
from vstar_ray.data.decode import VIDEO_COLUMNS
from vstar_ray.io import atomic_path
from vstar_ray.verify import PluginError, PluginFailed, RecordError, load_plugins, set_embedding_model, verify_many


@dataclass(frozen=True)
class Stage:
    name: str  # what the pass watchdog and the progress file call it
    runs_on: str  # where: CPU tasks or the run's generator actors
    passes: tuple[str, ...]  # the pass modes that have it (train: only with rationalize for the rationalize stages)
    seconds: str = ""  # the per-row seconds column it writes (summed into the pass's busy_seconds)
    node: str = ""  # the column naming the node that ran each row
    call: str = ""  # the column of each row's generator call record ``[actor, start, end, generate_s]``


ALL, VERIFIED, RATIONALIZED = ("train", "eval", "raw"), ("train", "eval"), ("train",)
STAGES = (
    Stage("decode", "CPU tasks", ALL, "decode_s", "decode_node"),
    Stage("answer", "generator actors", ALL, "answer_s", "answer_node", "answer_call"),
    Stage("verify", "CPU", VERIFIED, "verify_direct_s"),
    Stage("rationalize", "generator actors", RATIONALIZED, "rationalize_s", "rationalize_node", "rationalize_call"),
    Stage("verify_rationalized", "CPU", RATIONALIZED, "verify_rationalized_s"),
    Stage("commit", "CPU", ALL),
)


def pass_stages(mode: str, rationalize: bool) -> list[Stage]:
    """The stages of a pass in ``mode`` (train, eval or raw), in order."""
    return [s for s in STAGES if mode in s.passes and (rationalize or "rationalize" not in s.name)]


def stage(name: str) -> Stage:
    return next(s for s in STAGES if s.name == name)


def verify_batch(
    batch: dict[str, np.ndarray], prefix: str, answer_column: str, seconds_column: str, thresholds: dict,
    embedding_model: str = "", plugins: tuple[str, ...] = (), plugin_errors: str = "record",
) -> dict[str, np.ndarray]:
    """Adds ``{prefix}_verified`` and ``{prefix}_verdicts``/``{prefix}_extracted`` (JSON strings).

    The whole batch goes through ``verify_many`` at once, so sentence types embed in one call. ``plugins``
    (``verify.plugins``) are loaded in this worker first, once per process. A plug-in that raises on a record
    makes that record's error (``plugin_errors: record``) or stops the pass naming it (``fail``)."""
    start = time.perf_counter()
    load_plugins(plugins)
    if embedding_model:
        set_embedding_model(embedding_model)
    n = len(batch["id"])
    verified, verdicts, extracted = np.zeros(n, dtype=bool), [""] * n, [""] * n
    errors = list(batch["error"])
    todo = [i for i in range(n) if not errors[i] and batch[answer_column][i]]
    items = [(str(batch["id"][i]), batch[answer_column][i], batch["labels"][i], batch["verifiers"][i]) for i in todo]
    for i, result in zip(todo, verify_many(items, thresholds, raise_errors=False)):
        if isinstance(result, PluginFailed) and plugin_errors == "fail":
            raise PluginError(f"verify.plugin_errors is fail: {result}")
        if isinstance(result, RecordError):
            errors[i] = f"verify failed: {result}"
            continue
        verified[i] = result["verified"]
        verdicts[i] = json.dumps(result["verdicts"])
        extracted[i] = json.dumps(result["extracted"])
    batch[f"{prefix}_verified"] = verified
    batch[f"{prefix}_verdicts"] = np.array(verdicts, dtype=object)
    batch[f"{prefix}_extracted"] = np.array(extracted, dtype=object)
    batch["error"] = np.array(errors, dtype=object)
    batch[seconds_column] = np.full(n, (time.perf_counter() - start) / max(n, 1))
    return batch


def finalize_batch(batch: dict[str, np.ndarray], rationalized: bool) -> dict[str, np.ndarray]:
    """Drops the frames and decides what is kept: the direct answer if verified, else a verified rationalization."""
    n = len(batch["id"])
    for column in VIDEO_COLUMNS:
        batch.pop(column, None)
    direct = batch["direct_verified"]
    if rationalized:
        rational = batch["rationalized_verified"]
        batch["rationalized"] = np.array([bool(a) for a in batch["rationalized_answer"]])
    else:
        rational = np.zeros(n, dtype=bool)
        batch["rationalized"] = np.zeros(n, dtype=bool)
    batch["kept"] = direct | rational
    batch["kept_from"] = np.array(
        ["direct" if d else ("rationalized" if r else "") for d, r in zip(direct, rational)], dtype=object
    )
    batch["kept_answer"] = np.array(
        [a if d else (batch["rationalized_answer"][i] if r else "") for i, (a, d, r) in
         enumerate(zip(batch["answer"], direct, rational))],
        dtype=object,
    )
    return batch


# what each generation mode writes: its answer column and its prompt column (its stage is ``STAGES``')
MODES = {"answer": ("answer", "prompt"), "eval": ("answer", "prompt"), "raw": ("answer", "prompt"),
         "rationalize": ("rationalized_answer", "rationalize_prompt")}


def _prompt(batch: dict[str, np.ndarray], i: int, mode: str, style: str) -> str:
    if mode == "rationalize":
        return prompts.rationalize_prompt(batch["question"][i], json.loads(batch["labels"][i]))
    if mode == "raw":  # benchmarks: the row carries its own prompt
        return str(batch["prompt"][i])
    return prompts.prompt_for(batch["question"][i], style)


def generate_batch(batch: dict[str, np.ndarray], generators, mode: str, style: str = "answer_prompt"
                   ) -> dict[str, np.ndarray]:
    """Answers for every decodable row (``rationalize``: only rows whose direct answer failed), from the run's
    generator actors, in calls of at most ``generate.batch_size`` prompts sent at once (``style``: the prompt of an
    answer or eval pass, ``prompts.prompt_for``) (a rationalize batch is
    several generation batches of rows, mostly verified, so its few failures still fill a call). Adds the
    answer and prompt columns, and the stage's seconds, node and call columns (``STAGES``).

    Sampling is seeded per call from the run's seed and the ids it generates for, so a batch that is retried
    or resumed samples the same answers."""
    start = time.perf_counter()
    answer_column, prompt_column = MODES[mode]
    this = stage("rationalize" if mode == "rationalize" else "answer")
    n = len(batch["id"])
    todo = [i for i in range(n) if not batch["error"][i]]
    if mode == "rationalize":
        todo = [i for i in todo if not batch["direct_verified"][i]]
    outputs, prompts_, calls, nodes = [""] * n, [""] * n, [""] * n, [""] * n
    for i in todo:
        prompts_[i] = _prompt(batch, i, mode, style)
    chunks = [todo[k:k + generators.batch_size] for k in range(0, len(todo), generators.batch_size)]
    if chunks:
        import ray

        from vstar_ray.models import video_metadata

        refs = []
        for chunk in chunks:
            key = mode + ":" + ",".join(str(batch["id"][i]) for i in chunk)
            seed = generators.seed + int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
            refs.append(generators.submit(
                [batch["frames"][i] for i in chunk], [prompts_[i] for i in chunk],
                [video_metadata(batch["fps"][i], batch["frame_index"][i], batch["clip_frames"][i]) for i in chunk],
                seed, priority=0 if mode == "rationalize" else 1))
        for chunk, result in zip(chunks, ray.get(refs)):
            call = json.dumps([result["actor"], result["start"], result["end"], result["generate_s"]])
            for i, answer in zip(chunk, result["answers"]):
                outputs[i], calls[i], nodes[i] = answer, call, result["node"]
    batch[answer_column] = np.array(outputs, dtype=object)
    batch[prompt_column] = np.array(prompts_, dtype=object)
    batch[this.seconds] = np.full(n, (time.perf_counter() - start) / max(n, 1))
    batch[this.node] = np.array(nodes, dtype=object)
    batch[this.call] = np.array(calls, dtype=object)
    generators.count(this.name, n)
    return batch


SHARD_PREFIX = "part-"


def _column(values: np.ndarray):
    import pyarrow as pa

    if values.dtype == object and all(v is None or isinstance(v, str) for v in values):
        return pa.array(list(values), type=pa.string())  # an all-None column stays a string column
    return pa.array(values)


def commit_batch(batch: dict[str, np.ndarray], folder: str) -> dict[str, np.ndarray]:
    """Write the batch's finished rows as one parquet shard, atomically (temporary name, then rename).

    The shard is named after the ids it holds, so a retried batch replaces its own shard instead of adding
    a second copy. Returns one row per committed shard: its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(batch["id"])
    if n:
        table = pa.table({name: _column(np.asarray(values)) for name, values in batch.items()})
        digest = hashlib.sha1("\n".join(map(str, batch["id"])).encode()).hexdigest()[:20]
        with atomic_path(Path(folder) / f"{SHARD_PREFIX}{digest}.parquet") as tmp:
            pq.write_table(table, tmp, write_page_checksum=True)  # a resume verifies it (pipeline.read_shard)
    return {"rows": np.array([n], dtype=np.int64)}


def counted(fn, stage_name: str, generators):
    """``fn`` that also tells the pass's router how many rows it finished (what the pass watchdog reads).
    Keeps ``fn``'s name, which Ray Data gives the operator."""

    @functools.wraps(fn)
    def stage_fn(batch: dict[str, np.ndarray], **kwargs) -> dict[str, np.ndarray]:
        n = len(batch["id"])
        out = fn(batch, **kwargs)
        generators.count(stage_name, n)
        return out

    return stage_fn
