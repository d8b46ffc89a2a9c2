"""Benchmark the 128³ variant against 32³: forward time and memory, each case in a fresh process.

Cases: Pix2Vox++/F at 32³, at 128³ fusing views at 32³ (scores upsampled) and at 128³ fusing at
128³; 1 and 3 views (``--views``); each backend × precision (``--backends``, ``--precisions``),
all through ``Reconstructor.infer`` (host arrays in and out, as the node calls it) on seeded
random weights. With one view the merger is skipped, so the two 128³ networks are the same and
the full-resolution fusion runs only for more views.

Every case runs in its own Python process, so its memory is its own (PyTorch allocates outside
what ``tracemalloc`` sees): ``peak_rss_mib`` is the process's ``ru_maxrss`` (everything: imports,
the network, OpenVINO's conversion and its load-time check against PyTorch, the runs) and
``forward_mib`` the largest growth of the resident set over its level before the first forward
(sampled every millisecond; the allocator keeps much of what a forward frees, so later forwards
would show little). ``ready_s`` is the Reconstructor's start: for OpenVINO the
conversion into a fresh cache folder and the check.

    .venv/bin/python benchmarks/bench_resolution.py [--views 1 3] [--repeats 5]
        [--backends torch openvino] [--precisions fp32 bf16] [--threads N]
        [--json out/bench_resolution.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from pix2voxpp_ros.core.checkpoint import LoadedCheckpoint, WeightsMetadata
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.model import ModelConfig, build_model

NETWORKS = {'F-32': (32, 32), 'F-128 fuse@32': (128, 32), 'F-128 fuse@128': (128, 128)}


def _peak_growth(stop: threading.Event, base: int, out: list[int]) -> None:
    process = psutil.Process()
    while not stop.is_set():
        out[0] = max(out[0], process.memory_info().rss - base)
        time.sleep(0.001)


def run_case(network: str, views: int, backend: str, precision: str, repeats: int,
             threads: int | None) -> dict:
    """Time one case in this process; return its row."""
    resolution, fusion = NETWORKS[network]
    torch.manual_seed(0)
    model = build_model(ModelConfig(resolution=resolution, fusion_resolution=fusion)).eval()
    loaded = LoadedCheckpoint(model, WeightsMetadata(resolution=resolution), 'project', {})
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        reconstructor = Reconstructor(loaded, device='cpu', backend=backend,
                                      precision=precision, cache_dir=cache, warmup_views=0,
                                      num_threads=threads)
        ready_s = time.perf_counter() - start
        images = np.random.default_rng(views).uniform(
            -1, 1, (1, views, 3, 224, 224)).astype(np.float32)
        base = psutil.Process().memory_info().rss
        growth, stop = [0], threading.Event()
        sampler = threading.Thread(target=_peak_growth, args=(stop, base, growth), daemon=True)
        sampler.start()
        grid = reconstructor.infer(images)  # warm-up (freed memory may stay resident after it)
        times = []
        for _ in range(repeats):
            begin = time.perf_counter()
            reconstructor.infer(images)
            times.append(time.perf_counter() - begin)
        stop.set()
        sampler.join()
    return {
        'network': network, 'views': views, 'backend': backend, 'precision': precision,
        'ran': f'{reconstructor.backend} {reconstructor.precision}',
        'median_ms': round(statistics.median(times) * 1000, 1),
        'min_ms': round(min(times) * 1000, 1), 'repeats': repeats,
        'ready_s': round(ready_s, 1), 'grid': list(grid.shape[1:]),
        'forward_mib': round(growth[0] / 2**20, 1),
        'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    """Run every case in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--networks', nargs='+', default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument('--views', nargs='+', type=int, default=[1, 3])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--backends', nargs='+', default=['torch', 'openvino'],
                        choices=['torch', 'openvino'])
    parser.add_argument('--precisions', nargs='+', default=['fp32'], choices=['fp32', 'bf16'])
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (both backends)')
    parser.add_argument('--json', type=Path, default=Path('out/bench_resolution.json'))
    parser.add_argument('--case', help=argparse.SUPPRESS)  # NETWORK|VIEWS|BACKEND|PRECISION
    args = parser.parse_args()
    if args.case:
        network, views, backend, precision = args.case.split('|')
        print(json.dumps(run_case(network, int(views), backend, precision, args.repeats,
                                  args.threads)))
        return
    print(f'{"network":>15} {"views":>5} {"backend":>9} {"precision":>9} {"median ms":>10} '
          f'{"ready s":>8} {"forward MiB":>11} {"peak RSS MiB":>12}', flush=True)
    rows = []
    for network in args.networks:
        for views in args.views:
            if views == 1 and network == 'F-128 fuse@128' and 'F-128 fuse@32' in args.networks:
                continue  # one view: no fusion, the same network as fuse@32
            for backend in args.backends:
                for precision in args.precisions:
                    command = [sys.executable, __file__, '--case',
                               f'{network}|{views}|{backend}|{precision}',
                               '--repeats', str(args.repeats)]
                    if args.threads:
                        command += ['--threads', str(args.threads)]
                    done = subprocess.run(command, capture_output=True, text=True, check=False)
                    if done.returncode != 0:
                        print(f'{network} {views} {backend} {precision} failed:\n'
                              f'{done.stderr[-2000:]}', flush=True)
                        continue
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    ran = '' if row['ran'] == f'{backend} {precision}' else \
                        f' (ran {row["ran"]})'
                    print(f'{network:>15} {views:>5} {backend:>9} {precision:>9} '
                          f'{row["median_ms"]:>10.1f} {row["ready_s"]:>8.1f} '
                          f'{row["forward_mib"]:>11.1f} {row["peak_rss_mib"]:>12.1f}{ran}',
                          flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        'machine': {'cpu': platform.processor() or platform.machine(),
                    'cores': psutil.cpu_count(), 'torch': torch.__version__,
                    'load_average': list(psutil.getloadavg())},
        'rows': rows}, indent=1) + '\n')


if __name__ == '__main__':
    main()
