"""Scores of a reconstruction against the truth, shared by the demo, the bag tool and benchmarks.

IoU follows the released test code: a grid is occupied where ``p >= threshold``, IoU is
``|pred ∧ gt| / |pred ∨ gt|``, and an empty prediction of an empty truth scores 1. This module
owns that formula (:func:`iou`, :func:`iou_at` and the batched :func:`iou_per_threshold` that
training averages), turning published voxel-centre points back into a grid to score
(:func:`cloud_to_voxels`) and the printed line of a score (:func:`format_score`). numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

RESOLUTION = 32  # the network's grid edge in voxels


def _ratio(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Return the IoU of voxel counts, elementwise; 1 where the union is empty (float64)."""
    intersection = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    return np.where(union > 0, intersection / np.maximum(union, 1.0), 1.0)


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean grids of one shape (1.0 when both are empty).

    :raises ValueError: the shapes differ.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f'prediction {prediction.shape} and truth {truth.shape} differ in shape')
    union = np.logical_or(prediction, truth).sum()
    return float(_ratio(np.logical_and(prediction, truth).sum(), union))


def iou_at(probabilities: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """Return the IoU of ``probabilities >= threshold`` with a boolean (or 0/1) truth."""
    return iou(probabilities >= threshold, truth.astype(bool, copy=False))


def iou_per_threshold(prediction: np.ndarray, target: np.ndarray,
                      thresholds: Sequence[float]) -> np.ndarray:
    """Compute the IoU of each sample at each threshold.

    The prediction is compared in float32 (as the network gives it): a float64 input and a
    threshold are rounded to float32 first, so every caller thresholds alike.

    :param prediction: ``(B, D, H, W)`` occupancy probabilities (or ``(D, H, W)``).
    :param target: ground truth of the same shape; nonzero is occupied.
    :returns: ``(B, T)`` float64 (``(T,)`` for a single grid).
    :raises ValueError: shapes differ.
    """
    prediction = np.asarray(prediction, dtype=np.float32)
    target = np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(f'prediction {tuple(prediction.shape)} and target '
                         f'{tuple(target.shape)} differ in shape')
    single = prediction.ndim == 3
    if single:
        prediction, target = prediction[None], target[None]
    gt = target.reshape(len(target), -1) > 0  # (B, N)
    pred = prediction.reshape(len(prediction), -1)  # (B, N)
    out = np.empty((pred.shape[0], len(thresholds)), dtype=np.float64)  # (B, T)
    for column, threshold in enumerate(thresholds):
        occupied = pred >= np.float32(threshold)
        out[:, column] = _ratio(np.count_nonzero(occupied & gt, axis=1),
                                np.count_nonzero(occupied | gt, axis=1))
    return out[0] if single else out


def cloud_to_voxels(points: np.ndarray, object_size_m: float) -> np.ndarray:
    """Turn voxel-centre points (ROS axes, metres) back into a boolean grid indexed in ROS axes.

    :param points: ``(N, 3)`` centres as the node publishes them.
    :returns: ``(32, 32, 32)`` bool; index ``[a, b, c]`` runs along ROS x, y, z.
    """
    grid = np.zeros((RESOLUTION,) * 3, dtype=bool)
    if len(points):
        index = np.floor((points / object_size_m + 0.5) * RESOLUTION).astype(int)
        index = np.clip(index, 0, RESOLUTION - 1)
        grid[index[:, 0], index[:, 1], index[:, 2]] = True
    return grid


def format_score(name: str, value: float, points: int, truth_voxels: int, *,
                 detail: str = '') -> str:
    """One line of the IoU table (the demo's and ``pix2voxpp-bag --truth-topic``'s)."""
    return (f'  {name:<14} IoU {value:.3f}  ({points} voxels reconstructed, {truth_voxels} '
            f'true{detail})')
