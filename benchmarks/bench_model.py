"""Benchmark the Pix2Vox++ forward: batched against a per-view loop, or backends and precisions.

Without ``--backends``, the baseline is what a direct port of the reference implementation does:
every view goes through encoder, decoder and merger scoring one at a time in a Python loop, and
the merger runs even for a single view. Both use the same weights and inputs; runs are interleaved
so machine noise hits both. Prints median latencies (ms), the speed-up and peak memory (CUDA:
allocator peak; CPU: peak resident-set growth sampled every millisecond).

With ``--backends``, every backend × precision runs through ``Reconstructor.infer`` (host arrays in
and out, as the node calls it) on the same weights and inputs, interleaved, and is compared with
PyTorch fp32 of the same run: median ms, ratio (PyTorch fp32 ms / this ms) and the largest
difference of the grids.

    .venv/bin/python benchmarks/bench_model.py [--variants F A] [--views 1 3 8 20] [--repeats 5]
        [--device auto] [--precision fp32] [--json out/bench_model.json]
    .venv/bin/python benchmarks/bench_model.py --backends torch openvino --precisions fp32 bf16
        [--variants F A] [--views 1 3 8] [--device cpu]

Rows go to ``--json`` as well.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import psutil
import torch

from pix2voxpp_ros.core.backends import BACKENDS
from pix2voxpp_ros.core.checkpoint import LoadedCheckpoint, WeightsMetadata
from pix2voxpp_ros.core.inference import PRECISIONS, Reconstructor, resolve_device
from pix2voxpp_ros.core.model import ModelConfig, Pix2VoxPP, build_model


def per_view_loop(model: Pix2VoxPP, images: torch.Tensor) -> torch.Tensor:
    """Reference-style forward: one view at a time, merger always applied."""
    coarse, scores = [], []
    for v in range(images.shape[1]):
        volume, context = model.decoder(model.encoder(images[:, v]))
        coarse.append(volume)
        if model.merger is not None:
            scores.append(model.merger.scores(context))
    stacked = torch.stack(coarse, dim=1)
    if model.merger is not None:
        weights = torch.softmax(torch.stack(scores, dim=1), dim=1)
        fused = (stacked * weights).sum(dim=1).clamp(0, 1)
    else:
        fused = stacked.mean(dim=1)
    return model.refiner(fused) if model.refiner is not None else fused


class PeakMemory:
    """Peak memory growth during a block: CUDA allocator peak, or sampled CPU RSS."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()

    def _sample(self, process: psutil.Process, base: int) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss - base)
            time.sleep(0.001)

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            process = psutil.Process()
            self._thread = threading.Thread(target=self._sample,
                                            args=(process, process.memory_info().rss),
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()


def time_once(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    """Seconds for one call, synchronised on CUDA."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bench(variant: str, views: int, *, device: torch.device, precision: str,
          repeats: int) -> dict:
    """Time batched and per-view-loop forwards of one configuration, interleaved."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.for_variant(variant)).to(device).eval()
    images = torch.randn(1, views, 3, 224, 224, device=device)
    dtype = PRECISIONS[precision]

    def run(fn: Callable[[Pix2VoxPP, torch.Tensor], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                        enabled=dtype is not None):
                return fn(model, images)
        return call

    batched, looped = run(lambda m, x: m(x)), run(per_view_loop)
    with torch.inference_mode():
        difference = float((batched() - looped()).abs().max())  # also the warm-up
    memory = {}
    for name, fn in (('batched', batched), ('loop', looped)):
        with PeakMemory(device) as peak:
            fn()
        memory[name] = peak.peak_bytes / 2**20
    times: dict[str, list[float]] = {'batched': [], 'loop': []}
    for _ in range(repeats):
        times['batched'].append(time_once(batched, device))
        times['loop'].append(time_once(looped, device))
    batched_ms = statistics.median(times['batched']) * 1000
    loop_ms = statistics.median(times['loop']) * 1000
    return {'variant': variant, 'views': views, 'batched_ms': round(batched_ms, 1),
            'loop_ms': round(loop_ms, 1), 'speedup': round(loop_ms / batched_ms, 2),
            'batched_peak_mib': round(memory['batched'], 1),
            'loop_peak_mib': round(memory['loop'], 1), 'max_abs_difference': difference}


def bench_backends(variant: str, views_list: list[int], *, device: torch.device,
                   backends: list[str], precisions: list[str], repeats: int,
                   cache_dir: Path | None) -> list[dict]:
    """Time every backend × precision of one variant against PyTorch fp32, interleaved."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.for_variant(variant)).eval()
    loaded = LoadedCheckpoint(model, WeightsMetadata(), 'project', {})
    configs = [('torch', 'fp32')] + [(b, p) for b in backends for p in precisions
                                     if (b, p) != ('torch', 'fp32')]
    runs = {}
    for backend, precision in configs:
        start = time.perf_counter()
        runs[backend, precision] = Reconstructor(
            loaded, device=str(device), backend=backend, precision=precision,
            cache_dir=cache_dir, warmup_views=0)
        print(f'  /{variant} {backend} {precision}: ready in {time.perf_counter() - start:.1f} s'
              f' (runs {runs[backend, precision].backend} '
              f'{runs[backend, precision].precision})', flush=True)
    rows = []
    for views in views_list:
        images = np.random.default_rng(views).uniform(
            -1, 1, (1, views, 3, 224, 224)).astype(np.float32)
        reference = runs['torch', 'fp32'].infer(images)
        outputs = {key: run.infer(images) for key, run in runs.items()}  # also the warm-up
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
        for _ in range(repeats):
            for key, run in runs.items():
                start = time.perf_counter()
                run.infer(images)
                times[key].append(time.perf_counter() - start)
        base_ms = statistics.median(times['torch', 'fp32']) * 1000
        for key, run in runs.items():
            ms = statistics.median(times[key]) * 1000
            rows.append({'variant': variant, 'views': views, 'backend': key[0],
                         'precision': key[1], 'ran': f'{run.backend} {run.precision}',
                         'median_ms': round(ms, 1), 'ratio': round(base_ms / ms, 2),
                         'max_abs_difference': float(np.abs(outputs[key] - reference).max())})
    return rows


def main_backends(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Run and print the backend table."""
    print(f'{"model":>5} {"views":>5} {"backend":>9} {"precision":>9} {"ms":>8} '
          f'{"x torch fp32":>12} {"max |diff|":>10}')
    rows = []
    for variant in args.variants:
        found = bench_backends(variant, args.views, device=device, backends=args.backends,
                               precisions=args.precisions, repeats=args.repeats,
                               cache_dir=args.cache_dir)
        for row in found:
            ran = '' if row['ran'] == f'{row["backend"]} {row["precision"]}' else \
                f' (ran {row["ran"]})'
            print(f'{"/" + variant:>5} {row["views"]:>5} {row["backend"]:>9} '
                  f'{row["precision"]:>9} {row["median_ms"]:>8.1f} {row["ratio"]:>11.2f}x '
                  f'{row["max_abs_difference"]:>10.2g}{ran}', flush=True)
        rows += found
    return rows


def main() -> None:
    """Parse arguments, run every configuration, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variants', nargs='+', default=['F', 'A'], choices=['F', 'A'])
    parser.add_argument('--views', nargs='+', type=int, default=[1, 3, 8, 20])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--precision', default='fp32', choices=sorted(PRECISIONS))
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--json', type=Path, default=Path('out/bench_model.json'))
    parser.add_argument('--backends', nargs='+', choices=[b for b in BACKENDS if b != 'auto'],
                        help='compare these backends against PyTorch fp32 (table of ratios)')
    parser.add_argument('--precisions', nargs='+', default=['fp32'], choices=sorted(PRECISIONS),
                        help='with --backends: the precisions to run each backend in')
    parser.add_argument('--cache-dir', type=Path, default=None,
                        help='with --backends: converted-model cache (default: the usual one)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor()
    print(f'device {device} ({name or platform.machine()}), precision '
          f'{" ".join(args.precisions) if args.backends else args.precision}, '
          f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, '
          f'median of {args.repeats}')
    if args.backends:
        rows = main_backends(args, device)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'device': str(device), 'device_name': name,
                                         'torch': torch.__version__,
                                         'threads': torch.get_num_threads(), 'rows': rows},
                                        indent=2))
        print(f'wrote {args.json}')
        return
    header = (f'{"model":>5} {"views":>5} {"batched ms":>11} {"loop ms":>9} {"speed-up":>8} '
              f'{"batched MiB":>11} {"loop MiB":>9}')
    print(header)
    rows = []
    for variant in args.variants:
        for views in args.views:
            row = bench(variant, views, device=device, precision=args.precision,
                        repeats=args.repeats)
            rows.append(row)
            print(f'{"/" + variant:>5} {views:>5} {row["batched_ms"]:>11.1f} '
                  f'{row["loop_ms"]:>9.1f} {row["speedup"]:>7.2f}x '
                  f'{row["batched_peak_mib"]:>11.1f} {row["loop_peak_mib"]:>9.1f}', flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({'device': str(device), 'device_name': name,
                                     'precision': args.precision, 'torch': torch.__version__,
                                     'threads': torch.get_num_threads(), 'rows': rows},
                                    indent=2))
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
