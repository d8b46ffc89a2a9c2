"""Several placed objects of one view set: the record the outputs take, boxes, scene changes.

:class:`PlacedObject` is one reconstructed and placed object with a stable id (the same physical
object keeps its id from one view set to the next); the ROS conversions build the multi-object
cloud, markers, poses, detections and collision objects from a sequence of them.
:func:`object_box` is the tight box of an object's voxels in the fixed frame.
:func:`collision_changes` says which objects a planning scene must add, move or remove, given
what it was last sent (MoveIt's ADD / MOVE / REMOVE operations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Mapping, Optional, Sequence

import numpy as np

from .errors import Pix2VoxError
from .placement import ObjectPose
from .voxels import grid_to_points, grid_to_ros_axes

#: Ids become visualization_msgs/Marker ids, an int32.
MAX_OBJECT_ID = 2 ** 31 - 1
#: Default tolerances under which a pose counts as unchanged for the planning scene: a voxel of
#: a 16 cm object is 5 mm; a sent MOVE costs the planner a collision-world update.
POSITION_TOLERANCE_M = 0.005
HEADING_TOLERANCE_RAD = math.radians(2.0)
SIZE_TOLERANCE = 0.02  # relative change of the grid's edge


class ObjectRecordError(Pix2VoxError, ValueError):
    """A placed object's record is inconsistent: its id, grid shapes or category."""


@dataclass(frozen=True, eq=False)
class PlacedObject:
    """One object of a view set, reconstructed and placed in the fixed frame.

    :ivar object_id: stable id of the tracked object, 0 .. :data:`MAX_OBJECT_ID`.
    :ivar occupied: ``(D, D, D)`` bool, indexed (x, y, z) in ShapeNet axes (the network's).
    :ivar pose: where the grid stands in the fixed frame, and its edge in metres.
    :ivar probabilities: ``(D, D, D)`` float occupancy probabilities, same axes; None: unknown
        (outputs then give occupied voxels probability 1).
    :ivar category: class name where known (e.g. ``'mug'``), else None.
    :raises ObjectRecordError: an id out of range, grids that are not one cube, an empty
        category string.
    """

    object_id: int
    occupied: np.ndarray
    pose: ObjectPose
    probabilities: Optional[np.ndarray] = None
    category: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.object_id, bool) or not isinstance(self.object_id, (int, np.integer)) \
                or not 0 <= int(self.object_id) <= MAX_OBJECT_ID:
            raise ObjectRecordError(f'object_id must be an int in 0..{MAX_OBJECT_ID}, got '
                                    f'{self.object_id!r}')
        shape = np.shape(self.occupied)
        if len(shape) != 3 or len(set(shape)) != 1 or shape[0] < 1:
            raise ObjectRecordError(f'object {self.object_id}: occupied must be (D, D, D), '
                                    f'got shape {shape}')
        if self.probabilities is not None and np.shape(self.probabilities) != shape:
            raise ObjectRecordError(f'object {self.object_id}: probabilities of shape '
                                    f'{np.shape(self.probabilities)} for a grid of {shape}')
        if self.category is not None and not (isinstance(self.category, str) and self.category):
            raise ObjectRecordError(f'object {self.object_id}: category must be a non-empty '
                                    f'string or None, got {self.category!r}')

    @property
    def resolution(self) -> int:
        """Voxels along an edge of the grid (D)."""
        return int(np.shape(self.occupied)[0])

    def occupied_points(self) -> tuple[np.ndarray, np.ndarray]:
        """Occupied voxel centres in the fixed frame and their probabilities.

        :returns: ``(points (N, 3) float32 metres, values (N,) float32)``, ``np.nonzero`` order
            of the ShapeNet-axes grid.
        """
        occupied = np.asarray(self.occupied, dtype=bool)
        points, _ = grid_to_points(occupied, threshold=0.5, ros_axes=True)  # grid-edge units
        if self.probabilities is None:
            values = np.ones(len(points), np.float32)
        else:
            values = np.asarray(self.probabilities, dtype=np.float32)[np.nonzero(occupied)]
        return self.pose.to_fixed(points).astype(np.float32), values


def check_unique_ids(objects: Sequence[PlacedObject]) -> None:
    """Refuse a view set in which two objects share an id (their markers would overwrite).

    :raises ObjectRecordError: the ids repeated.
    """
    ids = [int(obj.object_id) for obj in objects]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ObjectRecordError(f'object ids {repeated} occur more than once in one view set')


