"""Reconstruction metrics: IoU at several thresholds and F-Score@1%, pure functions.

IoU follows the released test code: a prediction is occupied where ``p >= threshold``, IoU is
``|pred ∧ gt| / |pred ∨ gt|`` per sample, averaged per category and over all samples, and the
reported "best" value is the maximum over thresholds of the mean IoU (the threshold that achieves
it is the one a checkpoint recommends). An empty prediction of an empty ground truth scores 1.

F-Score@1% follows Tatarchenko et al. (2019) as PIX2VOXPP.md describes: binarize at 0.3, pad one
voxel, marching cubes at 0.5, vertices scaled so the grid is the unit cube, 8192 points sampled on
each surface (area-weighted, seeded: identical surfaces give identical points), F-score of the two
point sets at distance 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from skimage import measure

from pix2voxpp_ros.core.metrics import iou_per_threshold as core_iou_per_threshold

THRESHOLDS = (0.2, 0.3, 0.4, 0.5)


def iou_per_threshold(prediction: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
                      thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """Compute the IoU of each sample at each threshold (tensors on any device, or arrays).

    The formula is the package's one IoU, :func:`pix2voxpp_ros.core.metrics.iou_per_threshold`.

    :param prediction: ``(B, D, H, W)`` occupancy probabilities (or ``(D, H, W)``).
    :param target: ground truth of the same shape; nonzero is occupied.
    :returns: ``(B, T)`` float64 (``(T,)`` for a single grid).
    :raises ValueError: shapes differ.
    """
    return core_iou_per_threshold(_to_numpy(prediction, float32=True), _to_numpy(target),
                                  thresholds)


def _to_numpy(values: torch.Tensor | np.ndarray, *, float32: bool = False) -> np.ndarray:
    """Return a tensor's values on the CPU as an array (float32 for probabilities)."""
    if isinstance(values, torch.Tensor):
        values = values.detach()
        if float32 or values.dtype == torch.bfloat16:  # numpy has no bfloat16
            values = values.float()
        return values.cpu().numpy()
    return np.asarray(values)


@dataclass(frozen=True)
class IoUSummary:
    """Mean IoU per threshold, per category and overall, and the best threshold.

    :ivar thresholds: the thresholds, in column order.
    :ivar overall: ``(T,)`` mean over all samples.
    :ivar per_category: taxonomy id → ``(T,)`` mean over that category's samples.
    :ivar counts: taxonomy id → number of samples.
    :ivar best_index: column of the maximum overall mean IoU (first one on ties).
    """

    thresholds: tuple[float, ...]
    overall: np.ndarray
    per_category: dict[str, np.ndarray]
    counts: dict[str, int]
    best_index: int

    @property
    def best_threshold(self) -> float:
        """The threshold with the highest overall mean IoU."""
        return float(self.thresholds[self.best_index])

    @property
    def best_iou(self) -> float:
        """The released code's headline number: max over thresholds of the mean IoU."""
        return float(self.overall[self.best_index])


def summarize_iou(ious: np.ndarray, categories: Sequence[str],
                  thresholds: Sequence[float] = THRESHOLDS) -> IoUSummary:
    """Average per-sample IoUs per category and overall and pick the best threshold.

    The overall mean is over samples (the released code's sample-weighted category mean).

    :param ious: ``(N, T)`` from :func:`iou_per_threshold`.
    :param categories: ``N`` taxonomy ids.
    :raises ValueError: no samples, or lengths that do not match.
    """
    ious = np.asarray(ious, dtype=np.float64)
    if ious.ndim != 2 or ious.shape[0] == 0 or ious.shape[1] != len(thresholds):
        raise ValueError(f'expected IoUs of shape (N > 0, {len(thresholds)}), got {ious.shape}')
    if len(categories) != ious.shape[0]:
        raise ValueError(f'{len(categories)} categories for {ious.shape[0]} samples')
    labels = np.asarray(categories)
    per_category: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for name in dict.fromkeys(categories):  # first-seen order
        rows = ious[labels == name]
        per_category[name] = rows.mean(axis=0)
        counts[name] = int(rows.shape[0])
    overall = ious.mean(axis=0)
    return IoUSummary(tuple(float(t) for t in thresholds), overall, per_category, counts,
                      int(np.argmax(overall)))


