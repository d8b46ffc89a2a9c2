"""Tables with several target objects: images, instance label images and the truth of each.

:func:`make_view_set` is what tests and benchmarks use: it draws ``count`` held-out objects
(1 to :data:`MAX_OBJECTS`), stands them on one table at separate spots (their footprints never
overlap, though one may hide another in some views), renders every camera's RGB image and
instance label image, and returns each object's truth in the fixed frame. :func:`view_set` does
the same for objects chosen by the caller (the simulated rig's sequence).

The scene frame is ShapeNet's (y up), one unit the grid edge of a scale-1 object; object ``i``
is its canonical self turned about y by ``yaw_i``, scaled by ``scale_i`` and moved so that its
grid centre stands at ``offset_i``. The whole table is placed in the fixed frame (z up, table
surface z = 0) by one scene pose, as :mod:`.world` places a one-object scene, so
:func:`.world.camera_to_fixed` gives the cameras' poses, and object ``i`` stands at::

    position_i = scene.position + S R_z(h) SHAPENET_TO_ROS offset_i,
    heading_i = h + yaw_i, size_i = S scale_i            (S, h: the scene's size and heading)

Label ids are drawn per camera (a random injective map of the objects into 1..255), because
segmenters do not agree across cameras: nothing may depend on which id an object gets.
Everything is a pure function of the seed. Pure numpy: no ROS, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from ..placement import ObjectPose
from ..voxels import SHAPENET_TO_ROS
from .camera import Camera
from .dataset import dataset_object
from .scenes import (TABLE_HALF_SIZE, TABLETOP_PROFILES, CameraProfile, TabletopScene, _placed,
                     draw_room, render_scene_parts)
from .shapes import CATEGORIES, SyntheticObject
from .voxelize import voxelize
from .world import camera_to_fixed

#: Most objects on one table (they must fit on it with room between them).
MAX_OBJECTS = 8
#: Object seed of the held-out objects (the demo weights were trained on another one).
HELD_OUT_SEED = 20261125
#: Objects' scales in the scene frame, and the gap left between two footprints (scene units).
SCALE_RANGE = (0.7, 1.0)
FOOTPRINT_GAP = 0.08
#: Metres per scene unit (a scale-1 object's grid edge): objects of 8 to 30 cm, on a table.
UNIT_RANGE_M = (0.12, 0.30)


@dataclass(frozen=True, eq=False)
class ObjectTruth:
    """One object of a view set as it truly is.

    :ivar obj: the object in its canonical frame (grid edge 1, centred).
    :ivar grid: ``(32, 32, 32)`` bool, ShapeNet axes: its solid voxels (:func:`voxelize`).
    :ivar pose: where that grid stands in the fixed frame (:class:`ObjectPose`).
    """

    obj: SyntheticObject
    grid: np.ndarray
    pose: ObjectPose


@dataclass(frozen=True, eq=False)
class MultiObjectScene:
    """Several objects on one table, in the scene frame.

    :ivar layout: the placed objects as a :class:`TabletopScene` (``target`` is merely the
        first of them, ``distractors`` the others) with the table, light and colours.
    :ivar objects: the objects in their canonical frames, in the same order.
    :ivar offsets: ``(N, 3)`` each object's grid centre, scene frame.
    :ivar scales: ``(N,)`` each object's grid edge, scene units.
    :ivar yaws: ``(N,)`` each object's turn about the scene's y axis, radians.
    :ivar footprints: ``(N,)`` radius of each object's footprint on the table, scene units.
    """

    layout: TabletopScene
    objects: tuple[SyntheticObject, ...]
    offsets: np.ndarray
    scales: np.ndarray
    yaws: np.ndarray
    footprints: np.ndarray


@dataclass(frozen=True, eq=False)
class MultiObjectViewSet:
    """What the cameras see of a :class:`MultiObjectScene` placed in the fixed frame.

    :ivar images: per camera ``(H, W, 3)`` uint8 RGB.
    :ivar labels: per camera ``(H, W)`` uint8: 0 background, else that camera's id of the
        object in front.
    :ivar intrinsics: per camera ``(3, 3)`` K.
    :ivar camera_to_fixed: per camera ``(4, 4)`` pose of its optical frame, fixed frame.
    :ivar label_ids: per camera ``{object index: label id}`` of the objects it sees.
    :ivar truths: each object's truth, in the scene's object order.
    :ivar scene: the scene in its own frame; ``cameras`` its cameras there.
    """

    images: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    intrinsics: tuple[np.ndarray, ...]
    camera_to_fixed: tuple[np.ndarray, ...]
    label_ids: tuple[dict[int, int], ...]
    truths: tuple[ObjectTruth, ...]
    scene: MultiObjectScene
    cameras: tuple[Camera, ...]


def _turned(obj: SyntheticObject, yaw: float) -> SyntheticObject:
    """Return the object turned about its y axis by ``yaw`` (the ShapeNet up axis)."""
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # (3, 3)
    return SyntheticObject(obj.category, obj.seed, tuple(
        replace(p, centre=turn @ p.centre, rotation=turn @ p.rotation) for p in obj.parts))


def _spots(footprints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw ``(N, 2)`` x, z spots whose discs of radius ``footprints (N,)`` keep apart.

    Rejection sampling in a disc that grows until every object fits; the first spot is near
    the centre, so one object stands where the cameras aim.
    """
    radius = 0.3 + 0.8 * math.sqrt(len(footprints))
    while True:
        spots: list[np.ndarray] = []
        for footprint in footprints:
            for _ in range(400):
                r = radius * math.sqrt(rng.uniform()) if spots else rng.uniform(0.0, 0.3)
                angle = rng.uniform(0.0, 2.0 * math.pi)
                spot = np.array([r * math.cos(angle), r * math.sin(angle)])
                if all(np.linalg.norm(spot - other) >= footprint + footprints[k] + FOOTPRINT_GAP
                       for k, other in enumerate(spots)):
                    spots.append(spot)
                    break
            else:
                break  # no room: start again in a larger disc
        if len(spots) == len(footprints):
            return np.stack(spots)
        radius *= 1.15


