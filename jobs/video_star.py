"""``vstar run`` as a Ray job entrypoint: every argument is passed to ``vstar run`` unchanged.

    ray job submit --working-dir . --runtime-env jobs/runtime_env.yaml -- \
        python -m jobs.video_star --config configs/demo.yaml --out /shared/runs/demo --set cycles=1

Inside a job, ``ray.init()`` connects to the cluster the job was submitted to.
"""

from __future__ import annotations

import sys

from vstar_ray.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
