"""``vstar``: the command line (docs/architecture.md, "Contracts"): its parser, and the exit code of every
outcome. What each verb does is ``verbs``."""

from __future__ import annotations

import argparse
import errno
import shutil
import sys
import traceback
from pathlib import Path

from vstar_ray import verbs
from vstar_ray.config_eval import BENCHMARKS
from vstar_ray.errors import (InputError, Terminated, WorkFailed, cause_inside, handle_sigterm,
                              received_sigterm)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vstar", description="Video-STaR on Ray")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true",
                        help="show Ray's and the libraries' logs and warnings on the console (else OUT/logs/)")
    subparsers = parser.add_subparsers(dest="verb", required=True)

    class Parsers:  # every verb takes --verbose
        @staticmethod
        def add_parser(name, **kwargs):
            return subparsers.add_parser(name, parents=[common], **kwargs)

    parsers = Parsers()

    def with_config(p, required: bool):
        p.add_argument("--config", required=required, help="YAML config (configs/*.yaml)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.lr=1e-4 (repeatable)")

    p = parsers.add_parser("demo", help="build the demo kit if missing and run Video-STaR on a local Ray cluster")
    p.add_argument("--out", default="demo-out")
    p.add_argument("--cycles", type=int, default=0, help="number of cycles (default: the config's, 3)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--allow-changed-config", action="store_true", help="with --resume: accept a changed config")
    p.add_argument("--ablations", action="store_true",
                   help="run full, no_filter, no_rationalization and label_only on the same data and seed")
    p.add_argument("--variants", default="", help="comma-separated subset of the ablation variants (implies --ablations)")
    with_config(p, required=False)
    p.set_defaults(fn=verbs.demo, config=str(verbs.REPO_CONFIGS / "demo.yaml"))

    p = parsers.add_parser("run", help="the full multi-cycle run (what the Ray job runs)")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue a run: finished stages and committed rows are kept")
    p.add_argument("--allow-changed-config", action="store_true",
                   help="with --resume: continue although the config differs from the run's (kept in config_history/)")
    p.add_argument("--thresholds", help="thresholds.yaml (same as --set verify.thresholds=...)")
    with_config(p, required=True)
    p.set_defaults(fn=verbs.run)

    p = parsers.add_parser("generate", help="one answer/verify/rationalize pass, no training")
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True, help="local folder or model id")
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--resume", action="store_true", help="keep the rows a killed run of this pass committed")
    with_config(p, required=False)
    p.set_defaults(fn=verbs.generate)

    p = parsers.add_parser("eval", help="held-out QA of a model on a manifest, or a judged benchmark (greedy)")
    p.add_argument("--manifest", help="held-out manifest: accuracy per label type and source, with 95%% CIs")
    p.add_argument("--protocol", choices=["verifier", "paper"],
                   help="held-out: verifier (default), or paper: the bare question, judged against the labels")
    p.add_argument("--benchmark", choices=list(BENCHMARKS), help="a published benchmark instead of a manifest")
    p.add_argument("--questions", help="openqa: test_q.json; videochatgpt: the folder of its three files; "
                                       "tempcompass: the folder of its question files")
    p.add_argument("--answers", help="openqa: test_a.json")
    p.add_argument("--videos", help="the benchmark's videos, named as the benchmark names them")
    p.add_argument("--label", default="", help="the benchmark's name in the report (msvd, msrvtt, ...)")
    p.add_argument("--tasks", default="", help="tempcompass: comma-separated subset of the four tasks")
    p.add_argument("--judge", help="shorthand for --set judge.backend=callable --set judge.function=module:function")
    p.add_argument("--limit", type=int, default=0, help="at most this many questions")
    p.add_argument("--rescore", action="store_true",
                   help="judge the answers already in --out again (the model is not run)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    with_config(p, required=False)
    p.set_defaults(fn=verbs.eval)

    p = parsers.add_parser("export", help="a run's model as a plain HF folder, or its generated data as a dataset")
    what = p.add_subparsers(dest="what", required=True)
    m = what.add_parser("model", parents=[common], help="a cycle's checkpoint, adapters merged, with a model card")
    m.add_argument("--run", required=True, help="the run folder")
    m.add_argument("--cycle", default="last", help="last (default), best (held-out accuracy) or a cycle number")
    m.add_argument("--out", required=True, help="a new folder")
    m.add_argument("--dtype", default="bfloat16", help="bfloat16 (default), float16 or float32")
    m.add_argument("--push-to-hub", metavar="REPO", help="upload the folder to this hub repo (needs a token)")
    m.set_defaults(fn=verbs.export_model)
    d = what.add_parser("data", parents=[common], help="the kept answers as parquet + LLaVA JSON, with a dataset card")
    d.add_argument("--run", required=True)
    d.add_argument("--cycles", default="", help="comma-separated cycle numbers (default: all)")
    d.add_argument("--out", required=True, help="a new folder")
    d.add_argument("--copy-videos", action="store_true", help="copy the videos into the folder (default: reference them)")
    d.set_defaults(fn=verbs.export_data)

    p = parsers.add_parser("verify", help="the parser-verifier over JSONL records")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--skip-invalid", action="store_true", help="write bad records with an 'error' field instead of stopping")
    p.add_argument("--batch-size", type=int, default=4096, help="records verified together (sentence types embed in batches)")
    p.add_argument("--embedding-model", default="", help="sentence types: model id or folder (default all-MiniLM-L6-v2)")
    p.add_argument("--plugins", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="a verifier plug-in: its verify_<type> functions add label types (repeatable)")
    p.set_defaults(fn=verbs.verify)

    p = parsers.add_parser("prepare", help="a label source's annotation files to a manifest")
    p.add_argument("--source", required=True,
                   choices=["kinetics700", "kinetics400", "kinetics600", "finediving", "star", "ssv2", "table"])
    p.add_argument("--annotations", required=True, help="annotation file or folder, as the dataset ships it")
    p.add_argument("--videos", required=True, help="folder holding the videos (or frame folders)")
    p.add_argument("--out", required=True, help="manifest parquet to write")
    p.add_argument("--templates", help="YAML {label type: [question, ...]} replacing the built-in questions")
    p.add_argument("--seed", type=int, default=0, help="question choice seed (a manifest is reproducible)")
    p.add_argument("--split", default="", help="keep only this split (e.g. train, validate); test: the paper's test "
                                                "set of kinetics700 (the validation set), star (STAR_val.json) or "
                                                "finediving (test_split.pkl), with the paper's items")
    p.add_argument("--items", default="", choices=["", "vstar", "paper"],
                   help="which items to build per clip: vstar (default) or paper (the reference builders'; the "
                        "default with --split test)")
    p.add_argument("--size", type=int, default=0, help="a seeded subset of this many clips/questions/dives (0: all)")
    p.add_argument("--classes", help="kinetics: class list (one per line); rows of other classes are skipped")
    p.set_defaults(fn=verbs.prepare)

    p = parsers.add_parser("plan", help="memory per GPU and GPU-hours of a run, from the model's config and the manifests")
    p.add_argument("--gpus", type=int, default=0, help="GPUs in the cluster (default: what the config asks for)")
    p.add_argument("--gpu-memory", help="memory per GPU, e.g. 80GiB (default 80GiB)")
    p.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE",
                   help="replace an assumption (throughput, answer length, ...; listed in the output)")
    with_config(p, required=True)
    p.set_defaults(fn=verbs.plan)

    p = parsers.add_parser("tune", help="Ray Tune over the verifier thresholds against records with a human 'gold'")
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
    p.set_defaults(fn=verbs.tune)
    return parser