def make_multi_object_scene(objects: Sequence[SyntheticObject], *, seed: int
                            ) -> MultiObjectScene:
    """Stand ``objects`` on one table at separate spots; the same input gives the same scene.

    :raises ValueError: no objects, more than :data:`MAX_OBJECTS`, or no room on the table.
    """
    if not 1 <= len(objects) <= MAX_OBJECTS:
        raise ValueError(f'between 1 and {MAX_OBJECTS} objects, got {len(objects)}')
    rng = np.random.default_rng([int(seed), 4421])
    scales = rng.uniform(*SCALE_RANGE, size=len(objects))
    yaws = rng.uniform(-math.pi, math.pi, size=len(objects))
    turned = [_turned(obj, float(yaw)) for obj, yaw in zip(objects, yaws)]
    bounds = [obj.bounds() for obj in turned]  # (lo (3,), hi (3,)) each
    footprints = np.array([0.5 * s * float(np.hypot(hi[0] - lo[0], hi[2] - lo[2]))
                           for s, (lo, hi) in zip(scales, bounds)])
    spots = _spots(footprints, rng)  # (N, 2) x, z
    if float(np.max(np.abs(spots) + footprints[:, None])) > TABLE_HALF_SIZE:
        raise ValueError(f'{len(objects)} objects do not fit on the table')
    table_y = 0.0
    # A grid centre stands scale * (-lowest point) above the table: the object rests on it.
    offsets = np.stack([np.array([x, table_y - s * float(lo[1]), z])
                        for (x, z), s, (lo, _) in zip(spots, scales, bounds)])  # (N, 3)
    placed = [_placed(obj, offset, float(s)) for obj, offset, s in zip(turned, offsets, scales)]
    lighting, table_rgb, wall_rgb = draw_room(rng)
    layout = TabletopScene(target=placed[0], distractors=tuple(placed[1:]), table_y=table_y,
                           lighting=lighting, table_rgb=table_rgb, wall_rgb=wall_rgb)
    return MultiObjectScene(layout, tuple(objects), offsets, scales, yaws, footprints)


def scene_cameras(scene: MultiObjectScene, count: int, *, seed: int,
                  profile: CameraProfile = TABLETOP_PROFILES[0], elevation_deg: float = 30.0,
                  first_azimuth_deg: float = 30.0,
                  profiles: Sequence[CameraProfile] = ()) -> list[Camera]:
    """Build ``count`` cameras spread around the table, each seeing every object whole.

    They aim at the middle of the objects from a distance at which the farthest footprint
    (and a height of one unit) fits in the image's shorter field of view with a margin.

    :param profiles: the cameras' kinds in turn (camera ``i`` is of ``profiles[i % n]``);
        empty: every camera is of ``profile``.
    :raises ValueError: ``count`` below 1.
    """
    if count < 1:
        raise ValueError(f'need at least one camera, got {count}')
    profiles = tuple(profiles) or (profile,)
    rng = np.random.default_rng([int(seed), 3301])
    middle = scene.offsets.mean(axis=0)
    look_at = (float(middle[0]), 0.4, float(middle[2]))
    reach = float(np.max(np.hypot(scene.offsets[:, 0] - middle[0],
                                  scene.offsets[:, 2] - middle[2]) + scene.footprints))
    cameras = []
    for i in range(count):
        kind = profiles[i % len(profiles)]
        half_fov = math.atan(math.tan(math.radians(kind.fov_deg) / 2.0)
                             * min(kind.width, kind.height) / kind.width)
        distance = 1.25 * max(reach, 0.8) / math.tan(half_fov)
        azimuth = first_azimuth_deg + 360.0 * i / count + float(rng.uniform(-10.0, 10.0))
        elevation = elevation_deg + float(rng.uniform(-5.0, 5.0))
        cameras.append(Camera(azimuth, elevation, 0.0, 1.0, kind.fov_deg, kind.width,
                              kind.height, max_distance=distance, look_at=look_at))
    return cameras


