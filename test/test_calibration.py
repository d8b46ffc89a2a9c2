"""Calibrated views (core, no ROS): camera_info checks, camera poses, placing, parameters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pix2voxpp_ros.core.calibration import (CameraInfos, FixedPoses, Intrinsics,
                                            CalibrationError, PlacementFailedError,
                                            PlacementSettings, PoseUnavailableError,
                                            place_view_set)
from pix2voxpp_ros.core.drops import FRAME_DROP_REASONS, DropReason
from pix2voxpp_ros.core.geometry import PoseError, matrix_to_quaternion, quaternion_to_matrix
from pix2voxpp_ros.core.node_config import (PARAMETER_NAMES, config_from_values,
                                            default_info_topic, find_problems)
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.synthetic import make_object, render_view
from pix2voxpp_ros.core.synthetic.scenes import tabletop_cameras
from pix2voxpp_ros.core.synthetic.voxelize import voxelize
from pix2voxpp_ros.core.synthetic.world import camera_to_fixed
from pix2voxpp_ros.core.views import Frame, ViewSet

WEIGHTS = Path(__file__).resolve().parents[1] / 'pix2voxpp_ros' / 'weights' / \
    'pix2voxpp_f_synthetic.pth'
K = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]


def _frame(camera: int = 0, width: int = 640, height: int = 480, **kwargs) -> Frame:
    return Frame(camera, 1_000, np.zeros((height, width, 3), np.uint8), **kwargs)


@pytest.mark.parametrize('k, size, words', [
    ([0.0] * 9, (640, 480), 'not calibrated'),
    ([math.nan] + K[1:], (640, 480), 'finite'),
    (K[:8], (640, 480), '9 finite'),
    (K[:6] + [0.0, 0.0, 0.0], (640, 480), 'no pinhole'),
    (K, (0, 480), 'no image size'),
])
def test_bad_camera_infos_are_refused_with_the_reason(k, size, words):
    with pytest.raises(CalibrationError, match=words):
        Intrinsics.from_camera_info(k, *size)


def test_each_frame_gets_its_cameras_intrinsics_or_a_drop():
    infos = CameraInfos(3)
    infos.update(0, K, 640, 480)
    infos.update(1, [0.0] * 9, 640, 480)
    calibrated = infos.calibrate(_frame(0))
    assert isinstance(calibrated, Frame)
    np.testing.assert_array_equal(calibrated.intrinsics, np.reshape(K, (3, 3)))
    assert infos.calibrate(_frame(1)).reason is DropReason.BAD_CAMERA_INFO
    assert infos.calibrate(_frame(2)).reason is DropReason.NO_CAMERA_INFO
    wrong_size = infos.calibrate(_frame(0, width=320, height=240))
    assert wrong_size.reason is DropReason.BAD_CAMERA_INFO
    assert '640x480' in wrong_size.detail and '320x240' in wrong_size.detail
    for reason in ('no_camera_info', 'bad_camera_info', 'no_transform'):
        assert reason in [r.value for r in FRAME_DROP_REASONS]


def test_quaternions_round_trip_for_any_rotation():
    rng = np.random.default_rng(0)
    turns = [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    for q in list(rng.normal(size=(50, 4))) + [matrix_to_quaternion(t) for t in turns]:
        rotation = quaternion_to_matrix(q)
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(rotation)),
                                   rotation, atol=1e-12)


def test_fixed_poses_are_checked_per_camera():
    poses = FixedPoses([1, 2, 3, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 1, 0], 2)
    np.testing.assert_allclose(poses.frame_pose(_frame(1))[:3, :3], np.diag([-1.0, -1.0, 1.0]))
    with pytest.raises(PoseError, match='camera 1'):
        FixedPoses([1, 2, 3, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0], 2)


class _SomePoses:
    """Camera poses for some cameras only (as TF with one frame missing)."""

    def __init__(self, poses: dict[int, np.ndarray]) -> None:
        self.poses = poses

    def frame_pose(self, frame: Frame, *, timeout_s: float) -> np.ndarray:
        if frame.camera not in self.poses:
            raise PoseUnavailableError(f'no transform world -> camera_{frame.camera}')
        return self.poses[frame.camera]


@pytest.fixture(scope='module')
def placed_views():
    obj = make_object('sofa', seed=3)
    truth = voxelize(obj)
    pose = ObjectPose((1.0, 0.5, 0.4), 0.7, 2.0)
    cameras = tabletop_cameras(3, seed=8)
    frames = []
    for i, camera in enumerate(cameras):
        rgba = render_view(obj, camera, supersample=1)
        frames.append(Frame(i, 1_000, rgba[:, :, :3].copy(), mask=rgba[:, :, 3],
                            intrinsics=camera.intrinsics))
    return truth, pose, ViewSet(tuple(frames)), {i: camera_to_fixed(c, pose)
                                                 for i, c in enumerate(cameras)}


def test_place_view_set_leaves_out_frames_without_a_pose(placed_views):
    truth, pose, views, poses = placed_views
    some = _SomePoses({1: poses[1], 2: poses[2]})
    placed = place_view_set(truth.astype(np.float32), views, threshold=0.5, poses=some,
                            settings=PlacementSettings())
    assert [d.reason for d in placed.drops] == [DropReason.NO_TRANSFORM]
    assert placed.drops[0].camera == 0
    assert np.linalg.norm(np.subtract(placed.pose.position, pose.position)) < 0.05 * 2.0
    assert abs(placed.pose.size_m / 2.0 - 1) < 0.05
    with pytest.raises(PlacementFailedError) as failed:  # one view left: cannot place
        place_view_set(truth, views, threshold=0.5, poses=_SomePoses({2: poses[2]}),
                       settings=PlacementSettings())
    assert len(failed.value.drops) == 2


def test_a_poor_fit_is_refused_below_min_placement_iou(placed_views):
    truth, _, views, poses = placed_views
    cube = np.zeros_like(truth)
    cube[8:24, 8:24, 8:24] = True  # a cube is no sofa: its silhouettes match poorly
    with pytest.raises(PlacementFailedError, match='min_placement_iou 0.95'):
        place_view_set(cube, views, threshold=0.5, poses=_SomePoses(poses),
                       settings=PlacementSettings(min_placement_iou=0.95))


def test_carving_keeps_the_probabilities_it_does_not_remove(placed_views):
    truth, _, views, poses = placed_views
    grid = truth * 0.9
    grid[:3, :3, :3] = 0.8  # not the sofa: carved away
    grid[20, 30, 20] = 0.1  # below the threshold: kept as it is
    placed = place_view_set(grid.astype(np.float32), views, threshold=0.5,
                            poses=_SomePoses(poses), settings=PlacementSettings(carve=True))
    assert (placed.grid[:3, :3, :3] == 0).all()
    assert placed.grid[20, 30, 20] == pytest.approx(0.1)
    assert (placed.grid[truth] > 0).mean() > 0.95


def _values(**changes):
    from pix2voxpp_ros.core.node_config import PARAMETERS
    values = {spec.name: spec.default for spec in PARAMETERS}
    values.update(weights=str(WEIGHTS), camera_topics=['/a/cam/image_raw', '/b/image_raw'],
                  **changes)
    return values


def test_placement_parameters_are_checked():
    assert {'placement', 'camera_info_topics', 'fixed_frame', 'tf_timeout_s', 'camera_poses',
            'min_placement_iou', 'carve'} <= set(PARAMETER_NAMES)
    problems = find_problems(_values(placement='calibrated'))
    assert any('needs mask_topics' in p for p in problems)
    masks = ['/a/mask', '/b/mask']
    assert any('give 7 per camera' in p for p in find_problems(
        _values(placement='calibrated', mask_topics=masks, camera_poses=[0, 0, 0, 0, 0, 0, 1])))
    assert any('camera 1' in p for p in find_problems(
        _values(camera_poses=[0, 0, 0, 0, 0, 0, 1] + [0.0] * 7)))
    assert any('placement' in p for p in find_problems(_values(placement='world')))
    assert any('camera_info_topics' in p for p in find_problems(
        _values(camera_info_topics=['/x'])))
    config = config_from_values(_values(placement='calibrated', mask_topics=masks))
    assert config.calibrated
    assert config.info_topics() == ('/a/cam/camera_info', '/b/camera_info')
    assert default_info_topic('image_raw') == 'camera_info'
