"""Scores of a reconstruction against the truth, shared by the demo, the bag tool and benchmarks.

IoU follows the released test code: a grid is occupied where ``p >= threshold``, IoU is
``|pred ∧ gt| / |pred ∨ gt|``, and an empty prediction of an empty truth scores 1. This module
owns that formula (:func:`iou`, :func:`iou_at` and the batched :func:`iou_per_threshold` that
training averages), turning published voxel-centre points back into a grid to score
(:func:`cloud_to_voxels`) and the printed line of a score (:func:`format_score`). Placed
reconstructions are scored in the fixed frame (:func:`score_placement`: world IoU, position, size
and heading errors; :func:`placement_summary` their means, medians and p90s), as the demo and
``benchmarks/placement_table.py`` report them. numpy only.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .placement import ObjectPose
from .voxels import SHAPENET_TO_ROS

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


def placed_cloud_to_voxels(points: np.ndarray, pose: ObjectPose) -> np.ndarray:
    """Turn a placed cloud's voxel centres (fixed frame, metres) back into its grid.

    The inverse of publishing a grid at ``pose`` (``placement: calibrated``): each point is moved
    into the grid frame and indexed as :func:`cloud_to_voxels` does at the pose's size.

    :param points: ``(N, 3)`` centres in the fixed frame.
    :returns: ``(32, 32, 32)`` bool; index ``[a, b, c]`` runs along the grid's ROS x, y, z.
    """
    local = (np.asarray(points, dtype=np.float64).reshape(-1, 3)
             - np.asarray(pose.position)) @ pose.rotation()  # (N, 3) grid frame, metres
    return cloud_to_voxels(local, pose.size_m)


def ros_grid_to_shapenet(grid: np.ndarray) -> np.ndarray:
    """Invert :func:`pix2voxpp_ros.core.voxels.grid_to_ros_axes` (a transpose, no resampling)."""
    order = [int(np.argmax(row)) for row in SHAPENET_TO_ROS]  # ROS axis i reads ShapeNet order[i]
    return np.ascontiguousarray(grid.transpose(np.argsort(order)))


def format_score(name: str, value: float, points: int, truth_voxels: int, *,
                 detail: str = '') -> str:
    """One line of the IoU table (the demo's and ``pix2voxpp-bag --truth-topic``'s)."""
    return (f'  {name:<14} IoU {value:.3f}  ({points} voxels reconstructed, {truth_voxels} '
            f'true{detail})')


# --- placed reconstructions: scores in the fixed frame ------------------------------------------

def _occupied_at(grid: np.ndarray, pose: ObjectPose, points: np.ndarray) -> np.ndarray:
    """Whether fixed-frame ``points (N, 3)`` fall in an occupied voxel of a placed grid."""
    local = (points - np.asarray(pose.position)) @ pose.rotation() / pose.size_m  # ROS axes
    index = np.floor((local @ SHAPENET_TO_ROS + 0.5) * grid.shape[0]).astype(np.int64)
    inside = ((index >= 0) & (index < grid.shape[0])).all(axis=1)
    hit = np.zeros(len(points), dtype=bool)
    hit[inside] = grid[tuple(index[inside].T)]
    return hit


def _corners(pose: ObjectPose) -> np.ndarray:
    signs = np.array([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)])
    return pose.to_fixed(signs)


def world_iou(grid: np.ndarray, pose: ObjectPose, truth: np.ndarray, truth_pose: ObjectPose,
              *, samples: int = 96) -> float:
    """Return the IoU of two placed grids in the fixed frame, sampled on a common lattice.

    The lattice spans both grids' bounding boxes with ``samples`` points along its longest
    side, so it is finer than the smaller grid's voxels when the sizes are alike.

    :param grid: ``(D, D, D)`` bool, ShapeNet axes, placed at ``pose``.
    :param truth: ``(D', D', D')`` bool, ShapeNet axes, placed at ``truth_pose``.
    """
    corners = np.concatenate([_corners(pose), _corners(truth_pose)])
    low, high = corners.min(axis=0), corners.max(axis=0)
    step = float((high - low).max()) / samples
    axes = [np.arange(lo + step / 2, hi, step) for lo, hi in zip(low, high)]
    lattice = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)
    a = _occupied_at(np.asarray(grid, dtype=bool), pose, lattice)
    b = _occupied_at(np.asarray(truth, dtype=bool), truth_pose, lattice)
    return float(_ratio(np.count_nonzero(a & b), np.count_nonzero(a | b)))


def heading_symmetries(truth: np.ndarray, *, min_iou: float = 0.98,
                       round_iou: float = 0.85) -> tuple[float, ...] | None:
    """Return the headings (radians) under which an object looks the same, from its true grid.

    The grid is turned about the vertical line through its voxels' centroid (resampled, as
    :func:`world_iou` compares placed grids): each quarter turn whose IoU with the grid is at
    least ``min_iou`` is a symmetry. An object the same under a quarter turn whose eighth turn
    still has an IoU of ``round_iou`` counts as round: None, its heading is undefined (a
    bottle; a mug is not, by its handle).

    :param truth: ``(D, D, D)`` bool, ShapeNet axes (y up).
    :returns: the symmetric headings, 0 included; None for a rotationally symmetric object.
    """
    truth = np.asarray(truth, dtype=bool)
    centre = ((np.argwhere(truth) + 0.5) / truth.shape[0] - 0.5).mean(axis=0) @ SHAPENET_TO_ROS.T
    centre[2] = 0.0
    origin = ObjectPose((0.0, 0.0, 0.0), 0.0, 1.0)

    def turned(angle: float) -> float:
        pose = ObjectPose((0.0, 0.0, 0.0), angle, 1.0)
        moved = ObjectPose(tuple(centre - pose.rotation() @ centre), angle, 1.0)
        return world_iou(truth, origin, truth, moved, samples=64)
    turns = [0.0] + [k * np.pi / 2 for k in (1, 2, 3) if turned(k * np.pi / 2) >= min_iou]
    if len(turns) == 4 and turned(np.pi / 4) >= round_iou:
        return None
    return tuple(turns)


def heading_error_deg(heading_rad: float, truth_rad: float,
                      symmetries: Sequence[float] | None) -> float | None:
    """Smallest angle between two headings, modulo the object's symmetries; None if round."""
    if symmetries is None:
        return None
    errors = [abs(np.remainder(heading_rad - truth_rad - s + np.pi, 2 * np.pi) - np.pi)
              for s in symmetries]
    return float(np.degrees(min(errors)))


