"""Rigid poses as 4×4 matrices: quaternions, camera poses given as numbers, composition.

The core's one representation of a pose is a float64 ``(4, 4)`` homogeneous matrix ``T`` that maps
points of a child frame into its parent (``p_parent = T @ p_child``), as a TF transform
``parent -> child`` does. Quaternions are ``(x, y, z, w)``, ROS's order. Pure numpy: the ROS
layer turns ``geometry_msgs`` transforms into these (``ros/tf_poses.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import Pix2VoxError

POSE_NUMBERS = 7  # x y z qx qy qz qw: one camera pose given as numbers (``camera_poses``)


class PoseError(Pix2VoxError, ValueError):
    """A pose or quaternion that is not a rigid transform (non-finite, zero quaternion, ...)."""


def quaternion_to_matrix(quaternion: Sequence[float]) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of a quaternion ``(x, y, z, w)`` (normalized here).

    :raises PoseError: not four finite numbers, or of (near) zero length.
    """
    q = np.asarray(quaternion, dtype=np.float64)
    if q.shape != (4,) or not np.isfinite(q).all():
        raise PoseError(f'a quaternion is four finite numbers (x, y, z, w), got {quaternion!r}')
    length = float(np.linalg.norm(q))
    if length < 1e-9:
        raise PoseError(f'quaternion {quaternion!r} has zero length')
    x, y, z, w = q / length
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def pose_matrix(translation: Sequence[float], quaternion: Sequence[float]) -> np.ndarray:
    """Return the ``(4, 4)`` pose of a translation ``(x, y, z)`` and a quaternion ``(x, y, z, w)``.

    :raises PoseError: a non-finite translation or a bad quaternion.
    """
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise PoseError(f'a translation is three finite numbers, got {translation!r}')
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_matrix(quaternion)
    pose[:3, 3] = t
    return pose


def poses_from_numbers(values: Sequence[float], count: int) -> list[np.ndarray]:
    """Split ``7 * count`` numbers (``x y z qx qy qz qw`` per camera) into ``count`` poses.

    :raises PoseError: the wrong number of values, or one pose that is not rigid (its index named).
    """
    if len(values) != POSE_NUMBERS * count:
        raise PoseError(f'{count} camera pose(s) need {POSE_NUMBERS * count} numbers '
                        f'(x y z qx qy qz qw each), got {len(values)}')
    poses = []
    for index in range(count):
        chunk = values[POSE_NUMBERS * index:POSE_NUMBERS * (index + 1)]
        try:
            poses.append(pose_matrix(chunk[:3], chunk[3:]))
        except PoseError as exc:
            raise PoseError(f'camera {index}: {exc}') from exc
    return poses


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Invert a rigid ``(4, 4)`` pose (transpose of the rotation, no general inverse)."""
    rotation, translation = pose[:3, :3], pose[:3, 3]
    inverse = np.eye(4)
    inverse[:3, :3] = rotation.T
    inverse[:3, 3] = -rotation.T @ translation
    return inverse


def matrix_to_quaternion(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Quaternion ``(x, y, z, w)`` of a ``(3, 3)`` rotation matrix, with ``w >= 0``.

    Computed from the largest of the four diagonal combinations (the numerically safe choice
    for any rotation, half turns included).
    """
    m = np.asarray(rotation, dtype=np.float64)
    trace = float(np.trace(m))
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    largest = int(np.argmax(candidates))
    if largest == 0:
        w = 0.5 * np.sqrt(1.0 + trace)
        x, y, z = (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), \
            (m[1, 0] - m[0, 1]) / (4 * w)
    else:
        i = largest - 1
        j, k = (i + 1) % 3, (i + 2) % 3
        q = np.empty(3)
        q[i] = 0.5 * np.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 0.0))
        q[j] = (m[j, i] + m[i, j]) / (4 * q[i])
        q[k] = (m[k, i] + m[i, k]) / (4 * q[i])
        w = (m[k, j] - m[j, k]) / (4 * q[i])
        x, y, z = q
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    return float(x), float(y), float(z), float(w)
