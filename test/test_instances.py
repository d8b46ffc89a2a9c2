"""Instance label images split and matched across calibrated cameras (core, no ROS).

The scenes are built here from geometry: spheres and upright cylinders on a table (fixed frame,
z up), seen by three cameras 30-45° above the table from different sides. Each camera's label
image is ray cast (the nearest surface along each pixel's ray wins), so occlusion and touching
objects are real, and every object's position and instance in each camera are known exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.instances import (CameraInstances, InstanceError, MatchResult,
                                          match_instances, split_instances)

WIDTH, HEIGHT, FOCAL_PX = 240, 180, 220.0
K = np.array([[FOCAL_PX, 0.0, (WIDTH - 1) / 2], [0.0, FOCAL_PX, (HEIGHT - 1) / 2],
              [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Sphere:
    centre: tuple[float, float, float]
    radius: float

    @property
    def size(self) -> float:
        return 2.0 * self.radius

    def hit(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """Distance ``(P,)`` along unit ``rays (P, 3)`` to the surface, inf on a miss."""
        to_centre = np.asarray(self.centre) - origin
        along = rays @ to_centre
        miss2 = to_centre @ to_centre - along ** 2  # squared distance of the ray from the centre
        inside = self.radius ** 2 - miss2
        t = along - np.sqrt(np.maximum(inside, 0.0))
        return np.where((inside >= 0) & (t > 0), t, np.inf)


@dataclass(frozen=True)
class Cylinder:
    """Upright, standing on the table at ``(x, y)``."""

    x: float
    y: float
    radius: float
    height: float

    @property
    def centre(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.height / 2)

    @property
    def size(self) -> float:
        return max(2.0 * self.radius, self.height)

    def hit(self, origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
        """Distance ``(P,)`` along unit ``rays (P, 3)`` to the side or the top, inf on a miss."""
        o = origin[:2] - (self.x, self.y)
        d = rays[:, :2]
        a = np.einsum('pi,pi->p', d, d)
        b = d @ o
        c = o @ o - self.radius ** 2
        disc = b * b - a * c
        with np.errstate(divide='ignore', invalid='ignore'):
            side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
            z = origin[2] + side * rays[:, 2]
            side = np.where((disc >= 0) & (side > 0) & (z >= 0) & (z <= self.height), side,
                            np.inf)
            top = (self.height - origin[2]) / rays[:, 2]
        xy = o + top[:, None] * d
        top = np.where((top > 0) & ((xy ** 2).sum(axis=1) <= self.radius ** 2), top, np.inf)
        return np.minimum(side, top)


def _camera_to_fixed(azimuth_deg: float, elevation_deg: float, distance: float = 0.9
                     ) -> np.ndarray:
    """Pose of an optical frame (x right, y down, z forward) looking at the table's centre."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    target = np.array([0.0, 0.0, 0.05])
    eye = target + distance * np.array([math.cos(el) * math.cos(az),
                                        math.cos(el) * math.sin(az), math.sin(el)])
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    pose[:3, 3] = eye
    return pose


POSES = [_camera_to_fixed(10.0, 35.0), _camera_to_fixed(130.0, 45.0),
         _camera_to_fixed(250.0, 30.0)]