@dataclass(frozen=True)
class PlacementScore:
    """A placed reconstruction against the truth, in the fixed frame.

    :ivar size_m: the true edge of the object's 32³ grid, metres (its largest extent); relative
        errors are relative to it.
    :ivar world_iou: IoU of the placed grid and the true grid at the true placement
        (:func:`world_iou`).
    :ivar position_error_m: distance between the grids' centres, metres.
    :ivar size_error: estimated edge / true edge − 1.
    :ivar heading_error_deg: smallest heading error modulo the object's symmetries; None for a
        rotationally symmetric object (:func:`heading_symmetries`).
    :ivar symmetric_headings: how many quarter turns look alike (1: none); None when round.
    """

    size_m: float
    world_iou: float
    position_error_m: float
    size_error: float
    heading_error_deg: Optional[float]
    symmetric_headings: Optional[int]

    @property
    def position_error_rel(self) -> float:
        """Position error as a fraction of the true size."""
        return self.position_error_m / self.size_m

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        """Return the fields rounded to ``digits`` (None stays None), for JSON."""
        return round_floats(dict(vars(self)), digits)


def score_placement(grid: np.ndarray, pose: ObjectPose, truth: np.ndarray,
                    truth_pose: ObjectPose) -> PlacementScore:
    """Score a placed grid against the true grid at its true placement.

    :param grid: ``(D, D, D)`` bool, ShapeNet axes, placed at ``pose``.
    :param truth: ``(D', D', D')`` bool, ShapeNet axes, standing at ``truth_pose``.
    """
    truth = np.asarray(truth, dtype=bool)
    symmetries = heading_symmetries(truth)
    return PlacementScore(
        size_m=float(truth_pose.size_m),
        world_iou=world_iou(grid, pose, truth, truth_pose),
        position_error_m=float(np.linalg.norm(np.subtract(pose.position, truth_pose.position))),
        size_error=float(pose.size_m / truth_pose.size_m - 1.0),
        heading_error_deg=heading_error_deg(pose.heading_rad, truth_pose.heading_rad,
                                            symmetries),
        symmetric_headings=None if symmetries is None else len(symmetries))


def _spread(values: Sequence[float]) -> dict[str, Optional[float]]:
    """Mean, median and 90th percentile (linear) of ``values``; None each when empty."""
    if not values:
        return {'mean': None, 'median': None, 'p90': None}
    return {'mean': statistics.fmean(values), 'median': statistics.median(values),
            'p90': float(np.percentile(np.asarray(values, dtype=np.float64), 90))}


def placement_summary(scores: Sequence[PlacementScore]) -> dict[str, Any]:
    """Means, medians and p90s of placement scores (relative errors: of the true size).

    :returns: ``world_iou``, ``position_error_rel``, ``size_error_abs`` (of ``|size_error|``)
        and ``heading_error_deg`` (over the objects that have one; ``objects`` counts them),
        each ``{'mean', 'median', 'p90'}``; ``position_error_m`` likewise.
    """
    headings = [s.heading_error_deg for s in scores if s.heading_error_deg is not None]
    return {
        'world_iou': _spread([s.world_iou for s in scores]),
        'position_error_m': _spread([s.position_error_m for s in scores]),
        'position_error_rel': _spread([s.position_error_rel for s in scores]),
        'size_error_abs': _spread([abs(s.size_error) for s in scores]),
        'heading_error_deg': dict(_spread(headings), objects=len(headings)),
    }


def round_floats(value: Any, digits: int = 4) -> Any:
    """Round every float in nested dicts and lists (for JSON); NaN becomes None."""
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    return value
