"""The recorded-TF tree (core, no ROS): chains, interpolation at a stamp, bounds, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pix2voxpp_ros.core.calibration import PoseUnavailableError
from pix2voxpp_ros.core.geometry import pose_matrix
from pix2voxpp_ros.core.transforms import RecordedPoses, TransformTree
from pix2voxpp_ros.core.views import Frame

S = 1_000_000_000


def _yaw(angle: float, xyz=(0.0, 0.0, 0.0)) -> np.ndarray:
    return pose_matrix(xyz, (0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)))


def test_a_chain_of_static_and_moving_edges_composes_and_interpolates():
    tree = TransformTree()
    tree.add('world', 'base', 0, _yaw(0.5, (1.0, 0.0, 0.0)), static=True)
    tree.add('base', 'arm', 10 * S, _yaw(0.0, (0.0, 0.0, 1.0)))
    tree.add('base', 'arm', 12 * S, _yaw(1.0, (0.0, 2.0, 1.0)))
    tree.add('arm', 'camera', 0, _yaw(0.0, (0.1, 0.0, 0.0)), static=True)
    middle = tree.lookup('world', 'camera', 11 * S)
    expected = _yaw(0.5, (1.0, 0.0, 0.0)) @ _yaw(0.5, (0.0, 1.0, 1.0)) @ _yaw(0.0, (0.1, 0, 0))
    np.testing.assert_allclose(middle, expected, atol=1e-9)
    np.testing.assert_allclose(tree.lookup('camera', 'world', 12 * S),
                               np.linalg.inv(tree.lookup('world', 'camera', 12 * S)), atol=1e-9)
    np.testing.assert_allclose(tree.lookup('arm', 'arm', 3), np.eye(4))
    with pytest.raises(PoseUnavailableError, match='not known at 13.000'):
        tree.lookup('world', 'camera', 13 * S)  # never extrapolated
    with pytest.raises(PoseUnavailableError, match='not connected'):
        tree.lookup('world', 'elsewhere', 11 * S)


def test_the_shorter_arc_and_the_bounds():
    tree = TransformTree(max_history=3, max_frames=1)
    tree.add('world', 'cam', 0, _yaw(math.radians(170)))
    tree.add('world', 'cam', 2 * S, _yaw(math.radians(-170)))
    halfway = tree.lookup('world', 'cam', S)
    assert abs(abs(math.degrees(math.atan2(halfway[1, 0], halfway[0, 0]))) - 180) < 1e-6
    for stamp in (3, 4, 5):
        tree.add('world', 'cam', stamp * S, _yaw(0.0))
    with pytest.raises(PoseUnavailableError):  # the oldest were forgotten
        tree.lookup('world', 'cam', S)
    assert not tree.add('world', 'other', 0, np.eye(4))  # a second child frame: refused
    assert not tree.add('cam', 'world', 0, np.eye(4))  # would close a loop
    bad = np.eye(4)
    bad[0, 3] = np.nan
    assert not tree.add('world', 'cam', 6 * S, bad)
    assert tree.refused == 3


def test_recorded_poses_look_a_frames_camera_up_at_its_stamp():
    tree = TransformTree()
    tree.add('world', 'cam0_optical', 0, _yaw(0.3, (0.0, 1.0, 0.0)), static=True)
    source = RecordedPoses(tree, 'world')
    frame = Frame(0, 5 * S, np.zeros((4, 4, 3), np.uint8), frame_id='cam0_optical')
    np.testing.assert_allclose(source.frame_pose(frame), _yaw(0.3, (0.0, 1.0, 0.0)))