def _labels(objects, ids, pose: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint16 label image: ``ids[j]`` where object j is the nearest surface."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)  # (P, 3)
    rays = np.linalg.solve(K, pixels.T).T @ pose[:3, :3].T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    depth = np.stack([obj.hit(pose[:3, 3], rays) for obj in objects])  # (J, P)
    nearest = depth.argmin(axis=0)
    labels = np.where(np.isfinite(depth.min(axis=0)), np.asarray(ids)[nearest], 0)
    return labels.reshape(HEIGHT, WIDTH).astype(np.uint16)


def _scene(objects, ids_per_camera, poses=POSES):
    """Label images of the objects in each camera; ``ids_per_camera[c][j]``: object j's id."""
    return [_labels(objects, ids, pose) for ids, pose in zip(ids_per_camera, poses)]


def _cameras(labels, poses=POSES) -> list[CameraInstances]:
    return [CameraInstances.from_labels(K, pose, image) for image, pose in zip(labels, poses)]


# Camera 2 sees the first sphere partly (about two thirds) behind the large one.
TABLE = [Sphere((0.15, 0.06, 0.05), 0.05), Sphere((-0.04, 0.17, 0.03), 0.03),
         Cylinder(0.02, -0.14, 0.04, 0.15), Sphere((-0.16, -0.10, 0.08), 0.08),
         Cylinder(0.20, -0.16, 0.025, 0.10)]
TABLE_IDS = [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [17, 9, 250, 3, 8]]


def _expect(result: MatchResult, truth, *, tolerance: float = 0.25) -> None:
    """Each object of ``truth`` found once, with its ids (see :func:`_truth`), and near."""
    assert len(result.objects) == len(truth)
    by_ids = {obj.instance_ids: obj for obj in result.objects}
    for shape, ids in truth:
        assert ids in by_ids, (ids, result)
        error = np.linalg.norm(np.subtract(by_ids[ids].position, shape.centre))
        assert error < tolerance * shape.size, (by_ids[ids].position, shape)


def _truth(objects, ids_per_camera, hidden=()):
    """``(object, its id in each camera)``; None in the cameras of ``hidden`` (camera, object)."""
    return [(obj, tuple(None if (c, j) in hidden else ids[j]
                        for c, ids in enumerate(ids_per_camera)))
            for j, obj in enumerate(objects)]


def test_split_instances_masks_and_specks():
    labels = np.zeros((12, 10), np.uint16)
    labels[0:4, 0:5] = 3          # 20 pixels
    labels[6:10, 6:10] = 40000    # 16 pixels: exactly min_pixels
    labels[11, 0:5] = 9           # 5 pixels: a speck
    masks = split_instances(labels)
    assert list(masks) == [3, 40000]
    for k, mask in masks.items():
        assert mask.dtype == bool and mask.shape == labels.shape
        np.testing.assert_array_equal(mask, labels == k)
    # As uint8, 40000 wraps to 64; with min_pixels 5 the speck counts.
    assert list(split_instances(labels.astype(np.uint8), min_pixels=5)) == [3, 9, 64]
    assert split_instances(np.zeros((4, 4), np.uint8)) == {}


def test_a_label_flood_is_refused():
    blocks = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) + 1  # 4096 ids
    flood = np.kron(blocks, np.ones((8, 8), np.uint16))  # (512, 512), 64 pixels each
    with pytest.raises(InstanceError, match='4096 instances'):
        split_instances(flood)
    noise = np.random.default_rng(0).integers(0, 256, size=(480, 640), dtype=np.uint8)
    with pytest.raises(InstanceError, match='max_instances = 32'):
        split_instances(noise)
    # Every id of a uint16 noise image is a speck: nothing is kept, nothing is refused.
    specks = np.random.default_rng(1).permutation(65536).astype(np.uint16).reshape(256, 256)
    assert split_instances(specks) == {}
    assert len(split_instances(flood, max_instances=4096)) == 4096


@pytest.mark.parametrize('labels', [np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int32),
                                    np.zeros((4, 4), bool), np.zeros((4, 4, 3), np.uint8),
                                    np.zeros(16, np.uint8), np.zeros((0, 4), np.uint8),
                                    [[0, 1], [1, 0]]])
def test_split_instances_refuses_other_images(labels):
    with pytest.raises(InstanceError, match='label image'):
        split_instances(labels)


def test_instance_error_is_a_package_value_error():
    assert issubclass(InstanceError, Pix2VoxError) and issubclass(InstanceError, ValueError)
    with pytest.raises(InstanceError, match='>= 1'):
        split_instances(np.zeros((4, 4), np.uint8), max_instances=0)


