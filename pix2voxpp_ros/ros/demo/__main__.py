"""``python -m pix2voxpp_ros.ros.demo``: the same as the ``pix2voxpp-demo`` console script."""

import sys

from .run import main

sys.exit(main())
