"""``vstar tune`` as a Ray job entrypoint.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \
        python -m jobs.tune_filters --records /shared/judged.jsonl --out /shared/thresholds.yaml --trials 60

Every argument is passed to ``vstar tune`` unchanged; inside a job, ``ray.init()`` connects to the
cluster the job was submitted to and the trials are scheduled across its nodes.
"""

from __future__ import annotations

import sys

from vstar_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