def test_every_object_on_the_table_is_found():
    result = match_instances(_cameras(_scene(TABLE, TABLE_IDS)))
    _expect(result, _truth(TABLE, TABLE_IDS))
    assert result.unmatched == 0 and result.unused == ()
    xs = [obj.position[0] for obj in result.objects]
    assert xs == sorted(xs)
    labels = _scene(TABLE, TABLE_IDS)
    for obj in result.objects:
        assert obj.cameras == (0, 1, 2) and len(obj.views) == 3
        for camera, view in zip(obj.cameras, obj.views):
            np.testing.assert_array_equal(view.mask, labels[camera] == obj.instance_ids[camera])
            np.testing.assert_array_equal(view.camera_to_fixed, POSES[camera])
        truth = min(TABLE, key=lambda o: np.linalg.norm(np.subtract(o.centre, obj.position)))
        assert 0.5 * truth.size < obj.size_m < 1.5 * truth.size


def test_the_ids_do_not_matter():
    first = match_instances(_cameras(_scene(TABLE, TABLE_IDS)))
    rng = np.random.default_rng(7)
    other_ids = [list(rng.choice(np.arange(1, 65536), size=len(TABLE), replace=False))
                 for _ in POSES]
    second = match_instances(_cameras(_scene(TABLE, other_ids)))
    assert [o.position for o in second.objects] == [o.position for o in first.objects]
    assert [o.mismatch for o in second.objects] == [o.mismatch for o in first.objects]
    _expect(second, _truth(TABLE, other_ids))


def test_an_object_one_camera_misses():
    labels = _scene(TABLE, TABLE_IDS)
    labels[2][labels[2] == TABLE_IDS[2][3]] = 0  # the large sphere, gone from camera 2
    result = match_instances(_cameras(labels))
    _expect(result, _truth(TABLE, TABLE_IDS, hidden={(2, 3)}))
    assert result.unmatched == 0
    strict = match_instances(_cameras(labels), min_views=3)
    truth = _truth(TABLE, TABLE_IDS)
    _expect(strict, [row for row in truth if row[0] is not TABLE[3]])
    assert strict.unmatched == 1
    assert strict.unused == ((0, TABLE_IDS[0][3]), (1, TABLE_IDS[1][3]))


def test_an_object_one_camera_alone_sees_is_counted():
    labels = _scene(TABLE, TABLE_IDS)
    for camera in (1, 2):
        labels[camera][labels[camera] == TABLE_IDS[camera][1]] = 0
    result = match_instances(_cameras(labels))
    _expect(result, [row for row in _truth(TABLE, TABLE_IDS) if row[0] is not TABLE[1]])
    assert result.unmatched == 1 and result.unused == ((0, TABLE_IDS[0][1]),)


