"""Placement in the fixed frame (core, no ROS): pose and size from masks, carving, world scores.

The views are real renderings of synthetic objects by the project's ray caster; the scene is
placed in the fixed frame by :mod:`pix2voxpp_ros.core.synthetic.world`, so the truth is known
exactly. With the true grid as "reconstruction" the placement must find the true pose.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pix2voxpp_ros.core.metrics import heading_error_deg, heading_symmetries, world_iou
from pix2voxpp_ros.core.placement import (CalibratedView, ObjectPose, PlacementError, carve,
                                          place_object)
from pix2voxpp_ros.core.synthetic import make_object, render_view
from pix2voxpp_ros.core.synthetic.scenes import tabletop_cameras
from pix2voxpp_ros.core.synthetic.voxelize import voxelize
from pix2voxpp_ros.core.synthetic.world import camera_to_fixed, random_object_pose
from pix2voxpp_ros.core.voxels import SHAPENET_TO_ROS


def _views(obj, pose: ObjectPose, cameras) -> list[CalibratedView]:
    views = []
    for camera in cameras:
        mask = render_view(obj, camera, supersample=1)[:, :, 3] >= 128
        views.append(CalibratedView(camera.intrinsics, camera_to_fixed(camera, pose), mask))
    return views


@pytest.fixture(scope='module')
def chair_scene():
    obj = make_object('chair', seed=11)
    truth = voxelize(obj)
    lo, _ = obj.bounds()
    pose = random_object_pose(np.random.default_rng(5), 'chair', float(lo[1]))
    cameras = tabletop_cameras(3, seed=3)
    return obj, truth, pose, cameras, _views(obj, pose, cameras)


def test_camera_to_fixed_keeps_the_images():
    """A scene point placed in the fixed frame projects where the scene camera draws it."""
    camera = tabletop_cameras(3, seed=1)[1]
    pose = ObjectPose((0.4, -1.2, 0.3), 2.1, 0.8)
    scene_points = np.random.default_rng(0).uniform(-0.5, 0.5, size=(50, 3))
    fixed = scene_points * pose.size_m @ (pose.rotation() @ SHAPENET_TO_ROS).T + pose.position
    to_camera = np.linalg.inv(camera_to_fixed(camera, pose))
    cam = fixed @ to_camera[:3, :3].T + to_camera[:3, 3]
    uv = cam[:, :2] / cam[:, 2:] @ camera.intrinsics[:2, :2].T + camera.intrinsics[:2, 2]
    np.testing.assert_allclose(uv, camera.project(scene_points), atol=1e-6)
    np.testing.assert_allclose(pose.canonical_to_fixed()[:3, :3] @ scene_points[0]
                               + pose.position, fixed[0])


def test_place_object_finds_the_true_pose(chair_scene):
    _, truth, pose, _, views = chair_scene
    placement = place_object(truth, views)
    found = placement.pose
    error = np.linalg.norm(np.subtract(found.position, pose.position)) / pose.size_m
    assert error < 0.02, (found, pose)
    assert abs(found.size_m / pose.size_m - 1.0) < 0.03
    assert heading_error_deg(found.heading_rad, pose.heading_rad, (0.0,)) < 5.0
    assert placement.silhouette_iou > 0.85
    assert len(placement.view_ious) == 3 and min(placement.view_ious) > 0.8
    assert world_iou(truth, found, truth, pose) > 0.8


def test_a_view_without_a_mask_is_left_out(chair_scene):
    _, truth, pose, cameras, views = chair_scene
    empty = CalibratedView(views[0].intrinsics, views[0].camera_to_fixed,
                           np.zeros_like(views[0].mask))
    placement = place_object(truth, [empty] + views[1:])
    assert math.isnan(placement.view_ious[0])
    error = np.linalg.norm(np.subtract(placement.pose.position, pose.position)) / pose.size_m
    assert error < 0.05


@pytest.mark.parametrize('case', ['one view', 'empty grid', 'bad K', 'bad pose', 'flat mask',
                                  'same line'])
def test_placement_refuses_what_it_cannot_place(chair_scene, case):
    _, truth, pose, cameras, views = chair_scene
    grid = truth
    if case == 'one view':
        views = views[:1]
    elif case == 'empty grid':
        grid = np.zeros_like(truth)
    elif case == 'bad K':
        views = [CalibratedView(np.zeros((3, 3)), views[0].camera_to_fixed, views[0].mask)] \
            + views[1:]
    elif case == 'bad pose':
        bad = views[0].camera_to_fixed.copy()
        bad[0, 3] = np.nan
        views = [CalibratedView(views[0].intrinsics, bad, views[0].mask)] + views[1:]
    elif case == 'flat mask':
        views = [CalibratedView(views[0].intrinsics, views[0].camera_to_fixed,
                                views[0].mask[0])] + views[1:]
    else:  # the same camera twice: its rays cannot fix the depth
        views = [views[0], views[0]]
    with pytest.raises(PlacementError):
        place_object(grid, views)


def test_carving_removes_what_a_view_sees_outside_the_mask(chair_scene):
    _, truth, pose, _, views = chair_scene
    noisy = truth.copy()
    noisy[:4, :4, :4] = True  # a block in a corner of the grid, where the chair is not
    added = noisy & ~truth
    carved = carve(noisy, pose, views)
    assert not (carved & added).any()
    assert (carved & truth).sum() >= 0.97 * truth.sum()  # the true voxels stay (dilated masks)
    assert not (carved & ~noisy).any()


def test_world_iou_of_placed_grids():
    grid = voxelize(make_object('car', seed=2))
    pose = ObjectPose((1.0, 2.0, 0.5), 0.3, 4.0)
    assert world_iou(grid, pose, grid, pose) == pytest.approx(1.0, abs=0.01)
    moved = ObjectPose((7.0, 2.0, 0.5), 0.3, 4.0)  # further than a grid diagonal
    assert world_iou(grid, moved, grid, pose) == 0.0
    bigger = ObjectPose((1.0, 2.0, 0.5), 0.3, 4.4)
    assert 0.5 < world_iou(grid, bigger, grid, pose) < 0.85


def test_heading_symmetries_from_the_true_grid():
    assert heading_symmetries(voxelize(make_object('car', seed=4))) == (0.0,)
    box = np.zeros((32, 32, 32), dtype=bool)
    box[4:28, 0:10, 10:22] = True  # 24 x 12 footprint: the same after half a turn only
    assert heading_symmetries(box) == (0.0, math.pi)
    x, y, z = np.meshgrid(*[np.arange(32) - 15.5] * 3, indexing='ij')  # ShapeNet axes, y up
    cylinder = (x ** 2 + z ** 2 < 12 ** 2) & (np.abs(y) < 14)
    assert heading_symmetries(cylinder) is None
    assert heading_error_deg(math.radians(178), 0.0, (0.0, math.pi)) == pytest.approx(2.0)
    assert heading_error_deg(math.radians(-170), math.radians(170), (0.0,)) == pytest.approx(20)
    assert heading_error_deg(1.0, 0.0, None) is None
