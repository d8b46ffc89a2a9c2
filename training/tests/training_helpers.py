"""Helpers of the training tests: the configs folder and test-sized configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pix2voxpp_training.config import TrainConfig, apply_overrides, load_config

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'

# Small enough for a 2-core CPU: batches of 2-4 single objects, no worker processes.
SMALL = {
    'data.workers': 0,
    'precision': 'fp32',  # exact comparisons (resume, DDP); bf16 has its own test
    'stage1.batch_size': 4, 'stage1.epochs': 1, 'stage1.val_every': 1,
    'stage2.batch_size': 2, 'stage2.epochs': 1, 'stage2.val_every': 1,
    'stage2.min_views': 2, 'stage2.max_views': 3, 'stage2.val_views': 2,
}


def small_config(**overrides: Any) -> TrainConfig:
    """synthetic_f.yaml shrunk to test size; keyword names use '__' for '.'."""
    values = dict(SMALL)
    values.update({key.replace('__', '.'): value for key, value in overrides.items()})
    return load_config(CONFIGS / 'synthetic_f.yaml', values)


def config_dict(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """Return ``config`` with dotted overrides (keyword names use '__' for '.')."""
    return TrainConfig.from_dict(apply_overrides(
        config.to_dict(), {k.replace('__', '.'): v for k, v in overrides.items()}))
