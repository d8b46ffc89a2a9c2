"""Size and build time of the node's output messages for 32³ and 128³ grids.

The grids are true grids of synthetic objects (built for 128³, voxelized at each resolution,
probability 0.9 where occupied), so the clouds hold what a good reconstruction holds. For each
message, as :func:`~pix2voxpp_ros.ros.conversions.clouds.reconstruction_messages` builds what
the node publishes (``~/grid``: :func:`dense_grid`, pooled above 32³, as a dense cloud): its
serialized (CDR) size and the median time to build it; ``dense 128³``
is the full grid :func:`grid_to_dense_cloud` would give, for comparison with the 32³-pooled
``~/grid``. Needs the ROS message packages (the ``.venv`` wheels), not a running ROS.

    .venv/bin/python benchmarks/bench_messages.py [--objects car chair mug] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from pix2voxpp_ros.core.synthetic import make_object, voxelize
from pix2voxpp_ros.ros.conversions.clouds import (dense_grid, grid_to_cloud, grid_to_dense_cloud,
                                                  grid_to_markers, reconstruction_messages)


def _measure(build: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Return ``(serialized MB, median build ms)``."""
    times, message = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        message = build()
        times.append(time.perf_counter() - start)
    return len(serialize_message(message)) / 1e6, statistics.median(times) * 1e3


def main() -> None:
    """Print one row per object, resolution and message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--objects', nargs='+', default=['car', 'chair', 'mug'])
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    args = parser.parse_args()
    header = Header(frame_id='object')
    print(f'{"object":>8} {"grid":>5} {"voxels":>8} {"message":>22} {"MB":>8} {"build ms":>9}')
    for name in args.objects:
        obj = make_object(name, seed=args.seed, resolution=128)
        for resolution in (32, 128):
            grid = voxelize(obj, resolution=resolution).astype(np.float32) * 0.9
            voxels = int((grid >= 0.5).sum())
            options = {'threshold': 0.5, 'object_size_m': 0.5, 'header': header}
            messages = reconstruction_messages(grid, markers=False, **options)
            cases = {
                '~/occupancy (cloud)': lambda: grid_to_cloud(grid, **options),
                '~/grid': lambda: grid_to_dense_cloud(dense_grid(grid), object_size_m=0.5,
                                                      header=header),
                '~/markers': lambda: grid_to_markers(grid, **options),
            }
            if messages.grid.width != resolution:
                cases[f'dense {resolution}³ (not sent)'] = lambda: grid_to_dense_cloud(
                    grid, object_size_m=0.5, header=header)
            for label, build in cases.items():
                size, ms = _measure(build, args.repeats)
                print(f'{name:>8} {resolution:>4}³ {voxels:>8} {label:>22} {size:>8.3f} '
                      f'{ms:>9.1f}', flush=True)


if __name__ == '__main__':
    main()
