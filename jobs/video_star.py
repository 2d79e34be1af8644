"""``vstar run`` as a Ray job entrypoint.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \
        python -m jobs.video_star --config configs/demo.yaml --out /shared/runs/demo --set cycles=1

Inside a job, ``ray.init()`` connects to the cluster the job was submitted to.
"""

from __future__ import annotations

import argparse
import sys

from vstar_ray.cli import main


def parse(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m jobs.video_star")
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    forwarded = ["run", "--config", args.config, "--out", args.out] + (["--resume"] if args.resume else [])
    for item in args.set:
        forwarded += ["--set", item]
    return forwarded


if __name__ == "__main__":
    sys.exit(main(parse()))
