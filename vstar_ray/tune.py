"""``vstar tune``: Ray Tune over the verifier thresholds, against human judgments (``gold``) of records.

Types that never share a record are independent (a record's verdict is the AND of its labels), so each
group of types that do share records is tuned by its own ``Tuner``, on its own records. Trials are Ray
actors (Optuna search behind a ``ConcurrencyLimiter``; the defaults are the first point evaluated), so
they spread over a multi-node cluster like any Ray Tune run. The records are split, stratified by
``gold``, into a tuning part and a held-out part; the report compares defaults and tuned values on both.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from vstar_ray.errors import InputError, WorkFailed
from vstar_ray.io import atomic_path, atomic_write_json, atomic_write_text, iter_jsonl
from vstar_ray.resources import init_ray
from vstar_ray.verify import (VERIFIERS, RecordError, default_thresholds, load_plugins, load_thresholds, parse_labels,
                              verify_many)
from vstar_ray.verify.plugins import resolve as resolve_plugins

METRICS = ("f1", "precision_at_yield")


class TuneError(InputError):
    """Records that cannot be tuned on; the message says which and why."""


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Verify records (docs/architecture.md, "Contracts") that carry ``gold`` (bool). Every problem names the line and record id."""
    records = []
    for n, record, why in iter_jsonl(path):
        if why:
            raise TuneError(f"{path} line {n}: {why}")
        if not isinstance(record, dict) or "id" not in record:
            raise TuneError(f"{path} line {n}: expected a JSON object with an 'id'")
        rid = record["id"]
        if "gold" not in record:
            raise TuneError(f"{path} line {n}: record {rid!r} has no 'gold' (a person's judgment, true/false)")
        if not isinstance(record["gold"], bool):
            raise TuneError(f"{path} line {n}: record {rid!r}: 'gold' must be true or false, got {record['gold']!r}")
        if "output" not in record:
            raise TuneError(f"{path} line {n}: record {rid!r}: missing field 'output'")
        try:
            parsed = parse_labels(str(rid), record["output"], record.get("labels"), record.get("verifiers"))
        except RecordError as e:
            raise TuneError(f"{path} line {n}: {e}") from e
        record["_types"] = sorted({kind for _, kind, _ in parsed})
        records.append(record)
    if not records:
        raise TuneError(f"{path}: no records")
    golds = {r["gold"] for r in records}
    if len(golds) < 2:
        raise TuneError(f"{path}: every record has gold={golds.pop()}; tuning needs records judged right and wrong")
    return records


