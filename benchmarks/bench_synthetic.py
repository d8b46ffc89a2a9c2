"""Benchmark the synthetic generator against the speeds the project relies on.

The budgets were wall-clock asserts inside the unit tests; they are measurements, so they live
here. Each case runs ``--repeats`` times after one warm-up and reports the fastest run:

* a 640×480 rendering of one object (the rig's camera size): budget 0.3 s;
* one dataset object (24 renderings + voxels; 1,000 objects in 10 minutes on 2 cores): 1.2 s;
* one 640×480 tabletop frame (the rig publishes at 2 Hz on a busy 2-core machine): 0.4 s.

    .venv/bin/python benchmarks/bench_synthetic.py [--repeats 3] [--check]

With ``--check`` the exit status is 1 when a case is over its budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Callable

from pix2voxpp_ros.core.synthetic import (Camera, dataset_object, generate_model, make_object,
                                          render_view)
from pix2voxpp_ros.core.synthetic.scenes import (make_tabletop_scene, render_scene_view,
                                                 tabletop_cameras)


def fastest_s(run: Callable[[int], object], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls ``run(i)``, after one warm-up call."""
    run(-1)
    durations = []
    for index in range(repeats):
        start = time.perf_counter()
        run(index)
        durations.append(time.perf_counter() - start)
    return min(durations)


def main() -> int:
    """Run the cases, print one line each; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--check', action='store_true', help='exit 1 when over a budget')
    args = parser.parse_args()
    chair = make_object('chair', seed=2)
    rig_camera = Camera(200.0, 35.0, 10.0, 0.5, 60.0, 640, 480)
    scene = make_tabletop_scene(dataset_object('chair', 0, seed=20261125), seed=6,
                                occluder_azimuth_deg=30.0)
    scene_camera = tabletop_cameras(1, seed=3)[0]
    over = []
    with tempfile.TemporaryDirectory() as root:
        cases = [
            ('object 640x480 rendering', 0.3, lambda i: render_view(chair, rig_camera)),
            ('dataset object (car)', 1.2,
             lambda i: generate_model(root, 'car', i + 1, seed=20260101)),
            ('tabletop 640x480 frame', 0.4, lambda i: render_scene_view(scene, scene_camera)),
        ]
        for name, budget_s, run in cases:
            seconds = fastest_s(run, args.repeats)
            verdict = 'ok' if seconds < budget_s else 'OVER'
            print(f'{name:<26} {seconds * 1e3:7.0f} ms  (budget {budget_s * 1e3:.0f} ms) '
                  f'{verdict}')
            if seconds >= budget_s:
                over.append(name)
    return 1 if args.check and over else 0


if __name__ == '__main__':
    sys.exit(main())