def render_labels(scene: MultiObjectScene, camera: Camera, ids: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Render one camera's image and instance label image.

    :param ids: ``(N,)`` the label id (1..255) of each object in this camera.
    :returns: ``image (H, W, 3)`` uint8 and ``labels (H, W)`` uint8, 0 where no object is seen.
    """
    image, part = render_scene_parts(scene.layout, camera)  # (H, W, 3), (H, W) part index
    placed = (scene.layout.target,) + scene.layout.distractors
    owner = np.repeat(np.arange(len(placed)), [len(obj.parts) for obj in placed])  # part -> obj
    lut = np.concatenate([[0], np.asarray(ids, dtype=np.uint8)[owner]]).astype(np.uint8)
    return image, lut[part + 1]  # part -1 (table, room) -> 0


def object_pose(scene: MultiObjectScene, index: int, scene_pose: ObjectPose) -> ObjectPose:
    """Return object ``index``'s grid pose in the fixed frame.

    :param scene_pose: where the scene stands (see the module docstring).
    """
    turn = scene_pose.rotation() @ SHAPENET_TO_ROS  # (3, 3) scene -> fixed directions
    position = np.asarray(scene_pose.position) + scene_pose.size_m * turn @ scene.offsets[index]
    # A turn by yaw about the scene's y is one by yaw about the fixed z (SHAPENET_TO_ROS maps
    # y to z and keeps the handedness).
    heading = math.remainder(scene_pose.heading_rad + float(scene.yaws[index]), 2.0 * math.pi)
    return ObjectPose(tuple(float(v) for v in position), heading,
                      scene_pose.size_m * float(scene.scales[index]))


def draw_label_ids(rng: np.random.Generator, count: int) -> np.ndarray:
    """Draw one camera's label ids of ``count`` objects: ``(count,)`` distinct, in 1..255."""
    return rng.choice(np.arange(1, 256), size=count, replace=False)


def make_view_set(count: int, *, seed: int, num_cameras: int = 3,
                  categories: Sequence[str] = tuple(CATEGORIES), object_seed: int = HELD_OUT_SEED,
                  profile: CameraProfile = TABLETOP_PROFILES[0]) -> MultiObjectViewSet:
    """Draw ``count`` objects, stand them on a table, place it and render every camera.

    :param count: objects, 1 to :data:`MAX_OBJECTS`; of ``categories`` in turn from a random
        start, each a random object index of the dataset with ``object_seed``.
    :raises ValueError: a bad count, or no camera.
    """
    rng = np.random.default_rng([int(seed), 5519])
    categories = tuple(categories)
    first = int(rng.integers(len(categories)))
    objects = [dataset_object(categories[(first + k) % len(categories)],
                              int(rng.integers(0, 1000)), seed=object_seed)
               for k in range(count)]
    return view_set(objects, seed=seed, num_cameras=num_cameras, profiles=(profile,), rng=rng)


def view_set(objects: Sequence[SyntheticObject], *, seed: int, num_cameras: int = 3,
             profiles: Sequence[CameraProfile] = (TABLETOP_PROFILES[0],),
             elevation_deg: float = 30.0,
             rng: Optional[np.random.Generator] = None) -> MultiObjectViewSet:
    """Stand ``objects`` on one table, place it in the fixed frame and render every camera.

    :param seed: the table's layout and its cameras (:func:`make_multi_object_scene`,
        :func:`scene_cameras` with ``profiles`` and ``elevation_deg``).
    :param rng: draws the table's metric size and pose, then each camera's label ids
        (:func:`draw_label_ids`); default a generator of ``seed``.
    :raises ValueError: no objects or too many, or no camera.
    """
    if rng is None:
        rng = np.random.default_rng([int(seed), 5521])
    count = len(objects)
    scene = make_multi_object_scene(objects, seed=seed)
    cameras = scene_cameras(scene, num_cameras, seed=seed, profiles=profiles,
                            elevation_deg=elevation_deg)
    unit_m = float(rng.uniform(*UNIT_RANGE_M))
    # The table's surface (scene y = table_y) is the fixed plane z = 0, as in world.py.
    scene_pose = ObjectPose((float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)),
                             -scene.layout.table_y * unit_m),
                            float(rng.uniform(-math.pi, math.pi)), unit_m)
    images, labels, label_ids = [], [], []
    for camera in cameras:
        ids = draw_label_ids(rng, count)  # (N,) this camera's
        image, label = render_labels(scene, camera, ids)
        seen = set(np.unique(label).tolist()) - {0}
        images.append(image)
        labels.append(label)
        label_ids.append({i: int(k) for i, k in enumerate(ids) if int(k) in seen})
    truths = tuple(ObjectTruth(obj, voxelize(obj), object_pose(scene, i, scene_pose))
                   for i, obj in enumerate(objects))
    return MultiObjectViewSet(
        tuple(images), tuple(labels), tuple(np.array(c.intrinsics) for c in cameras),
        tuple(camera_to_fixed(c, scene_pose) for c in cameras), tuple(label_ids), truths,
        scene, tuple(cameras))
