"""Benchmark ``pix2voxpp-bag`` throughput: view sets per second with ``--batch N`` against 1.

Records the simulated rig into a bag (``config/demo_rig.yaml``: three 640×480 cameras, the demo
node's parameters ``config/demo_node.yaml``), or takes ``--bag``, then runs the whole offline
pipeline (read, decode, preprocess, network, messages, write) once per batch size and repeat, the
batch sizes interleaved so machine noise hits all of them, in this one process.

    .venv/bin/python benchmarks/bench_bag.py [--objects 4] [--object-switch-s 4] [--batches 1 4 8]
        [--repeats 3] [--device cpu] [--weights W] [--json out/bench_bag.json]

Prints the median sets per second of each batch size and its speed-up over ``--batch 1``
(``sets_per_s`` of the tool's summary: reconstructions over the time from the first frame read to
the last message written; model loading excluded).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from pix2voxpp_ros.cli import bag as bag_cli
from pix2voxpp_ros.ros.demo import DEFAULT_WEIGHTS, config_dir
from pix2voxpp_ros.ros.rig_bag import record_rig_bag


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--bag', type=Path, help='an existing recording of the rig')
    parser.add_argument('--objects', type=int, default=4)
    parser.add_argument('--object-switch-s', type=float, default=4.0)
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 4, 8])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument('--json', type=Path)
    args = parser.parse_args()
    config = config_dir()
    results: dict[int, list[float]] = {b: [] for b in args.batches}
    with tempfile.TemporaryDirectory() as tmp:
        bag = args.bag
        if bag is None:
            bag = Path(tmp) / 'rig'
            # The plain scene without masks: the recording the README's figures were made on.
            record_rig_bag(bag, params_file=config / 'demo_rig.yaml', objects=args.objects,
                           masks=False, overrides={'object_switch_s': args.object_switch_s})
        sets = None
        for repeat in range(args.repeats):
            for batch in args.batches:
                out = Path(tmp) / f'out_{batch}_{repeat}'
                with contextlib.redirect_stdout(io.StringIO()):
                    code = bag_cli.main([str(bag), '--params', str(config / 'demo_node.yaml'),
                                         '--weights', str(args.weights), '--device', args.device,
                                         '--out', str(out), '--batch', str(batch), '--quiet'])
                if code != 0:
                    raise SystemExit(f'pix2voxpp-bag failed with {code}')
                summary = json.loads((out / 'summary.json').read_text())
                sets = summary['sets']['reconstructed']
                results[batch].append(summary['sets_per_s'])
                print(f'  repeat {repeat + 1}, batch {batch}: {summary["sets_per_s"]:.3f} sets/s',
                      flush=True)
    base = statistics.median(results[args.batches[0]])
    rows = [{'batch': b, 'sets_per_s': round(statistics.median(v), 3),
             'speedup': round(statistics.median(v) / base, 2), 'runs': v}
            for b, v in results.items()]
    print(f'\n{sets} view sets of 3 views, {torch.get_num_threads()} threads, {args.device}, '
          f'{platform.processor() or platform.machine()}')
    print('| batch | sets/s | speed-up |\n|---|---|---|')
    for row in rows:
        print(f'| {row["batch"]} | {row["sets_per_s"]:.2f} | {row["speedup"]:.2f}× |')
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'sets': sets, 'rows': rows}, indent=2))


if __name__ == '__main__':
    main()
