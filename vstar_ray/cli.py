"""``vstar``: the command line (docs/architecture.md, "Contracts"). Every verb exits non-zero with a clear message on bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from vstar_ray.config import ConfigError, load_config
from vstar_ray.errors import InputError, WorkFailed
from vstar_ray.io import make_dir
from vstar_ray.resources import init_ray
from vstar_ray.verify import RecordError

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_KIT = os.environ.get("VSTAR_DEMO_KIT", "~/.cache/vstar-ray/demo-kit")


def _demo(args: argparse.Namespace) -> None:
    from vstar_ray.run import run

    overrides = [f"demo_kit={DEFAULT_KIT}"] if "VSTAR_DEMO_KIT" in os.environ else []
    overrides += [f"cycles={args.cycles}"] if args.cycles else []
    cfg = load_config(args.config, overrides + list(args.set))
    if args.ablations or args.variants:
        from vstar_ray.evaluation import ablations

        ablations.run(cfg, args.out, ablations.parse_variants(args.variants), resume=args.resume)
        _copy_seed(cfg, Path(args.out))
        print(f"\nwrote {Path(args.out).resolve()} (ablations.json, ablations.md, ablations.png; one run per variant)")
        return
    run(cfg, args.out, resume=args.resume, allow_changed_config=args.allow_changed_config)
    _copy_seed(cfg, Path(args.out))
    print(f"\nwrote {Path(args.out).resolve()} (metrics.json, report.md, report.png)")


def _copy_seed(cfg, out: Path) -> None:
    """The demo's output carries the seed model it started from (DIR/seed/)."""
    import shutil

    seed = Path(cfg.model.path or Path(cfg.demo_kit).expanduser() / "seed")
    if not (out / "seed").exists():
        shutil.copytree(seed, out / "seed")


def _run(args: argparse.Namespace) -> None:
    from vstar_ray.run import run

    overrides = list(args.set) + ([f"verify.thresholds={args.thresholds}"] if args.thresholds else [])
    run(load_config(args.config, overrides), args.out, resume=args.resume,
               allow_changed_config=args.allow_changed_config)


def _generate(args: argparse.Namespace) -> None:
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
    summary = run_pass(cfg, args.manifest, args.model, out / "generated", "train", resume=args.resume).to_json()
    atomic_write_json(out / "metrics.json", summary)
    print(json.dumps(summary, indent=2))


def _eval(args: argparse.Namespace) -> None:
    from vstar_ray.preflight import check_engine, check_model, load_verifier_plugins
    from vstar_ray.io import atomic_write_json

    cfg = load_config(args.config, list(args.set))
    load_verifier_plugins(cfg)
    out = Path(args.out)
    check_model(cfg, args.model, training=False)
    check_engine(cfg)
    if args.benchmark == "tempcompass":
        from vstar_ray.evaluation import tempcompass

        if not args.questions or not args.videos:
            raise InputError("--benchmark tempcompass needs --questions Q_DIR and --videos V_DIR")
        tasks = tempcompass.parse_tasks(args.tasks)
        tempcompass.load_questions(args.questions, tasks)  # bad files fail before Ray starts
        tempcompass.load_judge(args.judge)
        init_ray()
        summary = tempcompass.run(cfg, args.questions, args.videos, args.model, out, tasks=tasks, judge=args.judge,
                                  limit=args.limit)
        print(tempcompass.markdown(summary))
        if summary["missing_videos"]:
            print(f"{len(summary['missing_videos'])} videos missing (skipped), e.g. {summary['missing_videos'][:5]}")
        print(f"wrote {out}/results.json, results.md, predictions.jsonl")
        return
    if not args.manifest:
        raise InputError("give --manifest M (held-out QA) or --benchmark tempcompass")
    from vstar_ray.evaluation.heldout import held_out
    from vstar_ray.data.manifest import validate_manifest

    validate_manifest(args.manifest)
    init_ray()
    result = held_out(cfg, args.manifest, args.model, out, report_name="report.md")
    atomic_write_json(out / "metrics.json", {"eval_accuracy": result.accuracy, **result.to_json()})
    print((out / "report.md").read_text())
    print(f"wrote {out}/metrics.json, report.md, eval/ (every answer and its prompt)")


def _verify(args: argparse.Namespace) -> None:
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


