"""Benchmark training steps: fp32 against bf16 autocast, per stage, on random data.

Measures what helps training on this CPU without a dataset: one optimizer step of stage 1
(single view, merger off) and of stage 2 (``--views`` views, merger on, encoder and decoder
frozen) of Pix2Vox++/F, alternating the variants so that machine noise hits all of them.

    .venv/bin/python benchmarks/bench_training.py [--batch 16] [--views 3] [--repeats 5]
        [--precisions fp32 bf16] [--stages 1 2]

Prints the median seconds per step and samples per second of each variant, and the ratio to
fp32 of the same stage measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pix2voxpp_training.config import TrainConfig
from pix2voxpp_training.engine import (ReconstructionModule, apply_memory_format,
                                       freeze_for_stage, make_optimizer, set_train_mode,
                                       stage_model_config, train_step)
from pix2voxpp_ros.core.model import build_model


def make_stage(stage: int, precision: str) -> tuple:
    """Build the network, module and optimizer of a stage as training does (CPU)."""
    config = TrainConfig()
    torch.manual_seed(0)
    model = build_model(stage_model_config(config, stage))
    freeze_for_stage(model, stage)
    apply_memory_format(model, channels_last_3d=True)
    optimizer = make_optimizer(model, config.stage(stage))
    return model, ReconstructionModule(model), optimizer


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--views', type=int, default=3, help='views per sample in stage 2')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'])
    parser.add_argument('--stages', nargs='+', type=int, default=[1, 2])
    args = parser.parse_args()
    device = torch.device('cpu')
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}')
    for stage in args.stages:
        views = 1 if stage == 1 else args.views
        batch = {'images': torch.randn(args.batch, views, 3, 224, 224),
                 'volume': (torch.rand(args.batch, 32, 32, 32) > 0.7).float()}
        variants = {p: make_stage(stage, p) for p in args.precisions}
        times: dict[str, list[float]] = {p: [] for p in args.precisions}
        for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
            for precision, (model, module, optimizer) in variants.items():
                set_train_mode(model, stage)
                start = time.perf_counter()
                train_step(module, batch, optimizer, device=device, precision=precision)
                if repeat:
                    times[precision].append(time.perf_counter() - start)
        base = statistics.median(times[args.precisions[0]])
        for precision in args.precisions:
            median = statistics.median(times[precision])
            print(f'stage {stage}, {views} view(s), {precision}: {median:.3f} s/step, '
                  f'{args.batch / median:.1f} samples/s, {base / median:.2f}x '
                  f'{args.precisions[0]}')


if __name__ == '__main__':
    main()
