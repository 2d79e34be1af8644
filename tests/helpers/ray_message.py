"""A driver that sets up the console as ``vstar run`` does, starts Ray, and has the cluster publish a message to it
the way the raylet does; prints ``published`` once the message is in the log file (or 30 s passed)."""

import sys
import time
from pathlib import Path

import ray
from ray._private.utils import publish_error_to_driver

from vstar_ray import console
from vstar_ray.resources import init_ray

out = Path(sys.argv[1])
console.setup(out, verbose=False)
init_ray(num_cpus=1)
publish_error_to_driver("worker_pool_large", "WARNING: 9 PYTHON worker processes have been started on node: abc",
                        ray._private.worker.global_worker.gcs_client)
deadline = time.time() + 30
while "9 PYTHON worker processes" not in (out / "logs" / "vstar.log").read_text() and time.time() < deadline:
    time.sleep(0.2)
print("published", flush=True)
ray.shutdown()