def _adjacent(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a pixel of mask ``a`` has a 4-neighbour in mask ``b``."""
    return bool((a[:, 1:] & b[:, :-1]).any() or (a[:, :-1] & b[:, 1:]).any()
                or (a[1:] & b[:-1]).any() or (a[:-1] & b[1:]).any())


def test_touching_objects_stay_apart():
    # Two spheres touching on the table, one partly behind the other from camera 0.
    pair = [Sphere((0.06, 0.0, 0.06), 0.06), Sphere((-0.045, 0.02, 0.045), 0.045),
            Cylinder(-0.05, -0.16, 0.03, 0.12)]
    ids = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
    labels = _scene(pair, ids)
    assert all(_adjacent(image == i[0], image == i[1]) for image, i in zip(labels, ids))
    result = match_instances(_cameras(labels))
    _expect(result, _truth(pair, ids), tolerance=0.3)
    # A segmenter that merges the two in camera 0: the merged instance goes with the larger
    # sphere, the smaller is still found from the other two cameras.
    labels[0][labels[0] == ids[0][1]] = ids[0][0]
    merged = match_instances(_cameras(labels))
    _expect(merged, _truth(pair, ids, hidden={(0, 1)}), tolerance=0.3)


@pytest.mark.parametrize('seed', range(4))
def test_random_tables(seed):
    """Five objects of 5-20 cm anywhere on a 50 cm table, apart by at least 2 cm."""
    rng = np.random.default_rng(seed)
    objects: list = []
    while len(objects) < 5:
        x, y = rng.uniform(-0.25, 0.25, size=2)
        size = rng.uniform(0.05, 0.2)
        obj = (Sphere((x, y, size / 2), size / 2) if rng.random() < 0.5
               else Cylinder(x, y, rng.uniform(0.025, size / 2), size))
        radius = size / 2
        if all(math.dist((x, y), other.centre[:2]) > radius + other.size / 2 + 0.02
               for other in objects):
            objects.append(obj)
    ids = [list(rng.permutation(5) + 1) for _ in POSES]
    labels = _scene(objects, ids)
    # An object a camera barely sees (under a fifth of its pixels alone) may count as unseen.
    hidden = set()
    for c, image in enumerate(labels):
        for j, obj in enumerate(objects):
            alone = _labels([obj], [1], POSES[c])
            if np.count_nonzero(image == ids[c][j]) < 0.2 * np.count_nonzero(alone):
                hidden.add((c, j))
    result = match_instances(_cameras(labels))
    found = {tuple(o.instance_ids): o for o in result.objects}
    for obj, expected in _truth(objects, ids, hidden):
        if sum(k is not None for k in expected) < 2:
            continue
        matches = [o for key, o in found.items()
                   if all(e is None or k == e for k, e in zip(key, expected))]
        assert len(matches) == 1, (obj, expected, result)
        error = np.linalg.norm(np.subtract(matches[0].position, obj.centre))
        assert error < 0.3 * obj.size, (obj, matches[0].position)
    assert len(result.objects) <= len(objects)


def _disc(pose: np.ndarray, centre, radius: float, *, shift_px: float = 0.0) -> np.ndarray:
    """``(H, W)`` bool disc where a ball at ``centre`` would appear (moved right ``shift_px``)."""
    to_camera = np.linalg.inv(pose)
    point = to_camera[:3, :3] @ np.asarray(centre) + to_camera[:3, 3]
    u, v = (K @ point)[:2] / point[2]
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    return (cols - u - shift_px) ** 2 + (rows - v) ** 2 <= (radius * FOCAL_PX / point[2]) ** 2


BALL, BALL_RADIUS = np.array([0.0, 0.0, 0.05]), 0.04


def _along_ray(camera: int, factor: float) -> np.ndarray:
    """Return the point ``factor`` times as far as :data:`BALL` along the camera's ray to it."""
    centre = POSES[camera][:3, 3]
    return centre + factor * (BALL - centre)


def test_three_views_beat_a_closer_pair_of_two():
    # Camera 1 also sees something exactly on camera 0's ray through the ball, 30 % further and
    # as large there as the ball's mask says: paired with the ball in camera 0 it agrees better
    # than the ball's own views (camera 2 sees the ball half a radius off), but only two agree.
    ghost = _along_ray(0, 1.3)
    radius_px = BALL_RADIUS * FOCAL_PX / np.linalg.norm(BALL - POSES[2][:3, 3])
    masks = [{4: _disc(POSES[0], BALL, BALL_RADIUS)},
             {1: _disc(POSES[1], BALL, BALL_RADIUS), 2: _disc(POSES[1], ghost, 1.3 * BALL_RADIUS)},
             {9: _disc(POSES[2], BALL, BALL_RADIUS, shift_px=0.5 * radius_px)}]
    result = match_instances([CameraInstances(K, pose, m) for pose, m in zip(POSES, masks)])
    assert [o.instance_ids for o in result.objects] == [(4, 1, 9)]
    assert result.unmatched == 1 and result.unused == ((1, 2),)
    assert result.objects[0].mismatch > 0.1  # the pair of two would have agreed better


def test_instances_of_different_objects_are_not_paired():
    # Camera 0 alone sees a ball at ``lone``; camera 1 alone a ball whose ray passes two radii
    # from that one (or meets it, three times as large). Both see the ball at BALL.
    lone = np.array([0.2, 0.15, 0.04])
    rays = [lone - POSES[c][:3, 3] for c in (0, 1)]
    across = np.cross(*rays) / np.linalg.norm(np.cross(*rays))
    for other, radius, option in [(lone + 2 * BALL_RADIUS * across, BALL_RADIUS, 'gap'),
                                  (lone, 3 * BALL_RADIUS, 'size')]:
        masks = [{1: _disc(POSES[0], BALL, BALL_RADIUS), 2: _disc(POSES[0], lone, BALL_RADIUS)},
                 {1: _disc(POSES[1], BALL, BALL_RADIUS), 2: _disc(POSES[1], other, radius)}]
        assert not (masks[0][1] & masks[0][2]).any() and not (masks[1][1] & masks[1][2]).any()
        cameras = [CameraInstances(K, pose, m) for pose, m in zip(POSES, masks)]
        result = match_instances(cameras)
        assert [o.instance_ids for o in result.objects] == [(1, 1)], option
        assert result.unmatched == 2 and result.unused == ((0, 2), (1, 2))
        loose = {'gap_tolerance': 3.0} if option == 'gap' else {'size_ratio': 4.0}
        assert sorted(o.instance_ids for o in match_instances(cameras, **loose).objects) == \
            [(1, 1), (2, 2)], option


def test_a_third_camera_gives_only_a_nearby_instance():
    # Camera 2 does not see the ball but sees another three radii from where it would be.
    radius_px = BALL_RADIUS * FOCAL_PX / np.linalg.norm(BALL - POSES[2][:3, 3])
    masks = [{1: _disc(POSES[0], BALL, BALL_RADIUS)}, {1: _disc(POSES[1], BALL, BALL_RADIUS)},
             {5: _disc(POSES[2], BALL, BALL_RADIUS, shift_px=3 * radius_px)}]
    cameras = [CameraInstances(K, pose, m) for pose, m in zip(POSES, masks)]
    result = match_instances(cameras)
    assert [o.instance_ids for o in result.objects] == [(1, 1, None)]
    assert result.unmatched == 1 and result.unused == ((2, 5),)
    np.testing.assert_allclose(result.objects[0].position, BALL, atol=0.1 * BALL_RADIUS)
    loose = match_instances(cameras, match_tolerance=4.0)
    assert [o.instance_ids for o in loose.objects] == [(1, 1, 5)]


def test_rays_that_meet_behind_the_cameras_are_no_object():
    # Camera 0 sees a ball, a camera beside it another: their rays, drawn backwards, meet
    # behind both cameras.
    poses = [POSES[0], _camera_to_fixed(60.0, 35.0)]
    middle = 0.5 * (poses[0][:3, 3] + poses[1][:3, 3])
    behind = middle + 2.0 * (middle - BALL) / np.linalg.norm(middle - BALL)
    balls = [centre + 0.9 * (centre - behind) / np.linalg.norm(centre - behind)
             for centre in (pose[:3, 3] for pose in poses)]
    masks = [{1: _disc(pose, ball, BALL_RADIUS)} for pose, ball in zip(poses, balls)]
    assert all(m[1].sum() > 100 for m in masks)  # both balls are in the pictures
    result = match_instances([CameraInstances(K, pose, m) for pose, m in zip(poses, masks)])
    assert result == MatchResult((), 2, ((0, 1), (1, 1)))


def test_no_instances_no_objects():
    empty = [CameraInstances(K, pose, {}) for pose in POSES]
    assert match_instances(empty) == MatchResult((), 0, ())
    assert match_instances(empty[:1]) == MatchResult((), 0, ())


def test_matching_refuses_bad_cameras_and_options():
    good = _cameras(_scene(TABLE, TABLE_IDS))
    mask = np.zeros((HEIGHT, WIDTH), bool)
    cases = {
        'intrinsics': CameraInstances(np.zeros((3, 3)), POSES[0], {}),
        'camera_to_fixed': CameraInstances(K, np.full((4, 4), np.nan), {}),
        'expected \\(H, W\\)': CameraInstances(K, POSES[0], {1: mask, 2: mask[:, :-1]}),
        'more than max_instances': CameraInstances(K, POSES[0], {k: mask for k in range(33)}),
    }
    for words, bad in cases.items():
        with pytest.raises(InstanceError, match=words):
            match_instances(good[:1] + [bad])
    with pytest.raises(InstanceError, match='min_views'):
        match_instances(good, min_views=1)
    with pytest.raises(InstanceError, match='size_ratio'):
        match_instances(good, size_ratio=1.0)
