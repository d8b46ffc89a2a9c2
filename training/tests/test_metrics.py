"""IoU and F-Score@1% against values computed by hand on small grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2voxpp_training.metrics import (fscore, fscore_batch, fscore_points, iou_per_threshold,
                                        paired_bootstrap, summarize_iou, surface_mesh)


def test_iou_on_2x2x2_grids() -> None:
    gt = np.zeros((2, 2, 2))
    gt[0] = 1  # 4 occupied voxels
    pred = np.zeros((2, 2, 2))
    pred[0, 0, 0], pred[0, 0, 1], pred[0, 1, 0] = 0.9, 0.45, 0.25  # in gt
    pred[1, 1, 1] = 0.35  # outside gt
    ious = iou_per_threshold(pred, gt, (0.2, 0.3, 0.4, 0.5))
    # t=0.2: pred {000,001,010,111}: ∩3 ∪5; t=0.3: {000,001,111}: ∩2 ∪5;
    # t=0.4: {000,001}: ∩2 ∪4; t=0.5: {000}: ∩1 ∪4.
    np.testing.assert_allclose(ious, [3 / 5, 2 / 5, 2 / 4, 1 / 4])
    assert iou_per_threshold(gt, gt, (0.5,))[0] == 1.0
    assert iou_per_threshold(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), (0.5,))[0] == 1.0
    assert iou_per_threshold(np.zeros((2, 2, 2)), gt, (0.5,))[0] == 0.0
    batch = iou_per_threshold(torch.tensor(np.stack([pred, gt])), torch.tensor(np.stack([gt, gt])))
    np.testing.assert_allclose(batch, [[3 / 5, 2 / 5, 2 / 4, 1 / 4], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match='differ in shape'):
        iou_per_threshold(pred, np.zeros((3, 3, 3)))


def test_summary_picks_the_best_mean_threshold() -> None:
    ious = np.array([[0.6, 0.4, 0.5, 0.2],   # chair
                     [0.2, 0.6, 0.5, 0.2],   # chair
                     [0.1, 0.5, 0.5, 0.9]])  # table
    summary = summarize_iou(ious, ['chair', 'chair', 'table'])
    np.testing.assert_allclose(summary.per_category['chair'], [0.4, 0.5, 0.5, 0.2])
    np.testing.assert_allclose(summary.per_category['table'], [0.1, 0.5, 0.5, 0.9])
    np.testing.assert_allclose(summary.overall, [0.3, 0.5, 0.5, 1.3 / 3])  # over samples
    assert summary.best_threshold == 0.3 and summary.best_iou == pytest.approx(0.5)  # first tie
    assert summary.counts == {'chair': 2, 'table': 1}


def _cube(size: int, offset: int = 0) -> np.ndarray:
    grid = np.zeros((32, 32, 32), dtype=np.float32)
    lo = (32 - size) // 2
    grid[lo + offset:lo + offset + size, lo:lo + size, lo:lo + size] = 1.0
    return grid


def test_fscore_of_identical_and_empty_shapes() -> None:
    cube = _cube(16)
    assert fscore(cube, cube) == 1.0
    assert fscore(cube * 0.6, cube) == 1.0  # binarized at 0.3
    assert fscore(cube, np.zeros_like(cube)) == 0.0
    assert fscore(np.zeros_like(cube), cube) == 0.0
    assert fscore(np.zeros_like(cube), np.zeros_like(cube)) == 1.0
    assert fscore(cube * 0.2, cube) == 0.0  # below the binarization threshold: empty
    np.testing.assert_array_equal(fscore_batch(np.stack([cube, cube]),
                                               np.stack([cube, np.zeros_like(cube)])), [1, 0])


def test_surface_is_scaled_to_the_unit_cube() -> None:
    vertices, _ = surface_mesh(_cube(16))
    np.testing.assert_allclose(vertices.min(0), [0.25] * 3)
    np.testing.assert_allclose(vertices.max(0), [0.75] * 3)
    full, _ = surface_mesh(np.ones((32, 32, 32)))
    np.testing.assert_allclose(full.min(0), [0.0] * 3)
    np.testing.assert_allclose(full.max(0), [1.0] * 3)


def test_fscore_of_point_sets_by_hand() -> None:
    target = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    predicted = np.array([[0.0, 0.005, 0], [1, 0.5, 0]])
    # precision: 1 of 2 predicted points within 0.01; recall: 1 of 4 target points.
    p, r = 0.5, 0.25
    assert fscore_points(predicted, target, distance=0.01) == pytest.approx(2 * p * r / (p + r))
    assert fscore_points(predicted, target, distance=0.6) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert fscore_points(predicted[:0], target) == 0.0


@pytest.mark.parametrize('shift, distance', [(8, 0.05), (4, 0.05)])
def test_fscore_of_a_shifted_cube(shift: int, distance: float) -> None:
    """A cube of side s = 0.5 against itself moved by δ along x, threshold d.

    Per surface (the other is symmetric): the four faces parallel to x are covered by the other
    cube's faces except a strip of width δ - d; the face inside the other cube is within d of it
    only along its border (area s² - (s - 2d)²); the outer face is δ > d away. So
    F = P = R = (4 s (s - δ + d) + s² - (s - 2d)²) / (6 s²). Marching cubes bevels the edges and
    8192 samples see point-to-point distances, so allow a few percent.
    """
    s, delta = 0.5, shift / 32
    expected = (4 * s * (s - delta + distance) + s ** 2 - (s - 2 * distance) ** 2) / (6 * s ** 2)
    value = fscore(_cube(16), _cube(16, offset=shift), distance=distance)
    assert value == pytest.approx(expected, abs=0.025)
    assert fscore(_cube(16), _cube(16, offset=shift), distance=distance, seed=1) \
        == pytest.approx(expected, abs=0.025)


def test_paired_bootstrap_interval() -> None:
    constant = paired_bootstrap(np.full(50, 0.02))
    assert (constant.mean, constant.low, constant.high) == pytest.approx((0.02, 0.02, 0.02))
    rng = np.random.default_rng(3)
    differences = rng.normal(0.01, 0.05, size=400)
    interval = paired_bootstrap(differences, resamples=4000, seed=1)
    assert interval.mean == pytest.approx(differences.mean())
    half_width = 1.96 * differences.std(ddof=1) / np.sqrt(len(differences))  # normal theory
    assert interval.low == pytest.approx(interval.mean - half_width, abs=0.2 * half_width)
    assert interval.high == pytest.approx(interval.mean + half_width, abs=0.2 * half_width)
    assert paired_bootstrap(differences, resamples=4000, seed=1) == interval  # seeded
    with pytest.raises(ValueError, match='no differences'):
        paired_bootstrap(np.array([]))
