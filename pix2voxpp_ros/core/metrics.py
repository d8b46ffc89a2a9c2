"""Scores of a reconstruction against the truth, shared by the demo, the bag tool and benchmarks.

IoU follows the released test code: a grid is occupied where ``p >= threshold``, IoU is
``|pred ∧ gt| / |pred ∨ gt|``, and an empty prediction of an empty truth scores 1.
"""

from __future__ import annotations

import numpy as np


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean grids of one shape (1.0 when both are empty).

    :raises ValueError: the shapes differ.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f'prediction {prediction.shape} and truth {truth.shape} differ in shape')
    union = np.logical_or(prediction, truth).sum()
    return float(np.logical_and(prediction, truth).sum() / union) if union else 1.0


def iou_at(probabilities: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """IoU of ``probabilities >= threshold`` with a boolean (or 0/1) truth of the same shape."""
    return iou(probabilities >= threshold, truth.astype(bool, copy=False))
