"""Latency of reconstruct_objects against the number of objects per view set.

For N = 1, 2, 4, 8 objects on a table seen by three 640x480 cameras (synthetic view sets of
:mod:`pix2voxpp_ros.core.synthetic.multi`, several scenes per N), this times
:func:`pix2voxpp_ros.core.multi_object.reconstruct_objects` end to end and per stage (matching,
preprocessing, network, placement), and prints the median latency and latency(N) / latency(1).
Issue 27's target: the ratio at N = 4 at most 0.6 N = 2.4 (the objects share one forward pass).

Run (about a minute on 2 cores)::

    .venv/bin/python benchmarks/bench_objects.py --rounds 3 --scenes 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pix2voxpp_ros
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.multi_object import reconstruct_objects
from pix2voxpp_ros.core.synthetic.multi import make_view_set

DEFAULT_WEIGHTS = Path(pix2voxpp_ros.__file__).parent / 'weights' / 'pix2voxpp_f_synthetic.pth'
STAGES = ('matching_s', 'preprocess_s', 'network_s', 'placement_s')


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--counts', type=int, nargs='+', default=[1, 2, 4, 8])
    parser.add_argument('--scenes', type=int, default=2, help='view sets per count')
    parser.add_argument('--rounds', type=int, default=3, help='timed runs per view set')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument('--out', type=Path, help='also write the numbers as JSON here')
    return parser.parse_args(argv)


def time_count(reconstructor: Reconstructor, count: int, scenes: int, rounds: int) -> dict:
    """Median seconds of each stage and in all over ``scenes`` view sets x ``rounds`` runs."""
    runs = []  # (total, times, objects found)
    for scene in range(scenes):
        view_set = make_view_set(count, seed=1000 * count + scene)
        args = (view_set.images, view_set.labels, view_set.intrinsics, view_set.camera_to_fixed)
        reconstruct_objects(reconstructor, *args)  # warm: this batch shape's first run
        for _ in range(rounds):
            start = time.perf_counter()
            result = reconstruct_objects(reconstructor, *args)
            runs.append((time.perf_counter() - start, result.times, len(result.objects),
                         result.forward_passes))
    return {
        'objects': count,
        'found': statistics.median(r[2] for r in runs),
        'forward_passes': max(r[3] for r in runs),
        'total_s': statistics.median(r[0] for r in runs),
        **{stage: statistics.median(getattr(r[1], stage) for r in runs) for stage in STAGES},
    }


def main(argv: list[str] | None = None) -> int:
    """Time every count; print a table and the ratios to one object."""
    args = _parse_args(argv)
    reconstructor = Reconstructor(args.weights, device=args.device)
    rows = [time_count(reconstructor, n, args.scenes, args.rounds) for n in args.counts]
    base = rows[0]['total_s'] if rows[0]['objects'] == 1 else None
    print(f'backend {reconstructor.backend} on {reconstructor.device}; medians over '
          f'{args.scenes} scenes x {args.rounds} rounds')
    print('   N found passes   total ms  ratio  ratio/N  match  prep  network  place')
    for row in rows:
        ratio = row['total_s'] / base if base else float('nan')
        row['ratio'] = ratio
        print(f'{row["objects"]:4d} {row["found"]:5.1f} {row["forward_passes"]:6d} '
              f'{1000 * row["total_s"]:10.1f} {ratio:6.2f} {ratio / row["objects"]:8.2f} '
              f'{1000 * row["matching_s"]:6.1f} {1000 * row["preprocess_s"]:5.1f} '
              f'{1000 * row["network_s"]:8.1f} {1000 * row["placement_s"]:6.1f}', flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
