"""Helpers of the placement tests: how much of a placed cloud lies on the true object."""

from __future__ import annotations

import numpy as np

from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.voxels import SHAPENET_TO_ROS


def share_on_object(points: np.ndarray, truth: np.ndarray, pose: ObjectPose, *,
                    ros_axes: bool = False) -> float:
    """Share of ``points`` (fixed frame, metres) within one voxel of the true object.

    :param truth: the object's ``(D, D, D)`` bool grid, ShapeNet axes (ROS axes with
        ``ros_axes``, as a truth cloud read back from a bag gives it).
    :param pose: where the true grid stands in the fixed frame.
    """
    n = truth.shape[0]
    local = (points - pose.position) @ pose.rotation() / pose.size_m  # grid units, ROS axes
    if not ros_axes:
        local = local @ SHAPENET_TO_ROS  # ShapeNet axes
    index = np.floor((local + 0.5) * n).astype(int)  # voxel index in the truth's axes
    near = np.zeros((n + 2,) * 3, dtype=bool)  # the true voxels grown by one on every side
    for d in np.ndindex(3, 3, 3):
        near[d[0]:d[0] + n, d[1]:d[1] + n, d[2]:d[2] + n] |= truth
    inside = ((index >= -1) & (index <= n)).all(axis=1)
    on = np.zeros(len(points), dtype=bool)
    on[inside] = near[tuple((index[inside] + 1).T)]
    return float(on.mean())