def split(records: list[dict], holdout: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Stratified by ``gold`` and by type group, so both parts see every group and both judgments."""
    rng = random.Random(seed)
    strata: dict[tuple, list[dict]] = {}
    for r in records:
        strata.setdefault((tuple(r["_types"]), r["gold"]), []).append(r)
    tune_part, held = [], []
    for key in sorted(strata):
        group = strata[key][:]
        rng.shuffle(group)
        k = int(round(len(group) * holdout)) if len(group) > 1 else 0
        held += group[:k]
        tune_part += group[k:]
    return tune_part, held


def type_groups(records: list[dict]) -> list[list[str]]:
    """Connected groups of verifier types (two types are connected when a record has both)."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.setdefault(t, t) != t:
            t = parent[t]
        return t

    for r in records:
        for t in r["_types"][1:]:
            parent[find(t)] = find(r["_types"][0])
        find(r["_types"][0])
    groups: dict[str, list[str]] = {}
    for t in sorted(parent):
        groups.setdefault(find(t), []).append(t)
    return sorted(groups.values())


def score(verified: list[bool], gold: list[bool], metric: str = "f1", min_yield: float = 0.3) -> dict[str, float]:
    """Agreement of the verifier with the judges. ``precision_at_yield`` is precision when the verifier keeps
    at least ``min_yield`` of the records, and ``yield - min_yield`` (negative) when it keeps fewer."""
    tp = sum(v and g for v, g in zip(verified, gold))
    fp = sum(v and not g for v, g in zip(verified, gold))
    fn = sum(g and not v for v, g in zip(verified, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    kept = sum(verified) / len(verified) if verified else 0.0
    objective = f1 if metric == "f1" else (precision if kept >= min_yield else kept - min_yield)
    return {"objective": objective, "precision": precision, "recall": recall, "f1": f1, "yield": kept,
            "records": len(verified)}


def evaluate(records: list[dict], thresholds: dict, metric: str, min_yield: float) -> dict[str, float]:
    items = [(str(r["id"]), r["output"], r["labels"], r["verifiers"]) for r in records]
    verified = [res["verified"] for res in verify_many(items, thresholds)]
    return score(verified, [r["gold"] for r in records], metric, min_yield)


def _key(kind: str, param: str) -> str:
    return f"{kind}__{param}"


def _apply(base: dict, config: dict) -> dict:
    thresholds = {kind: dict(params) for kind, params in base.items()}
    for key, value in config.items():
        kind, param = key.split("__", 1)
        thresholds[kind][param] = float(value)
    return thresholds


def _trial(config: dict, records: list[dict], base: dict, metric: str, min_yield: float,
           plugins: tuple[str, ...] = ()) -> None:
    from ray import tune

    load_plugins(plugins)  # a trial runs in its own Ray actor
    tune.report(evaluate(records, _apply(base, config), metric, min_yield))


def _tune_group(types, records, base, trials, metric, min_yield, seed, max_concurrent, storage, plugins=()):
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    space, defaults = {}, {}
    for kind in types:
        for param, (low, high, log) in VERIFIERS[kind].ranges.items():
            space[_key(kind, param)] = tune.loguniform(low, high) if log else tune.uniform(low, high)
            defaults[_key(kind, param)] = min(max(base[kind][param], low), high)
    if not space:
        return {}, []
    search = OptunaSearch(metric="objective", mode="max", seed=seed, points_to_evaluate=[defaults])
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_trial, records=records, base=base, metric=metric,
                                                 min_yield=min_yield, plugins=plugins), {"cpu": 0.5}),
        param_space=space,
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(search, max_concurrent=max_concurrent),
                                    num_samples=trials, metric="objective", mode="max", reuse_actors=True),
        run_config=tune.RunConfig(name="_".join(types), storage_path=str(storage), verbose=0),
    )
    results = tuner.fit()
    errors = [r.error for r in results if r.error]
    if errors:
        raise WorkFailed(f"tuning {types}: {len(errors)} trial(s) failed, first: {errors[0]}")
    best = results.get_best_result(metric="objective", mode="max")
    trials_out = [{"config": r.config, **{k: r.metrics[k] for k in ("objective", "precision", "recall", "f1", "yield")}}
                  for r in results]
    return best.config, trials_out


