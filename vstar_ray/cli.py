"""``vstar``: the command line (DESIGN.md section 4). Every verb exits non-zero with a clear message on bad input."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vstar_ray.config import ConfigError, load_config
from vstar_ray.manifest import ManifestError
from vstar_ray.verify import RecordError

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_KIT = os.environ.get("VSTAR_DEMO_KIT", "~/.cache/vstar-ray/demo-kit")


def _demo(args: argparse.Namespace) -> None:
    from vstar_ray import cycles

    overrides = [f"demo_kit={DEFAULT_KIT}"] if "VSTAR_DEMO_KIT" in os.environ else []
    overrides += [f"cycles={args.cycles}"] if args.cycles else []
    cfg = load_config(args.config, overrides + list(args.set))
    cycles.run(cfg, args.out, resume=args.resume)
    _copy_seed(cfg, Path(args.out))
    print(f"\nwrote {Path(args.out).resolve()} (metrics.json, report.md, report.png)")


def _copy_seed(cfg, out: Path) -> None:
    """The demo's output carries the seed model it started from (DIR/seed/)."""
    import shutil

    seed = Path(cfg.model.path or Path(cfg.demo_kit).expanduser() / "seed")
    if not (out / "seed").exists():
        shutil.copytree(seed, out / "seed")


def _run(args: argparse.Namespace) -> None:
    from vstar_ray import cycles

    cycles.run(load_config(args.config, list(args.set)), args.out, resume=args.resume)


def _generate(args: argparse.Namespace) -> None:
    import ray

    from vstar_ray.io import atomic_write_json
    from vstar_ray.manifest import validate_manifest
    from vstar_ray.pipeline import run_pass

    overrides = list(args.set) + ([f"verify.thresholds={args.thresholds}"] if args.thresholds else [])
    cfg = load_config(args.config, overrides)
    validate_manifest(args.manifest)
    ray.init()
    out = Path(args.out)
    summary = run_pass(cfg, args.manifest, args.model, out / "generated", "train")
    atomic_write_json(out / "metrics.json", summary)
    print(json.dumps(summary, indent=2))


def _eval(args: argparse.Namespace) -> None:
    import ray

    from vstar_ray.io import atomic_write_json
    from vstar_ray.manifest import validate_manifest
    from vstar_ray.pipeline import run_pass

    cfg = load_config(args.config, list(args.set))
    validate_manifest(args.manifest)
    ray.init()
    out = Path(args.out)
    summary = run_pass(cfg, args.manifest, args.model, out / "eval", "eval")
    atomic_write_json(out / "metrics.json", {"eval_accuracy": summary["accuracy"], **summary})
    print(json.dumps({"eval_accuracy": summary["accuracy"], **summary}, indent=2))


def _verify(args: argparse.Namespace) -> None:
    from vstar_ray.io import atomic_write_text
    from vstar_ray.verify import load_thresholds, verify_record

    thresholds = load_thresholds(args.thresholds)
    lines, bad = [], 0
    with open(args.inp) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise RecordError(f"line {n}: expected a JSON object")
                result = verify_record(record, thresholds)
            except (json.JSONDecodeError, RecordError) as e:
                message = f"{args.inp} line {n}: {e}"
                if not args.skip_invalid:
                    raise RecordError(message) from e
                bad += 1
                print(f"skipped: {message}", file=sys.stderr)
                result = {**(record if isinstance(record, dict) else {}), "error": str(e)}
            lines.append(json.dumps(result, ensure_ascii=False))
    atomic_write_text(args.out, "\n".join(lines) + ("\n" if lines else ""))
    verified = sum(1 for line in lines if json.loads(line).get("verified"))
    print(f"{len(lines)} records, {verified} verified, {bad} invalid -> {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vstar", description="Video-STaR on Ray")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def with_config(p, required: bool):
        p.add_argument("--config", required=required, help="YAML config (configs/*.yaml)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set train.lr=1e-4 (repeatable)")

    p = verbs.add_parser("demo", help="build the demo kit if missing and run Video-STaR on a local Ray cluster")
    p.add_argument("--out", default="demo-out")
    p.add_argument("--cycles", type=int, default=0, help="number of cycles (default: the config's, 3)")
    p.add_argument("--resume", action="store_true")
    with_config(p, required=False)
    p.set_defaults(fn=_demo, config=str(REPO_CONFIGS / "demo.yaml"))

    p = verbs.add_parser("run", help="the full multi-cycle run (what the Ray job runs)")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    with_config(p, required=True)
    p.set_defaults(fn=_run)

    p = verbs.add_parser("generate", help="one answer/verify/rationalize pass, no training")
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True, help="local folder or model id")
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    with_config(p, required=False)
    p.set_defaults(fn=_generate)

    p = verbs.add_parser("eval", help="held-out accuracy of a model on a manifest (greedy)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    with_config(p, required=False)
    p.set_defaults(fn=_eval)

    p = verbs.add_parser("verify", help="the parser-verifier over JSONL records")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--thresholds")
    p.add_argument("--skip-invalid", action="store_true", help="write bad records with an 'error' field instead of stopping")
    p.set_defaults(fn=_verify)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except (ConfigError, ManifestError, RecordError, ValueError, FileNotFoundError) as e:
        print(f"vstar {args.verb}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
