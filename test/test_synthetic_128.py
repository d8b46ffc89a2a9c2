"""Synthetic data at 128³: solid grids in the 32³ conventions, objects built for 128³, datasets.

How a 128³ grid relates to the 32³ grid of the same object, pooled by 4 per axis: every voxel of
the 32³ grid holds a voxel of the 128³ grid ("any"; no exception in 8 objects of every category,
built for either grid), and the majority rule of the 128³ grid gives the 32³ grid back up to the
few cells where a round or tilted part fills about half a 32³ voxel (8 objects of every category
built for 32³: at most 1.6 % of the voxels missing, a sofa, and 5.9 % added, a chair; the
occupied volume differs by at most 5.8 %, a lamp). Objects built for 128³ have parts thinner than
a 32³ voxel, which their 32³ grid draws a whole voxel thick, so only "any" holds for them.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pix2voxpp_ros.core.synthetic import (CATEGORIES, category, dataset_object, make_object,
                                          model_id, voxelize, write_dataset)
from pix2voxpp_ros.core.synthetic.dataset import DatasetError
from pix2voxpp_ros.core.voxels import pool_grid, read_binvox


@pytest.fixture(scope='module')
def grids() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Map each category to its seed-1 object's 32³ grid, 128³ grid, and the 128³-built grid."""
    out = {}
    for name in CATEGORIES:
        obj = make_object(name, seed=1)
        fine = make_object(name, seed=1, resolution=128)
        out[name] = (voxelize(obj), voxelize(obj, resolution=128),
                     voxelize(fine, resolution=128))
    return out


@pytest.mark.parametrize('name', CATEGORIES)
def test_128_grid_pooled_by_4_gives_the_32_grid(grids, name: str) -> None:
    coarse, fine, _ = grids[name]
    assert fine.shape == (128, 128, 128) and fine.dtype == bool
    any_rule = pool_grid(fine, 4)
    majority = pool_grid(fine, 4, reduce='mean') >= 0.5
    assert not (coarse & ~any_rule).any()  # every 32³ voxel holds a 128³ voxel
    assert not (majority & ~any_rule).any()
    assert (coarse & ~majority).sum() <= 0.03 * coarse.sum()
    assert (majority & ~coarse).sum() <= 0.08 * coarse.sum()
    assert abs(fine.sum() / 64 - coarse.sum()) <= 0.08 * coarse.sum()  # the same volume


@pytest.mark.parametrize('name', CATEGORIES)
def test_objects_built_for_128_keep_their_design(grids, name: str) -> None:
    """The same draws snapped to the finer lattice: same parts, bounds within a 32³ voxel."""
    coarse = make_object(name, seed=1)
    fine = make_object(name, seed=1, resolution=128)
    assert len(fine.parts) == len(coarse.parts)
    for ours, theirs in zip(fine.bounds(), coarse.bounds()):
        assert np.abs(ours - theirs).max() <= 1.5 / 32
    lo, hi = fine.bounds()
    assert lo.min() >= -0.5 - 1e-9 and hi.max() <= 0.5 + 1e-9
    grid = grids[name][2]
    assert grid.any() and grid.shape == (128, 128, 128)
    # Its 32³ grid (thin parts drawn conservatively there) lies within the any-pooled 128³ one.
    assert not (voxelize(fine) & ~pool_grid(grid, 4)).any()


def test_slabs_and_defaults_change_no_voxel(monkeypatch) -> None:
    obj = make_object('chair', seed=3)
    whole = voxelize(obj)
    assert np.array_equal(voxelize(obj, resolution=128), voxelize(obj, resolution=128,
                                                                  supersample=2))
    assert np.array_equal(whole, voxelize(obj, supersample=4))
    module = importlib.import_module('pix2voxpp_ros.core.synthetic.voxelize')  # not the function
    monkeypatch.setattr(module, '_MAX_BLOCK_SAMPLES', 5000)  # many thin slabs
    assert np.array_equal(voxelize(obj), whole)


def test_dataset_at_128(tmp_path: Path) -> None:
    summary = write_dataset(tmp_path / 'd', per_category=1, seed=3, categories=['car'],
                            views=2, resolution=128, progress=False)
    car = category('car').taxonomy_id
    mid = model_id(3, car, 0)
    assert summary.models == {car: [mid]}
    grid, translate, scale = read_binvox(tmp_path / 'd' / 'ShapeNetVox128' / car / mid
                                         / 'model.binvox')
    assert np.array_equal(grid, voxelize(dataset_object('car', 0, seed=3, resolution=128),
                                         resolution=128))
    assert tuple(translate) == (-0.5, -0.5, -0.5) and scale == 1.0
    assert not (tmp_path / 'd' / 'ShapeNetVox32').exists()
    assert sorted(p.name for p in (tmp_path / 'd' / 'ShapeNetRendering' / car / mid
                                   / 'rendering').iterdir())[:2] == ['00.png', '01.png']
    with pytest.raises(DatasetError, match='holds ShapeNetVox128: a 128³ dataset'):
        write_dataset(tmp_path / 'd', per_category=1, seed=3, categories=['car'], views=1,
                      progress=False)
    with pytest.raises(DatasetError, match='resolution must be 32 or 128, got 64'):
        write_dataset(tmp_path / 'e', per_category=1, seed=3, resolution=64, progress=False)


def test_cli_resolution_option(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, '-m', 'pix2voxpp_ros.cli.synth', '--out',
                          str(tmp_path / 'x'), '--per-category', '1', '--seed', '0',
                          '--resolution', '64'], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and 'invalid choice: 64' in run.stderr