def _prepare(args: argparse.Namespace) -> None:
    from vstar_ray.prepare import prepare

    report = prepare(args.source, args.annotations, args.videos, args.out, templates=args.templates, seed=args.seed,
                     split=args.split, classes=args.classes)
    print(f"{report['rows']} rows -> {report['manifest']}")
    if report["skipped"]:
        print(f"{report['skipped']} rows skipped ({report['skipped_file']}):")
        for reason, count in report["skipped_by_reason"].items():
            print(f"  {count:>7}  {reason}")
        for s in report["first_skipped"]:
            print(f"  e.g. {s['id']}: {s['reason']}")


def _tune(args: argparse.Namespace) -> None:
    from vstar_ray.tune import run_tune

    run_tune(args.records, args.out, trials=args.trials, metric=args.metric, min_yield=args.min_yield,
             holdout=args.holdout, seed=args.seed, max_concurrent=args.max_concurrent,
             base_thresholds=args.thresholds, plugins=args.plugins)
    out = Path(args.out)
    print(Path(out.with_name(f"{out.stem}_tune.md")).read_text())
    print(f"wrote {out} and {out.stem}_tune.json/.md/.png beside it")


def _plan(args: argparse.Namespace) -> None:
    from vstar_ray import plan

    cfg = load_config(args.config, list(args.set))
    assumptions = plan.parse_assumptions(args.assume, args.gpu_memory)
    print(plan.plan(cfg, args.gpus or plan.gpus_default(cfg), assumptions), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vstar", description="Video-STaR on Ray")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show Ray's and the libraries' logs and warnings on the console (else OUT/logs/)")
    subparsers = parser.add_subparsers(dest="verb", required=True)

    class Verbs:  # every verb takes --verbose
        @staticmethod
        def add_parser(name, **kwargs):
            return subparsers.add_parser(name, parents=[common], **kwargs)

    verbs = Verbs()

    def with_config(p, required: bool):
        p.add_argument("--config", required=required, help="YAML config (configs/*.yaml)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.lr=1e-4 (repeatable)")

    p = verbs.add_parser("demo", help="build the demo kit if missing and run Video-STaR on a local Ray cluster")
    p.add_argument("--out", default="demo-out")
    p.add_argument("--cycles", type=int, default=0, help="number of cycles (default: the config's, 3)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--allow-changed-config", action="store_true", help="with --resume: accept a changed config")
    p.add_argument("--ablations", action="store_true",
                   help="run full, no_filter, no_rationalization and label_only on the same data and seed")
    p.add_argument("--variants", default="", help="comma-separated subset of the ablation variants (implies --ablations)")
    with_config(p, required=False)
    p.set_defaults(fn=_demo, config=str(REPO_CONFIGS / "demo.yaml"))

    p = verbs.add_parser("run", help="the full multi-cycle run (what the Ray job runs)")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue a run: finished stages and committed rows are kept")
    p.add_argument("--allow-changed-config", action="store_true",
                   help="with --resume: continue although the config differs from the run's (kept in config_history/)")
    p.add_argument("--thresholds", help="thresholds.yaml (same as --set verify.thresholds=...)")
    with_config(p, required=True)
    p.set_defaults(fn=_run)

    p = verbs.add_parser("generate", help="one answer/verify/rationalize pass, no training")
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True, help="local folder or model id")
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--resume", action="store_true", help="keep the rows a killed run of this pass committed")
    with_config(p, required=False)
    p.set_defaults(fn=_generate)

    p = verbs.add_parser("eval", help="held-out QA accuracy of a model on a manifest, or a benchmark (greedy)")
    p.add_argument("--manifest", help="held-out manifest: accuracy per label type and source, with 95%% CIs")
    p.add_argument("--benchmark", choices=["tempcompass"], help="a published benchmark instead of a manifest")
    p.add_argument("--questions", help="tempcompass: folder with multi-choice.json, yes_no.json, ...")
    p.add_argument("--videos", help="tempcompass: folder with <video_id>.mp4")
    p.add_argument("--tasks", default="", help="tempcompass: comma-separated subset of the four tasks")
    p.add_argument("--judge", help="tempcompass: module:function deciding answers the rules cannot match")
    p.add_argument("--limit", type=int, default=0, help="tempcompass: at most this many questions")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    with_config(p, required=False)
    p.set_defaults(fn=_eval)

    p = verbs.add_parser("verify", help="the parser-verifier over JSONL records")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--skip-invalid", action="store_true", help="write bad records with an 'error' field instead of stopping")
    p.add_argument("--batch-size", type=int, default=4096, help="records verified together (sentence types embed in batches)")
    p.add_argument("--embedding-model", default="", help="sentence types: model id or folder (default all-MiniLM-L6-v2)")
    p.add_argument("--plugins", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="a verifier plug-in: its verify_<type> functions add label types (repeatable)")
    p.set_defaults(fn=_verify)

    p = verbs.add_parser("prepare", help="a label source's annotation files to a manifest")
    p.add_argument("--source", required=True,
                   choices=["kinetics700", "kinetics400", "kinetics600", "finediving", "star", "ssv2", "table"])
    p.add_argument("--annotations", required=True, help="annotation file or folder, as the dataset ships it")
    p.add_argument("--videos", required=True, help="folder holding the videos (or frame folders)")
    p.add_argument("--out", required=True, help="manifest parquet to write")
    p.add_argument("--templates", help="YAML {label type: [question, ...]} replacing the built-in questions")
    p.add_argument("--seed", type=int, default=0, help="question choice seed (a manifest is reproducible)")
    p.add_argument("--split", default="", help="keep only this split (e.g. train, validate)")
    p.add_argument("--classes", help="kinetics: class list (one per line); rows of other classes are skipped")
    p.set_defaults(fn=_prepare)

    p = verbs.add_parser("plan", help="memory per GPU and GPU-hours of a run, from the model's config and the manifests")
    p.add_argument("--gpus", type=int, default=0, help="GPUs in the cluster (default: what the config asks for)")
    p.add_argument("--gpu-memory", help="memory per GPU, e.g. 80GiB (default 80GiB)")
    p.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE",
                   help="replace an assumption (throughput, answer length, ...; listed in the output)")
    with_config(p, required=True)
    p.set_defaults(fn=_plan)

    p = verbs.add_parser("tune", help="Ray Tune over the verifier thresholds against records with a human 'gold'")
    p.add_argument("--records", required=True, help="JSONL verify records with 'gold' (true/false)")
    p.add_argument("--out", required=True, help="thresholds.yaml to write")
    p.add_argument("--trials", type=int, default=40, help="trials per group of types that share records")
    p.add_argument("--metric", default="f1", choices=["f1", "precision_at_yield"])
    p.add_argument("--min-yield", type=float, default=0.3, help="precision_at_yield: least fraction kept")
    p.add_argument("--holdout", type=float, default=0.3, help="fraction of records held out to compare on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-concurrent", type=int, default=2, help="trials running at once (ConcurrencyLimiter)")
    p.add_argument("--thresholds", help="start from this thresholds.yaml instead of the defaults")
    p.add_argument("--plugins", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="a verifier plug-in, loaded here and in every trial (repeatable)")
    p.set_defaults(fn=_tune)
    return parser


