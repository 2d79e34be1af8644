import sys

from vstar_ray.cli import main

sys.exit(main())
