"""Exact small tests of the core's poses (no ROS): quaternions, camera poses as numbers."""

from __future__ import annotations

import numpy as np
import pytest

from pix2voxpp_ros.core.geometry import (PoseError, invert_pose, pose_matrix,
                                         poses_from_numbers, quaternion_to_matrix)

S = 2 ** -0.5


@pytest.mark.parametrize('quaternion, expected', [
    ((0, 0, 0, 1), np.eye(3)),
    ((0, 0, S, S), [[0, -1, 0], [1, 0, 0], [0, 0, 1]]),  # 90 degrees about z: x -> y
    ((S, 0, 0, S), [[1, 0, 0], [0, 0, -1], [0, 1, 0]]),  # 90 degrees about x: y -> z
    ((0, 1, 0, 0), [[-1, 0, 0], [0, 1, 0], [0, 0, -1]]),  # 180 degrees about y
    ((0, 0, 2, 2), [[0, -1, 0], [1, 0, 0], [0, 0, 1]]),  # normalized first
])
def test_quaternion_to_matrix(quaternion, expected) -> None:
    np.testing.assert_allclose(quaternion_to_matrix(quaternion), expected, atol=1e-12)


def test_a_rotation_matrix_is_orthonormal_for_any_quaternion() -> None:
    for q in np.random.default_rng(0).normal(size=(20, 4)):
        r = quaternion_to_matrix(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)


def test_pose_maps_child_points_into_the_parent_and_inverts() -> None:
    pose = pose_matrix((1.0, 2.0, 3.0), (0, 0, S, S))
    np.testing.assert_allclose(pose @ [1, 0, 0, 1], [1, 3, 3, 1], atol=1e-12)
    np.testing.assert_allclose(invert_pose(pose) @ pose, np.eye(4), atol=1e-12)


def test_camera_poses_from_numbers() -> None:
    poses = poses_from_numbers([0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 0, 0, S, S], 2)
    assert len(poses) == 2
    np.testing.assert_allclose(poses[0][:3, 3], [0, 0, 1])
    np.testing.assert_allclose(poses[1], pose_matrix((1, 2, 3), (0, 0, S, S)))


@pytest.mark.parametrize('values, count, match', [
    ([0] * 13, 2, '14 numbers'),
    ([0, 0, 0, 0, 0, 0, 0], 1, 'camera 0: .*zero length'),
    ([0, 0, 1, 0, 0, 0, 1, float('nan'), 0, 0, 0, 0, 0, 1], 2, 'camera 1: .*translation'),
    ([0, 0, 0, float('inf'), 0, 0, 1], 1, 'camera 0: .*finite'),
])
def test_bad_camera_poses_are_refused_naming_the_camera(values, count, match) -> None:
    with pytest.raises(PoseError, match=match):
        poses_from_numbers(values, count)
