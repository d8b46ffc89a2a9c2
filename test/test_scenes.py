"""Tabletop scenes and the wrist camera: the target's mask is exact, the scene varied.

The mask is checked against independent renderings: the target alone through the plain
renderer, and each distractor's depth map, so a pixel is the target's exactly when the target
is there and nothing else is nearer.
"""

from __future__ import annotations

import numpy as np
import pytest

from pix2voxpp_ros.core.synthetic import Camera, dataset_object, render_depth, render_view
from pix2voxpp_ros.core.synthetic.scenes import (
    CameraProfile, make_tabletop_scene, render_scene_view, tabletop_cameras, wrist_camera)

SEED = 20261125


@pytest.fixture(scope='module')
def scene():
    """Return a chair among two distractors, one of them in front of the first camera."""
    return make_tabletop_scene(dataset_object('chair', 0, seed=SEED), seed=6,
                               occluder_azimuth_deg=30.0)


@pytest.fixture(scope='module')
def cameras():
    """Return three small cameras of the tabletop kinds (small keeps the test quick)."""
    profiles = (CameraProfile(160, 120, 60.0, 2.6), CameraProfile(256, 144, 70.0, 3.0),
                CameraProfile(160, 120, 60.0, 2.2))
    return tabletop_cameras(3, seed=3, profiles=profiles)


def test_camera_look_at_moves_the_aim_not_the_default() -> None:
    plain = Camera(30.0, 25.0, 0.0, 0.8, 25.0)
    assert plain.look_at == (0.0, 0.0, 0.0)
    aimed = Camera(30.0, 25.0, 0.0, 0.8, 25.0, look_at=(0.3, -0.1, 0.2))
    np.testing.assert_allclose(aimed.centre - plain.centre, [0.3, -0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(aimed.rotation, plain.rotation, atol=1e-12)
    centre = (np.array([aimed.width, aimed.height]) - 1) / 2.0
    np.testing.assert_allclose(aimed.project(np.array([[0.3, -0.1, 0.2]]))[0], centre,
                               atol=1e-9)


def test_scene_has_distractors_of_other_categories_on_the_table(scene) -> None:
    assert len(scene.distractors) == 2
    categories = {d.category for d in scene.distractors}
    assert len(categories) == 2 and 'chair' not in categories
    for distractor in scene.distractors:
        lo, _ = distractor.bounds()
        assert lo[1] == pytest.approx(scene.table_y, abs=1e-9)


def test_mask_is_the_target_wherever_nothing_is_nearer(scene, cameras) -> None:
    occluded_somewhere = False
    for camera in cameras:
        view = render_scene_view(scene, camera)
        assert view.image.shape == (camera.height, camera.width, 3)
        assert view.mask.shape == (camera.height, camera.width)
        target_alone = render_view(scene.target, camera)[:, :, 3] > 0
        target_depth = render_depth(scene.target, camera)
        nearer = np.zeros_like(target_alone)
        for distractor in scene.distractors:
            nearer |= render_depth(distractor, camera) < target_depth
        # Target pixels with no distractor in front are in the mask, and only those.
        np.testing.assert_array_equal(view.mask, target_alone & ~nearer)
        occluded_somewhere |= bool((target_alone & nearer).any())
        # A distractor's pixels (it is the nearest there) are never in the mask.
        for distractor in scene.distractors:
            depth = render_depth(distractor, camera)
            assert not (view.mask & (depth < target_depth)).any()
    assert view.mask.any()
    assert occluded_somewhere, 'the distractors hide the target from no camera'


def test_without_distractors_the_mask_is_the_target_silhouette(cameras) -> None:
    target = dataset_object('mug', 1, seed=SEED)
    alone = make_tabletop_scene(target, seed=5, num_distractors=0)
    for camera in cameras:
        np.testing.assert_array_equal(render_scene_view(alone, camera).mask,
                                      render_view(target, camera)[:, :, 3] > 0)


def test_cameras_differ_and_the_target_is_off_centre(scene) -> None:
    full = tabletop_cameras(3, seed=3)
    kinds = {(c.width, c.height, c.fov_deg) for c in full}
    assert kinds == {(640, 480, 60.0), (1280, 720, 70.0)}
    assert len({c.distance for c in full}) == 3
    for camera in full:
        # The target's centre lands away from the image centre by a visible amount.
        u, v = camera.project(np.zeros((1, 3)))[0]
        offset = np.hypot(u - (camera.width - 1) / 2, v - (camera.height - 1) / 2)
        assert offset > 0.04 * camera.width
        assert 0 < u < camera.width and 0 < v < camera.height


def test_scene_is_a_function_of_its_seed(cameras) -> None:
    target = dataset_object('lamp', 2, seed=SEED)
    one = render_scene_view(make_tabletop_scene(target, seed=9), cameras[0])
    two = render_scene_view(make_tabletop_scene(target, seed=9), cameras[0])
    other = render_scene_view(make_tabletop_scene(target, seed=10), cameras[0])
    np.testing.assert_array_equal(one.image, two.image)
    np.testing.assert_array_equal(one.mask, two.mask)
    assert not np.array_equal(one.image, other.image)
    assert make_tabletop_scene(target, seed=9).lighting != \
        make_tabletop_scene(target, seed=10).lighting


def test_background_and_table_are_textured(scene, cameras) -> None:
    view = render_scene_view(scene, cameras[0])
    rest = view.image[~view.mask].astype(np.float64)
    assert len(np.unique(rest.reshape(-1, 3), axis=0)) > 50
    assert rest.std(axis=0).min() > 5.0


def test_wrist_camera_orbits_around_the_roughly_centred_target() -> None:
    poses = [wrist_camera(t, period_s=12.0) for t in np.arange(0.0, 12.0, 0.5)]
    azimuths = np.unwrap(np.radians([c.azimuth_deg for c in poses]))
    assert np.all(np.diff(azimuths) > 0) and azimuths[-1] - azimuths[0] > np.radians(300)
    elevations = [c.elevation_deg for c in poses]
    assert 20.0 <= min(elevations) and max(elevations) <= 50.0
    assert max(elevations) - min(elevations) > 15.0
    offsets = []
    for camera in poses:
        u, v = camera.project(np.zeros((1, 3)))[0]
        offsets.append(np.hypot(u - (camera.width - 1) / 2, v - (camera.height - 1) / 2))
    assert 0.0 < max(offsets) < 0.15 * poses[0].width  # roughly, not exactly, centred
    assert wrist_camera(3.25) == wrist_camera(3.25)
    with pytest.raises(ValueError):
        wrist_camera(1.0, period_s=0.0)


def test_render_640x480(scene) -> None:
    # The rig's camera size (its speed: benchmarks/bench_synthetic.py).
    view = render_scene_view(scene, tabletop_cameras(1, seed=3)[0])
    assert view.image.shape == (480, 640, 3) and view.image.dtype == np.uint8
    assert view.mask.shape == (480, 640) and view.mask.any() and not view.mask.all()