def run_tune(records_path: str | Path, out: str | Path, trials: int = 40, metric: str = "f1", min_yield: float = 0.3,
             holdout: float = 0.3, seed: int = 0, max_concurrent: int = 2, base_thresholds: str | None = None,
             plugins: list[str] | tuple[str, ...] = ()) -> dict:
    """Tune, write ``out`` (thresholds.yaml) and beside it ``<stem>_tune.{json,md,png}``; returns the summary.
    ``plugins``: verifier plug-ins, loaded here and in every trial."""
    import yaml

    plugins = resolve_plugins(plugins)
    load_plugins(plugins)
    if metric not in METRICS:
        raise TuneError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    if not 0.0 < holdout < 1.0:
        raise TuneError(f"holdout must be in (0, 1), got {holdout}")
    records = load_records(records_path)
    base = load_thresholds(base_thresholds) if base_thresholds else default_thresholds()
    tune_part, held = split(records, holdout, seed)
    out = Path(out).resolve()
    storage = out.parent / f"{out.stem}_tune_runs"
    init_ray()
    tuned = {kind: dict(params) for kind, params in base.items()}
    groups, all_trials = [], {}
    for types in type_groups(records):
        group_tune = [r for r in tune_part if r["_types"][0] in types]
        group_held = [r for r in held if r["_types"][0] in types]
        if len({r["gold"] for r in group_tune}) < 2:
            raise TuneError(f"records with verifier types {types} are all gold={group_tune[0]['gold']} in the tuning "
                            f"part; tuning needs records judged right and wrong for every type")
        best, trial_rows = _tune_group(types, group_tune, base, trials, metric, min_yield, seed, max_concurrent, storage,
                                       plugins)
        tuned = _apply(tuned, best)
        all_trials["+".join(types)] = trial_rows
        groups.append({
            "types": types,
            "records": {"tune": len(group_tune), "heldout": len(group_held)},
            "default": {"tune": evaluate(group_tune, base, metric, min_yield),
                        "heldout": evaluate(group_held, base, metric, min_yield) if group_held else None},
            "tuned": {"tune": evaluate(group_tune, tuned, metric, min_yield),
                      "heldout": evaluate(group_held, tuned, metric, min_yield) if group_held else None},
        })
    present = sorted({t for r in records for t in r["_types"]})
    summary = {
        "records": str(records_path), "metric": metric, "min_yield": min_yield, "trials": trials, "seed": seed,
        "holdout": holdout,
        "thresholds": {"default": {k: base[k] for k in present}, "tuned": {k: tuned[k] for k in present}},
        "overall": {
            "default": {"tune": evaluate(tune_part, base, metric, min_yield),
                        "heldout": evaluate(held, base, metric, min_yield) if held else None},
            "tuned": {"tune": evaluate(tune_part, tuned, metric, min_yield),
                      "heldout": evaluate(held, tuned, metric, min_yield) if held else None},
        },
        "groups": groups,
        "search": all_trials,
    }
    written = {k: tuned[k] for k in present if tuned[k]}
    atomic_write_text(out, f"# vstar tune on {records_path} ({metric}, {trials} trials, seed {seed})\n"
                           + yaml.safe_dump(written, sort_keys=True))
    atomic_write_json(out.with_name(f"{out.stem}_tune.json"), summary)
    atomic_write_text(out.with_name(f"{out.stem}_tune.md"), report_markdown(summary))
    plot(summary, base, tuned, out.with_name(f"{out.stem}_tune.png"))
    return summary


def report_markdown(summary: dict) -> str:
    def row(name, s):
        return f"| {name} | {s['objective']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['yield']:.3f} |"

    lines = [f"# Threshold tuning ({summary['metric']}, {summary['trials']} trials per type group)", "",
             "| type | parameter | default | tuned |", "|---|---|---|---|"]
    for kind, params in summary["thresholds"]["tuned"].items():
        for param, value in params.items():
            lines.append(f"| {kind} | {param} | {summary['thresholds']['default'][kind][param]:g} | {value:.4g} |")
    for title, block in [("all records", summary["overall"])] + [(" + ".join(g["types"]), g) for g in summary["groups"]]:
        lines += ["", f"## {title}", "", "| thresholds / part | objective | precision | recall | F1 | yield |",
                  "|---|---|---|---|---|---|"]
        for which in ("default", "tuned"):
            for part in ("tune", "heldout"):
                if block[which][part]:
                    lines.append(row(f"{which} / {part}", block[which][part]))
    return "\n".join(lines) + "\n"


def plot(summary: dict, base: dict, tuned: dict, path: Path) -> None:
    """Objective vs threshold value over the trials, one panel per tuned parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(group, key) for group, rows in summary["search"].items() for key in (rows[0]["config"] if rows else {})]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4 * max(len(panels), 1), 3.2), squeeze=False)
    for ax, (group, key) in zip(axes[0], panels):
        kind, param = key.split("__", 1)
        rows = summary["search"][group]
        ax.scatter([r["config"][key] for r in rows], [r["objective"] for r in rows], s=12)
        ax.axvline(base[kind][param], color="grey", linestyle="--", label="default")
        ax.axvline(tuned[kind][param], color="red", label="tuned")
        if VERIFIERS[kind].ranges[param][2]:
            ax.set_xscale("log")
        ax.set_xlabel(f"{kind}.{param}")
        ax.set_ylabel(summary["metric"])
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
