"""Placement time and results: this checkout's ``place_object`` against a git revision's.

The held-out objects of the tabletop and wrist scenes (the views, true masks and cameras of
``benchmarks/placement_table.py``) are reconstructed once with the shipped weights; then each
object is placed by both versions of :mod:`pix2voxpp_ros.core.placement` (the revision's read
with ``git show``), interleaved, ``--repeats`` times, in this one process. Prints per scene the
median and p95 of each version's fastest time per object, their ratio, and both versions'
accuracy against the truth (core.metrics); ``--truth`` places the true grids instead of the
reconstructions (the method's own precision, without the network's errors).

    .venv/bin/python benchmarks/placement_speed.py --baseline HEAD~2 [--objects 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from placement_table import DEFAULT_WEIGHTS, SceneObject, scene_object
from pix2voxpp_ros.core import placement as current
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.metrics import placement_summary, score_placement
from pix2voxpp_ros.core.rig_config import rig_config_from_values, rig_defaults

REPO = Path(__file__).resolve().parents[1]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--baseline', required=True, help='git revision of the baseline')
    parser.add_argument('--objects', type=int, default=16, help='per scene')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--truth', action='store_true', help='place the true grids')
    return parser.parse_args(argv)


def load_revision(revision: str, folder: Path) -> ModuleType:
    """Import the revision's ``core/placement.py`` as a module of the installed package."""
    source = subprocess.run(['git', 'show', f'{revision}:pix2voxpp_ros/core/placement.py'],
                            cwd=REPO, check=True, capture_output=True, text=True).stdout
    path = folder / 'baseline_placement.py'
    path.write_text(source)
    # The relative imports resolve inside the package, as the file's own would.
    spec = importlib.util.spec_from_file_location('pix2voxpp_ros.core._baseline_placement', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def scene_objects(reconstructor: Reconstructor, scene: str, count: int) -> list[SceneObject]:
    """Return the reconstructions, views and truth of the scene's first ``count`` objects."""
    config = rig_config_from_values({**rig_defaults(), 'scene': scene})
    return [scene_object(reconstructor, config, number) for number in range(count)]


def compare(objects: list[SceneObject], versions: dict[str, ModuleType], repeats: int,
            truth: bool) -> None:
    """Place every object with every version, interleaved; print times and accuracy."""
    times = {name: [[] for _ in objects] for name in versions}
    scores = {name: [] for name in versions}
    for repeat in range(repeats):
        for number, item in enumerate(objects):
            grid = item.truth if truth else item.occupied
            for name, module in versions.items():
                start = time.perf_counter()
                placed = module.place_object(grid, item.views)
                times[name][number].append(1000.0 * (time.perf_counter() - start))
                if repeat == 0:
                    scores[name].append(score_placement(grid, placed.pose, item.truth,
                                                        item.truth_pose))
    medians = {}
    for name in versions:
        fastest = [min(t) for t in times[name]]
        medians[name] = statistics.median(fastest)
        summary = placement_summary(scores[name])
        print(f'  {name:9s} time median {medians[name]:6.1f} ms  p95 '
              f'{np.percentile(fastest, 95):6.1f} ms   world IoU '
              f'{summary["world_iou"]["mean"]:.3f}  position median/p90 '
              f'{100 * summary["position_error_rel"]["median"]:.1f}/'
              f'{100 * summary["position_error_rel"]["p90"]:.1f} %  size '
              f'{100 * summary["size_error_abs"]["median"]:.1f}/'
              f'{100 * summary["size_error_abs"]["p90"]:.1f} %  heading '
              f'{summary["heading_error_deg"]["median"]:.1f}/'
              f'{summary["heading_error_deg"]["p90"]:.1f} deg')
    print(f'  ratio current / baseline: {medians["current"] / medians["baseline"]:.2f}')


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    reconstructor = Reconstructor(DEFAULT_WEIGHTS, device='cpu')
    with tempfile.TemporaryDirectory() as folder:
        versions = {'baseline': load_revision(args.baseline, Path(folder)), 'current': current}
        for scene in ('tabletop', 'wrist'):
            grids = 'true grids' if args.truth else 'reconstructions'
            print(f'{scene}, {args.objects} objects, {grids}:', flush=True)
            compare(scene_objects(reconstructor, scene, args.objects), versions, args.repeats,
                    args.truth)
    return 0


if __name__ == '__main__':
    sys.exit(main())