REPORT_BUG = ("This is a bug in vstar-ray, not in your input: please report it with the traceback above and the "
              "command you ran (CONTRIBUTING.md, 'Reporting a bug').")


def _ray_failure(e: BaseException) -> str:
    """One line for a Ray error: its first line, and where that line only announces what follows ("Training
    failed due to worker errors:"), the exception it ends with."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or [""]
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{type(e).__name__}: {lines[0]} ... {lines[-1]}"
    return f"{type(e).__name__}: {lines[0]}"


def _failed_write(e: OSError, out: str | None) -> str:
    """``FILE: No space left on device (12 KiB free under OUT)``: where it failed, and what is left."""
    where = f"{e.filename}: " if e.filename else (f"under {out}: " if out else "")
    free = ""
    if e.errno == errno.ENOSPC and out and Path(out).exists():
        free = f" ({shutil.disk_usage(out).free / 2**20:,.1f} MiB free on the filesystem of {out})"
    return f"{where}{e.strerror or e}{free}"


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input (``errors.InputError``: config, manifest, paths, a cluster too small for the
    config); 1 the work failed on the way (``errors.WorkFailed``, a Ray task that failed, a file that could not be
    written); 130 interrupted (Ctrl-C); 143 terminated (SIGTERM, handled as Ctrl-C). Anything else is a bug: its
    traceback, and where to report it."""
    args = build_parser().parse_args(argv)
    from vstar_ray import console

    console.setup(getattr(args, "out", None) if args.verb in ("demo", "run", "generate", "eval") else None,
                  args.verbose)
    handle_sigterm(install=True)
    try:
        try:
            args.fn(args)
        except Exception as e:
            raise cause_inside(e, (InputError, OSError)) or e
    except InputError as e:
        print(f"vstar {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (errors.Terminated)
        again = " Run the same command with --resume to continue." if args.verb in ("run", "demo", "generate") else ""
        terminated = isinstance(e, Terminated) or received_sigterm()
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"\nvstar {args.verb}: {what}. Finished stages and committed rows are kept.{again}", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as e:  # a file that could not be written (a full disk, a lost mount): the work failed
        print(f"vstar {args.verb}: failed: {_failed_write(e, getattr(args, 'out', None))}", file=sys.stderr)
        return 1
    except Exception as e:
        if not (isinstance(e, WorkFailed) or type(e).__module__.startswith("ray.")):
            traceback.print_exc()
            print(f"vstar {args.verb}: {REPORT_BUG}", file=sys.stderr)
            return 1
        print(f"vstar {args.verb}: failed: {_ray_failure(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