REPORT_BUG = ("This is a bug in vstar-ray, not in your input: please report it with the traceback above and the "
              "command you ran (CONTRIBUTING.md, 'Reporting a bug').")


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (``errors.InputError``: config, manifest, paths, a cluster too small for the
    config); 1 the work failed on the way (``errors.WorkFailed``, a Ray task that failed, a file that could not be
    written); 130 interrupted (Ctrl-C). Anything else is a bug: its traceback, and where to report it."""
    args = build_parser().parse_args(argv)
    from vstar_ray import console

    console.setup(getattr(args, "out", None) if args.verb in ("demo", "run", "generate", "eval") else None,
                  args.verbose)
    try:
        args.fn(args)
    except InputError as e:
        print(f"vstar {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = " Run the same command with --resume to continue." if args.verb in ("run", "demo", "generate") else ""
        print(f"\nvstar {args.verb}: interrupted. Finished stages and committed rows are kept.{again}", file=sys.stderr)
        return 130
    except OSError as e:  # a file that could not be written (a full disk, a lost mount): the work failed
        where = f" {e.filename}:" if e.filename else ""
        print(f"vstar {args.verb}: failed:{where} {e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:
        if not (isinstance(e, WorkFailed) or type(e).__module__.startswith("ray.")):
            traceback.print_exc()
            print(f"vstar {args.verb}: {REPORT_BUG}", file=sys.stderr)
            return 1
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"vstar {args.verb}: failed: {type(e).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
