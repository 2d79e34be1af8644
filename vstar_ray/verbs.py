"""What each ``vstar`` verb does (``cli`` parses the arguments and maps errors to exit codes)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vstar_ray.config import ConfigError, load_config, with_frame_cache
from vstar_ray.config_eval import BenchmarkSpec
from vstar_ray.errors import InputError
from vstar_ray.io import atomic_write_json, make_dir
from vstar_ray.resources import init_ray
from vstar_ray.verify import RecordError

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_KIT = os.environ.get("VSTAR_DEMO_KIT", "~/.cache/vstar-ray/demo-kit")


def demo(args: argparse.Namespace) -> None:
    from vstar_ray.run import run

    overrides = [f"demo_kit={DEFAULT_KIT}"] if "VSTAR_DEMO_KIT" in os.environ else []
    overrides += [f"cycles={args.cycles}"] if args.cycles else []
    cfg = load_config(args.config, overrides + list(args.set))
    if args.ablations or args.variants:
        from vstar_ray.evaluation import ablations

        ablations.run(cfg, args.out, ablations.parse_variants(args.variants), resume=args.resume)
        copy_seed(cfg, Path(args.out))
        print(f"\nwrote {Path(args.out).resolve()} (ablations.json, ablations.md, ablations.png; one run per variant)")
        return
    run(cfg, args.out, resume=args.resume, allow_changed_config=args.allow_changed_config)
    copy_seed(cfg, Path(args.out))
    print(f"\nwrote {Path(args.out).resolve()} (metrics.json, report.md, report.png)")


def copy_seed(cfg, out: Path) -> None:
    """The demo's output carries the seed model it started from (DIR/seed/)."""
    import shutil

    seed = Path(cfg.model.path or Path(cfg.demo_kit).expanduser() / "seed")
    if not (out / "seed").exists():
        shutil.copytree(seed, out / "seed")


def run(args: argparse.Namespace) -> None:
    from vstar_ray.run import run

    overrides = list(args.set) + ([f"verify.thresholds={args.thresholds}"] if args.thresholds else [])
    run(load_config(args.config, overrides), args.out, resume=args.resume,
               allow_changed_config=args.allow_changed_config)


def generate(args: argparse.Namespace) -> None:
    from vstar_ray.preflight import check_engine, check_model, load_verifier_plugins
    from vstar_ray.io import atomic_write_json
    from vstar_ray.data.manifest import validate_manifest
    from vstar_ray.generation.pipeline import run_pass

    overrides = list(args.set) + ([f"verify.thresholds={args.thresholds}"] if args.thresholds else [])
    cfg = load_config(args.config, overrides)
    load_verifier_plugins(cfg)
    validate_manifest(args.manifest)
    check_model(cfg, args.model, training=False)
    check_engine(cfg)
    out = Path(args.out)
    if (out / "generated").exists() and not args.resume:
        raise ConfigError(f"{out}/generated already exists: choose another --out")
    make_dir(out, "the output folder")
    init_ray()
    summary = run_pass(with_frame_cache(cfg, out), args.manifest, args.model, out / "generated", "train",
                       resume=args.resume).to_json()
    atomic_write_json(out / "metrics.json", summary)
    print(json.dumps(summary, indent=2))


def eval(args: argparse.Namespace) -> None:
    """Held-out QA on a manifest (verified, or judged under --protocol paper), or a published benchmark; with
    --rescore the answers already in --out are judged again (no model, no Ray: works with the judge offline when
    its replies are cached)."""
    from vstar_ray.evaluation.judge import Judge
    from vstar_ray.evaluation.suites import judge_configured, run_benchmark
    from vstar_ray.preflight import check_engine, check_judging, check_model, load_verifier_plugins

    overrides = list(args.set) + ([f"eval.protocol={args.protocol}"] if args.protocol else [])
    overrides += ["judge.backend=callable", f"judge.function={args.judge}"] if args.judge else []
    cfg = load_config(args.config, overrides)
    out = Path(args.out)
    if bool(args.manifest) == bool(args.benchmark):
        raise InputError("give --manifest M (held-out QA) or --benchmark NAME, one of them")
    spec = None
    if args.benchmark:
        if not args.questions or not args.videos:
            raise InputError(f"--benchmark {args.benchmark} needs --questions and --videos")
        spec = BenchmarkSpec(name=args.benchmark, questions=args.questions, videos=args.videos,
                             answers=args.answers or "", label=args.label or "", tasks=args.tasks, limit=args.limit)
        from vstar_ray.evaluation.suites import check_benchmark

        check_benchmark(cfg, spec, f"--benchmark {args.benchmark}")
    check_judging(cfg)
    load_verifier_plugins(cfg)
    if not args.rescore:
        check_model(cfg, args.model, training=False)
        check_engine(cfg)
        init_ray()
    judge = Judge(cfg.judge) if judge_configured(cfg.judge) else None
    try:
        if spec is not None:
            result = run_benchmark(cfg, spec, args.model, out, judge=judge, rescore=args.rescore)
            print((out / "results.md").read_text())
            print(result.line(spec.title))
            print(f"wrote {out}/results.json, results.md, predictions.jsonl")
            return
        from vstar_ray.data.manifest import validate_manifest
        from vstar_ray.evaluation.heldout import held_out

        validate_manifest(args.manifest)
        result = held_out(cfg, args.manifest, args.model, out, report_name="report.md", judge=judge,
                          rescore=args.rescore)
        atomic_write_json(out / "metrics.json", {"eval_accuracy": result.accuracy, **result.to_json()})
        print((out / "report.md").read_text())
        print(f"wrote {out}/metrics.json, report.md, eval/ (every answer and its prompt)")
    finally:
        if judge is not None:
            judge.close()