def surface_mesh(volume: np.ndarray, *, threshold: float = 0.3
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Binarize, pad one voxel and extract the 0.5 iso-surface, scaled to the unit cube.

    :param volume: ``(D, D, D)`` occupancy probabilities.
    :returns: ``(vertices (M, 3) float64, faces (K, 3) int)``, or ``None`` for an empty grid.
        A vertex ``v`` of the padded grid maps to ``(v - 0.5) / D``: the grid's outer faces are
        at 0 and 1.
    """
    volume = np.asarray(volume)
    binary = (volume >= threshold).astype(np.float32)
    if not binary.any():
        return None
    padded = np.pad(binary, 1, mode='constant', constant_values=0.0)
    vertices, faces, _, _ = measure.marching_cubes(padded, level=0.5)
    return (vertices.astype(np.float64) - 0.5) / volume.shape[0], faces


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, *, seed: int = 0
                   ) -> np.ndarray:
    """Sample points uniformly by area on a triangle mesh.

    :returns: ``(count, 3)`` float64.
    """
    rng = np.random.default_rng(seed)
    corners = vertices[faces]  # (K, 3, 3)
    areas = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                          corners[:, 2] - corners[:, 0]), axis=1)
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    # Uniform barycentric coordinates: reflect (u, v) from the upper half of the unit square.
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = corners[chosen, 0], corners[chosen, 1], corners[chosen, 2]
    return a + u[:, None] * (b - a) + v[:, None] * (c - a)


def fscore_points(predicted: np.ndarray, target: np.ndarray, *, distance: float = 0.01
                  ) -> float:
    """F-score of two point sets: harmonic mean of precision and recall within ``distance``.

    Precision is the fraction of predicted points with a target point closer than ``distance``;
    recall the fraction of target points with a predicted one. Both empty: 1; one empty: 0.
    """
    if len(predicted) == 0 or len(target) == 0:
        return 1.0 if len(predicted) == len(target) else 0.0
    to_target, _ = cKDTree(target).query(predicted, k=1)
    to_predicted, _ = cKDTree(predicted).query(target, k=1)
    precision = float(np.mean(to_target < distance))
    recall = float(np.mean(to_predicted < distance))
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def fscore(prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, *,
           threshold: float = 0.3, distance: float = 0.01, points: int = 8192, seed: int = 0
           ) -> float:
    """F-Score@1% of one predicted grid against its ground truth.

    :param prediction: ``(D, D, D)`` occupancy probabilities.
    :param target: ``(D, D, D)`` ground truth (binary; binarized at ``threshold`` too).
    :param threshold: binarization threshold (0.3 in the paper's protocol).
    :param distance: F-score distance in unit-cube units (0.01 = 1 %).
    :param points: points sampled on each surface.
    :param seed: sampling seed, used for both surfaces.
    :returns: F-score in [0, 1]; 1 when both grids are empty, 0 when only one is.
    """
    prediction = torch.as_tensor(prediction).detach().float().cpu().numpy()
    target = torch.as_tensor(target).detach().float().cpu().numpy()
    if prediction.shape != target.shape or prediction.ndim != 3:
        raise ValueError(f'expected two (D, D, D) grids, got {prediction.shape} and '
                         f'{target.shape}')
    meshes = [surface_mesh(grid, threshold=threshold) for grid in (prediction, target)]
    if meshes[0] is None or meshes[1] is None:
        return 1.0 if meshes[0] is None and meshes[1] is None else 0.0
    sampled = [sample_surface(v, f, points, seed=seed) for v, f in meshes]
    return fscore_points(sampled[0], sampled[1], distance=distance)


def fscore_batch(predictions: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor,
                 **options: float | int) -> np.ndarray:
    """:func:`fscore` of each grid of a batch ``(B, D, D, D)``; returns ``(B,)`` float64."""
    predictions = torch.as_tensor(predictions)
    targets = torch.as_tensor(targets)
    return np.array([fscore(p, t, **options) for p, t in zip(predictions, targets)],
                    dtype=np.float64)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired per-object differences with its bootstrap confidence interval.

    :ivar mean: mean difference.
    :ivar low: lower end of the interval.
    :ivar high: upper end.
    :ivar level: the interval's coverage (0.95).
    :ivar resamples: bootstrap resamples drawn.
    """

    mean: float
    low: float
    high: float
    level: float
    resamples: int


def paired_bootstrap(differences: np.ndarray, *, resamples: int = 10_000, level: float = 0.95,
                     seed: int = 0) -> PairedDifference:
    """Percentile bootstrap interval of the mean of paired differences.

    The objects are resampled with replacement (the pairs stay together), so the interval
    reflects how much the mean difference depends on which objects happened to be tested.

    :param differences: ``(N,)`` per-object differences, e.g. IoU with merger minus IoU with
        the plain average, on the same objects and views.
    :raises ValueError: no differences, or a level outside (0, 1).
    """
    values = np.asarray(differences, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise ValueError('no differences to bootstrap')
    if not 0.0 < level < 1.0:
        raise ValueError(f'level must be in (0, 1), got {level}')
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # bounded memory: 1000 resamples at a time
        stop = min(start + 1000, resamples)
        picks = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return PairedDifference(float(values.mean()), float(low), float(high), level, resamples)