@dataclass(frozen=True)
class ObjectBox:
    """The tight box of an object's occupied voxels (their outer faces), in the fixed frame.

    :ivar centre: ``(x, y, z)`` metres, fixed frame.
    :ivar size: edges along the grid's own x, y, z (ROS axes), metres.
    :ivar heading_rad: the box turns with the grid about the fixed z axis.
    """

    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    heading_rad: float


def object_box(obj: PlacedObject) -> ObjectBox:
    """Return the tight box of ``obj``'s occupied voxels; the whole grid when none is."""
    ros = grid_to_ros_axes(np.asarray(obj.occupied, dtype=bool))  # (D, D, D) along ROS x, y, z
    pose = obj.pose
    if not ros.any():
        return ObjectBox(tuple(float(v) for v in pose.position), (pose.size_m,) * 3,
                         pose.heading_rad)
    lows, highs = [], []
    for axis in range(3):
        filled = np.flatnonzero(ros.any(axis=tuple(a for a in range(3) if a != axis)))
        lows.append(filled[0])
        highs.append(filled[-1] + 1)  # the far face of the last voxel
    low = np.array(lows) / obj.resolution - 0.5  # (3,) grid-edge units, ROS axes
    high = np.array(highs) / obj.resolution - 0.5
    centre = pose.to_fixed(0.5 * (low + high))[0]
    return ObjectBox(tuple(float(v) for v in centre),
                     tuple(float(v) for v in (high - low) * pose.size_m), pose.heading_rad)


@dataclass(frozen=True)
class CollisionChanges:
    """What a planning scene must be sent so that it shows the current objects.

    :ivar add: ids new to the scene, or reshaped / resized (sent whole, with their mesh).
    :ivar move: ids whose pose changed beyond the tolerances (sent with the new pose only).
    :ivar remove: ids in the scene that are no longer seen.
    :ivar unchanged: ids within the tolerances (nothing sent).
    :ivar scene: the poses the scene holds once the changes are applied: the current pose of
        added and moved ids, the previously sent one of unchanged ids (so slow drift adds up
        to a MOVE). Pass it as ``previous`` next time.
    """

    add: tuple[int, ...]
    move: tuple[int, ...]
    remove: tuple[int, ...]
    unchanged: tuple[int, ...]
    scene: dict[int, ObjectPose]


def _moved(before: ObjectPose, after: ObjectPose, position_m: float, heading_rad: float) -> bool:
    shift = float(np.linalg.norm(np.subtract(after.position, before.position)))
    turn = abs(math.remainder(after.heading_rad - before.heading_rad, 2.0 * math.pi))
    return shift > position_m or turn > heading_rad


def collision_changes(
    previous: Mapping[int, ObjectPose],
    current: Mapping[int, ObjectPose],
    *,
    reshaped: Collection[int] = (),
    position_tolerance_m: float = POSITION_TOLERANCE_M,
    heading_tolerance_rad: float = HEADING_TOLERANCE_RAD,
    size_tolerance: float = SIZE_TOLERANCE,
) -> CollisionChanges:
    """Compare the scene's objects with the current ones: which to ADD, MOVE and REMOVE.

    A MOVE keeps the shape the scene has, so an object whose grid edge changed by more than
    ``size_tolerance`` (relative), or whose id is in ``reshaped`` (the caller's say: its mesh
    changed), is added again: MoveIt replaces an object added under an existing id.

    :param previous: id -> pose as the scene was last sent (``CollisionChanges.scene``).
    :param current: id -> pose of the objects of this view set.
    :returns: the changes, each tuple of ids sorted.
    """
    add, move, unchanged = [], [], []
    scene: dict[int, ObjectPose] = {}
    for object_id in sorted(current):
        pose, before = current[object_id], previous.get(object_id)
        if before is None or object_id in reshaped or \
                abs(math.log(pose.size_m / before.size_m)) > math.log1p(size_tolerance):
            add.append(object_id)
        elif _moved(before, pose, position_tolerance_m, heading_tolerance_rad):
            move.append(object_id)
        else:
            unchanged.append(object_id)
            scene[object_id] = before
            continue
        scene[object_id] = pose
    remove = tuple(sorted(set(previous) - set(current)))
    return CollisionChanges(tuple(add), tuple(move), remove, tuple(unchanged), scene)
