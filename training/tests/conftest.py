"""Shared fixtures: a tiny synthetic dataset in the ShapeNet layout and a small configuration."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.voxels import write_binvox
from pix2voxpp_training.config import TrainConfig, apply_overrides, load_config

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'

# Small enough for a 2-core CPU: batches of 2-4 single objects, no worker processes.
SMALL = {
    'data.workers': 0,
    'stage1.batch_size': 4, 'stage1.epochs': 1, 'stage1.val_every': 1,
    'stage2.batch_size': 2, 'stage2.epochs': 1, 'stage2.val_every': 1,
    'stage2.min_views': 2, 'stage2.max_views': 3, 'stage2.val_views': 2,
}


def write_box_dataset(root: Path, *, per_category: int = 6, seed: int = 0) -> None:
    """Write a stand-in for the project's generator in the same layout: boxes drawn as rectangles.

    Used only when ``pix2voxpp_ros.core.synthetic`` fails, so that these tests check the
    training package rather than the generator (which has its own tests).
    """
    rng = np.random.default_rng(seed)
    taxonomy = []
    for number, name in enumerate(('table', 'chair'), start=1):
        taxonomy_id = f'9000000{number}'
        ids = [f'{name}{index:04d}' for index in range(per_category)]
        for model_id in ids:
            lo = rng.integers(4, 12, size=3)
            hi = lo + rng.integers(8, 18, size=3)
            grid = np.zeros((32, 32, 32), dtype=bool)
            grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
            voxels = root / 'ShapeNetVox32' / taxonomy_id / model_id
            voxels.mkdir(parents=True)
            write_binvox(voxels / 'model.binvox', grid)
            renderings = root / 'ShapeNetRendering' / taxonomy_id / model_id / 'rendering'
            renderings.mkdir(parents=True)
            colour = [int(c) for c in rng.integers(0, 200, size=3)]
            for view in range(24):
                image = np.zeros((137, 137, 4), dtype=np.uint8)
                x0, y0 = 20 + int(lo[0]) + view % 5, 20 + int(lo[1])
                cv2.rectangle(image, (x0, y0), (x0 + 3 * int(hi[2] - lo[2]), y0 + 3 * int(
                    hi[1] - lo[1])), (*colour, 255), thickness=-1)
                cv2.imwrite(str(renderings / f'{view:02d}.png'), image)
            (renderings / 'renderings.txt').write_text(
                ''.join(f'{view:02d}.png\n' for view in range(24)))
            (renderings / 'rendering_metadata.txt').write_text(
                ''.join(f'{15.0 * view} 27.0 0 0.8 25\n' for view in range(24)))
        taxonomy.append({'taxonomy_id': taxonomy_id, 'taxonomy_name': name,
                         'baseline': {'1-view': 0.0}, 'train': ids[:-2], 'val': ids[-2:-1],
                         'test': ids[-1:]})
    (root / 'ShapeNet.json').write_text(json.dumps(taxonomy, indent=2))


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two categories × 6 objects (4 train, 1 val, 1 test each), written by the generator."""
    root = tmp_path_factory.mktemp('synthetic')
    try:
        if os.environ.get('PIX2VOXPP_TEST_BOX_DATA'):
            raise RuntimeError('PIX2VOXPP_TEST_BOX_DATA is set')
        from pix2voxpp_ros.core.synthetic import write_dataset

        write_dataset(root, per_category=6, seed=3, categories=['table', 'chair'],
                      progress=False)
    except Exception as exc:  # noqa: BLE001 - any generator failure: fall back, say so
        warnings.warn(f'synthetic generator failed ({type(exc).__name__}: {exc}); '
                      'using the box stand-in dataset', stacklevel=1)
        root = tmp_path_factory.mktemp('boxes')
        write_box_dataset(root)
    return root


@pytest.fixture
def device() -> torch.device:
    """Return the CPU device: tests run there (the training package must pass without a GPU)."""
    return torch.device('cpu')


def small_config(**overrides: Any) -> TrainConfig:
    """synthetic_f.yaml shrunk to test size; keyword names use '__' for '.'."""
    values = dict(SMALL)
    values.update({key.replace('__', '.'): value for key, value in overrides.items()})
    return load_config(CONFIGS / 'synthetic_f.yaml', values)


def config_dict(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """Return ``config`` with dotted overrides (keyword names use '__' for '.')."""
    return TrainConfig.from_dict(apply_overrides(
        config.to_dict(), {k.replace('__', '.'): v for k, v in overrides.items()}))