def verify(args: argparse.Namespace) -> None:
    from vstar_ray.io import atomic_path, iter_jsonl
    from vstar_ray.verify import load_plugins, load_thresholds, set_embedding_model, verify_records

    load_plugins(args.plugins)
    thresholds = load_thresholds(args.thresholds)
    if args.embedding_model:
        set_embedding_model(args.embedding_model)
    out = Path(args.out)
    counts = {"records": 0, "verified": 0, "invalid": 0}

    def flush(chunk: list[tuple[int, object]], f) -> None:
        """Verify a chunk of (line number, record or the reason its line is bad); a bad record stops the file
        (naming its line) unless --skip-invalid, which writes it with an 'error' field instead."""
        parsed = [r for _, r in chunk if not isinstance(r, Exception)]
        verified = iter(verify_records(parsed, thresholds, skip_invalid=True))
        results = [{"error": str(r)} if isinstance(r, Exception) else next(verified) for _, r in chunk]
        for (n, _), result in zip(chunk, results):
            if "error" in result and not args.skip_invalid:
                raise RecordError(f"{args.inp} line {n}: {result['error']}")
        for (n, _), result in zip(chunk, results):
            counts["records"] += 1
            if "error" in result:
                counts["invalid"] += 1
                print(f"skipped: {args.inp} line {n}: {result['error']}", file=sys.stderr)
            counts["verified"] += bool(result.get("verified"))
            f.write(json.dumps(result, ensure_ascii=False) + "\n")

    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        chunk: list[tuple[int, object]] = []
        for n, record, why in iter_jsonl(args.inp):
            chunk.append((n, InputError(why) if why else record))
            if len(chunk) >= args.batch_size:
                flush(chunk, f)
                chunk = []
        if chunk:
            flush(chunk, f)
    print(f"{counts['records']} records, {counts['verified']} verified, {counts['invalid']} invalid -> {out}")


def prepare(args: argparse.Namespace) -> None:
    from vstar_ray.prepare import prepare

    report = prepare(args.source, args.annotations, args.videos, args.out, templates=args.templates, seed=args.seed,
                     split=args.split, classes=args.classes, items=args.items, size=args.size)
    print(f"{report['rows']} rows ({report['items']} items{', split ' + report['split'] if report['split'] else ''}) "
          f"-> {report['manifest']}")
    print(f"set sha256 {report['set_sha256']} (ids in {Path(report['manifest']).stem}.ids.txt)")
    if report["skipped"]:
        print(f"{report['skipped']} rows skipped ({report['skipped_file']}):")
        for reason, count in report["skipped_by_reason"].items():
            print(f"  {count:>7}  {reason}")
        for s in report["first_skipped"]:
            print(f"  e.g. {s['id']}: {s['reason']}")


def tune(args: argparse.Namespace) -> None:
    from vstar_ray.tune import run_tune

    run_tune(args.records, args.out, trials=args.trials, metric=args.metric, min_yield=args.min_yield,
             holdout=args.holdout, seed=args.seed, max_concurrent=args.max_concurrent,
             base_thresholds=args.thresholds, plugins=args.plugins)
    out = Path(args.out)
    print(Path(out.with_name(f"{out.stem}_tune.md")).read_text())
    print(f"wrote {out} and {out.stem}_tune.json/.md/.png beside it")


def plan(args: argparse.Namespace) -> None:
    from vstar_ray import plan

    cfg = load_config(args.config, list(args.set))
    assumptions = plan.parse_assumptions(args.assume, args.gpu_memory)
    print(plan.plan(cfg, plan.check_gpus(args.gpus) or plan.gpus_default(cfg), assumptions), end="")


def export_model(args: argparse.Namespace) -> None:
    from vstar_ray.export.model import export_model as export, push_to_hub

    out = export(args.run, args.out, cycle=args.cycle, dtype=args.dtype)
    print(f"wrote {out} (weights, processor, chat template, generation_config.json, README.md)")
    if args.push_to_hub:
        print(f"uploaded to {push_to_hub(out, args.push_to_hub)}")


def export_data(args: argparse.Namespace) -> None:
    from vstar_ray.export.data import export_data as export

    try:
        cycles = [int(c) for c in args.cycles.split(",") if c.strip()]
    except ValueError:
        raise InputError(f"--cycles {args.cycles!r}: expected comma-separated cycle numbers") from None
    result = export(args.run, args.out, cycles or None, args.copy_videos)
    rows = ", ".join(f"cycle {k}: {n}" for k, n in result["rows"].items())
    print(f"wrote {result['out']} ({rows} answers; data/*.parquet, __llava/train.json, README.md)")
