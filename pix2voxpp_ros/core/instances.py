"""Every object on the table: instance label images split into masks and matched across cameras.

A segmenter gives each camera a label image: 0 is background, ``k > 0`` instance ``k`` of that
camera. Ids are the camera's own, arbitrary, and may change from frame to frame, so which
instance of one camera is which of another is found from the calibration alone (each camera's
``K`` and the pose of its OpenCV optical frame in the fixed frame, z up), never from the ids.

:func:`split_instances` turns one label image into ``{id: mask}`` in bounded time: one
``bincount`` over the pixels, then one comparison per kept id, at most ``max_instances``.

:func:`match_instances` finds the objects, each with its instance in every camera that sees it:

1. **Instances**: each mask gives its centroid, the ray through it (fixed frame) and its
   equivalent-disc radius ``sqrt(area / pi)`` in pixels; a camera's instances are put in the
   order of their centroids (row, column, area), so nothing downstream depends on the ids.
2. **Hypotheses**: every pair of instances of two cameras meets where their centroid rays pass
   closest. A pair is kept when the rays cross at more than 2°, in front of both cameras, pass
   within ``gap_tolerance`` of the object's radius (each mask's radius taken to metres at its
   depth) and the two views agree on that radius within ``size_ratio``. With ``C`` cameras of at
   most ``max_instances`` instances there are at most ``C (C - 1) / 2 * max_instances²`` pairs.
3. **Support**: each hypothesis's point is projected into every other camera, where the instance
   it is given is the one whose centroid lies nearest, in units of that mask's radius, within
   ``match_tolerance`` radii, and whose metric radius at that depth agrees within
   ``size_ratio``. The nearest centroid, not the mask under the point: the centre of an object
   partly hidden by another projects into the other's mask.
4. **Choice**: greedily the hypothesis seen by most cameras, then of least mismatch (mean over
   its views of centroid distance in radii plus ``|log size ratio|``); its instances are taken,
   so each (camera, instance) belongs to one object at most. A hypothesis loses the views whose
   instance another object took, and dies when one of its own pair is taken. Wrong pairings
   (two objects on one epipolar line) have less support than the true ones and lose.
5. **Position**: the least-squares point nearest to the chosen instances' centroid rays.

Objects chosen with fewer than ``min_views`` cameras are left out and counted, as is every
instance no other camera matched (an object one camera alone sees). The objects come sorted by
position (x, then y, then z). Pure numpy: no ROS.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from .errors import Pix2VoxError
from .geometry import invert_pose
from .placement import CalibratedView

#: Most instances a camera may hold (a label image or a set of masks); bounds the pair count.
MAX_INSTANCES = 32
#: Fewest pixels an instance of a label image needs to be kept.
MIN_PIXELS = 16
#: Rays through two centroids that cross at less than this cannot fix a depth.
MIN_RAY_ANGLE_RAD = math.radians(2.0)
_LABEL_DTYPES = (np.uint8, np.uint16)


class InstanceError(Pix2VoxError, ValueError):
    """A label image, a mask set or a camera that cannot be split or matched, with the reason."""


@dataclass(frozen=True)
class CameraInstances:
    """One camera's instances for :func:`match_instances`.

    :ivar intrinsics: ``(3, 3)`` K (OpenCV pixel convention, no distortion).
    :ivar camera_to_fixed: ``(4, 4)`` pose of the optical frame (x right, y down, z forward) in
        the fixed frame.
    :ivar masks: ``{instance id: (H, W) mask}``, nonzero on the instance; one size per camera.
    """

    intrinsics: np.ndarray
    camera_to_fixed: np.ndarray
    masks: Mapping[int, np.ndarray]

    @classmethod
    def from_labels(cls, intrinsics: np.ndarray, camera_to_fixed: np.ndarray,
                    labels: np.ndarray, *, max_instances: int = MAX_INSTANCES,
                    min_pixels: int = MIN_PIXELS) -> 'CameraInstances':
        """Build from a label image (see :func:`split_instances`).

        :raises InstanceError: as :func:`split_instances`.
        """
        return cls(intrinsics, camera_to_fixed,
                   split_instances(labels, max_instances=max_instances, min_pixels=min_pixels))


@dataclass(frozen=True)
class MatchedObject:
    """One object seen by several cameras.

    :ivar position: ``(x, y, z)`` fixed frame, metres: the point nearest to the centroid rays of
        its instances (rough: a mask's centroid is not exactly the object's centre).
    :ivar size_m: rough width: the median over its views of the mask's equivalent-disc
        diameter taken to metres at the object's depth.
    :ivar instance_ids: the instance id in each camera, in the cameras' order; None where the
        camera does not see the object.
    :ivar views: the object's calibrated views (K, pose and that instance's mask as bool), in
        the cameras' order, one per id that is not None: what :func:`.placement.place_object`
        takes.
    :ivar mismatch: mean over its views of the centroid's distance from the projected point (in
        mask radii) plus ``|log|`` of the size ratio; 0 is a perfect agreement.
    """

    position: tuple[float, float, float]
    size_m: float
    instance_ids: tuple[Optional[int], ...]
    views: tuple[CalibratedView, ...]
    mismatch: float

    @property
    def cameras(self) -> tuple[int, ...]:
        """Indices of the cameras that see the object (the order of :attr:`views`)."""
        return tuple(i for i, k in enumerate(self.instance_ids) if k is not None)


@dataclass(frozen=True)
class MatchResult:
    """The result of :func:`match_instances`.

    :ivar objects: the objects seen by at least ``min_views`` cameras, sorted by position.
    :ivar unmatched: objects left out: those fewer than ``min_views`` cameras agree on, plus
        each instance that no other camera matched.
    :ivar unused: ``(camera, instance id)`` of every instance in no returned object, sorted.
    """

    objects: tuple[MatchedObject, ...]
    unmatched: int
    unused: tuple[tuple[int, int], ...]


def split_instances(labels: np.ndarray, *, max_instances: int = MAX_INSTANCES,
                    min_pixels: int = MIN_PIXELS) -> dict[int, np.ndarray]:
    """Split a label image into one bool mask per instance.

    Ids with fewer than ``min_pixels`` pixels (segmentation specks) are dropped. The pixels are
    counted once (``bincount``), so a flood of thousands of ids costs no more than a few.

    :param labels: ``(H, W)`` uint8 or uint16; 0 is background, ``k > 0`` instance ``k``.
    :returns: ``{id: (H, W) bool mask}`` in increasing id order.
    :raises InstanceError: another dtype or shape, bad limits, or more than ``max_instances`` ids
        of ``min_pixels`` pixels or more.
    """
    return {int(k): labels == k for k in instance_ids(labels, max_instances=max_instances,
                                                      min_pixels=min_pixels)}


def instance_ids(labels: np.ndarray, *, max_instances: int = MAX_INSTANCES,
                 min_pixels: int = MIN_PIXELS) -> np.ndarray:
    """Return the ids of a label image's instances of ``min_pixels`` pixels or more, increasing.

    One ``bincount`` over the pixels: what :func:`split_instances` keeps, without the masks
    (the node checks each label image so when it arrives).

    :raises InstanceError: as :func:`split_instances`.
    """
    if max_instances < 1 or min_pixels < 1:
        raise InstanceError(f'max_instances and min_pixels must be >= 1, got {max_instances} '
                            f'and {min_pixels}')
    if not isinstance(labels, np.ndarray) or labels.dtype not in _LABEL_DTYPES:
        kind = labels.dtype if isinstance(labels, np.ndarray) else type(labels).__name__
        raise InstanceError(f'a label image is a uint8 or uint16 array, got {kind}')
    if labels.ndim != 2 or labels.size == 0:
        raise InstanceError(f'a label image is (H, W), got shape {labels.shape}')
    counts = np.bincount(labels.ravel())  # (max id + 1,), at most 65536 entries
    counts[0] = 0  # background
    kept = np.flatnonzero(counts >= min_pixels)
    if len(kept) > max_instances:
        raise InstanceError(f'{len(kept)} instances of {min_pixels} pixels or more in the label '
                            f'image, more than max_instances = {max_instances}')
    return kept


@dataclass(frozen=True)
class _Camera:
    """A camera's instances in geometric order, with what matching needs of each."""

    index: int
    source: CameraInstances
    ids: tuple[int, ...]          # (N,) the camera's own ids
    masks: tuple[np.ndarray, ...]  # (N,) of (H, W) bool
    centroids: np.ndarray  # (N, 2) u, v
    radii_px: np.ndarray   # (N,) equivalent-disc radius
    rays: np.ndarray       # (N, 3) unit directions, fixed frame
    centre: np.ndarray     # (3,) optical centre, fixed frame
    fixed_to_camera: np.ndarray  # (4, 4)
    focal_px: float

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(P, 2)`` and depth ``(P,)`` of fixed-frame points ``(P, 3)``."""
        cam = points @ self.fixed_to_camera[:3, :3].T + self.fixed_to_camera[:3, 3]  # (P, 3)
        depth = cam[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = cam @ np.asarray(self.source.intrinsics, dtype=np.float64).T
            uv = uv[:, :2] / depth[:, None]
        return uv, depth


def _camera(index: int, source: CameraInstances, max_instances: int) -> _Camera:
    k = np.asarray(source.intrinsics, dtype=np.float64)
    pose = np.asarray(source.camera_to_fixed, dtype=np.float64)
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InstanceError(f'camera {index}: intrinsics must be a finite (3, 3) K with positive '
                            f'focal lengths')
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise InstanceError(f'camera {index}: camera_to_fixed must be a finite (4, 4) pose')
    if len(source.masks) > max_instances:
        raise InstanceError(f'camera {index}: {len(source.masks)} instances, more than '
                            f'max_instances = {max_instances}')
    shape = None
    rows = []  # (v, u, area, id, mask) of each non-empty mask
    for instance, mask in source.masks.items():
        mask = np.asarray(mask) != 0
        if mask.ndim != 2 or (shape is not None and mask.shape != shape):
            raise InstanceError(f'camera {index}: instance {instance} mask has shape '
                                f'{mask.shape}, expected (H, W) like the others')
        shape = mask.shape
        v, u = np.nonzero(mask)
        if len(v):
            rows.append((float(v.mean()), float(u.mean()), len(v), int(instance), mask))
    rows.sort(key=lambda row: row[:3])  # geometric order: the ids never decide anything
    centroids = np.array([[u, v] for v, u, *_ in rows]).reshape(-1, 2)
    pixels = np.concatenate([centroids, np.ones((len(rows), 1))], axis=1)  # (N, 3)
    rays = np.linalg.solve(k, pixels.T).T @ pose[:3, :3].T
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    return _Camera(index, source, tuple(row[3] for row in rows), tuple(row[4] for row in rows),
                   centroids, np.sqrt(np.array([row[2] for row in rows], dtype=np.float64)
                                      / math.pi),
                   rays.reshape(-1, 3), pose[:3, 3].copy(), invert_pose(pose),
                   float(math.sqrt(k[0, 0] * k[1, 1])))


def _closest_points(o1: np.ndarray, d1: np.ndarray, o2: np.ndarray, d2: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Midpoint ``(P, 3)``, gap ``(P,)`` and validity ``(P,)`` of lines ``o + t d`` (unit d).

    Valid: the lines cross at :data:`MIN_RAY_ANGLE_RAD` or more (the caller checks that the
    midpoint lies in front of both cameras).
    """
    w = o1 - o2  # (3,)
    b = np.einsum('pi,pi->p', d1, d2)
    d, e = d1 @ w, d2 @ w
    sin2 = 1.0 - b * b  # sin² of the angle between the rays
    crossing = sin2 > math.sin(MIN_RAY_ANGLE_RAD) ** 2
    denominator = np.where(crossing, sin2, 1.0)
    s = (b * e - d) / denominator
    t = (e - b * d) / denominator
    p1 = o1 + s[:, None] * d1
    p2 = o2 + t[:, None] * d2
    return 0.5 * (p1 + p2), np.linalg.norm(p1 - p2, axis=1), crossing


@dataclass(frozen=True)
class _Hypotheses:
    """Candidate objects and, per camera, the instance each is given (-1: none).

    ``assigned`` and ``cost`` are filled in place by :func:`_support`.
    """

    points: np.ndarray  # (P, 3) fixed frame
    radii_m: np.ndarray  # (P,) object radius
    seeds: np.ndarray   # (P, 2) the two cameras of the pair
    assigned: np.ndarray  # (P, C) instance index per camera, -1 none
    cost: np.ndarray    # (P, C) mismatch of that instance, inf where none


def _pairs(cameras: list[_Camera], gap_tolerance: float, size_ratio: float) -> _Hypotheses:
    """Every pair of instances of two cameras whose centroid rays meet (method, step 2)."""
    points, radii = [np.zeros((0, 3))], [np.zeros(0)]
    seeds, instances = [np.zeros((0, 2), np.int64)], [np.zeros((0, 2), np.int64)]
    for a, b in itertools.combinations(cameras, 2):
        ia, ib = np.meshgrid(np.arange(len(a.ids)), np.arange(len(b.ids)), indexing='ij')
        ia, ib = ia.ravel(), ib.ravel()  # (P,) every pair of instances
        mid, gap, valid = _closest_points(a.centre, a.rays[ia], b.centre, b.rays[ib])
        _, depth_a = a.project(mid)
        _, depth_b = b.project(mid)
        radius_a = a.radii_px[ia] * depth_a / a.focal_px  # (P,) metres
        radius_b = b.radii_px[ib] * depth_b / b.focal_px
        with np.errstate(divide='ignore', invalid='ignore'):
            keep = (valid & (depth_a > 0) & (depth_b > 0)
                    & (gap <= gap_tolerance * 0.5 * (radius_a + radius_b))
                    & (np.abs(np.log(radius_a / radius_b)) <= math.log(size_ratio)))
        points.append(mid[keep])
        radii.append(np.sqrt(radius_a[keep] * radius_b[keep]))
        seeds.append(np.tile(np.array([a.index, b.index], np.int64), (int(keep.sum()), 1)))
        instances.append(np.stack([ia[keep], ib[keep]], axis=1))
    seed_cameras, seed_instances = np.concatenate(seeds), np.concatenate(instances)
    count = len(seed_cameras)
    assigned = np.full((count, len(cameras)), -1, dtype=np.int64)
    for side in range(2):
        assigned[np.arange(count), seed_cameras[:, side]] = seed_instances[:, side]
    return _Hypotheses(np.concatenate(points), np.concatenate(radii), seed_cameras, assigned,
                       np.full((count, len(cameras)), np.inf))


def _support(hypotheses: _Hypotheses, cameras: list[_Camera], match_tolerance: float,
             size_ratio: float) -> None:
    """Give each hypothesis the nearest fitting instance of every camera (method, step 3)."""
    rows = np.arange(len(hypotheses.points))
    for camera in cameras:
        if not camera.ids or not len(rows):
            continue
        uv, depth = camera.project(hypotheses.points)  # (P, 2), (P,)
        with np.errstate(divide='ignore', invalid='ignore'):
            distance = (np.linalg.norm(uv[:, None, :] - camera.centroids[None], axis=2)
                        / camera.radii_px[None])  # (P, N) in mask radii
            radius_m = camera.radii_px[None] * depth[:, None] / camera.focal_px  # (P, N)
            size = np.abs(np.log(radius_m / hypotheses.radii_m[:, None]))
        cost = np.where(np.isfinite(distance + size), distance + size, np.inf)
        seeded = hypotheses.assigned[:, camera.index] >= 0  # this camera is one of the pair
        fits = (depth[:, None] > 0) & (distance <= match_tolerance) & \
            (size <= math.log(size_ratio))
        best = np.argmin(np.where(fits, cost, np.inf), axis=1)  # (P,)
        found = fits[rows, best] & ~seeded
        hypotheses.assigned[found, camera.index] = best[found]
        own = hypotheses.assigned[seeded, camera.index]
        hypotheses.cost[seeded, camera.index] = cost[rows[seeded], own]
        hypotheses.cost[found, camera.index] = cost[rows[found], best[found]]


def _choose(hypotheses: _Hypotheses) -> list[tuple[np.ndarray, float]]:
    """Greedy choice (method, step 4): ``(instance index per camera (C,), mismatch)`` each."""
    assigned, cost = hypotheses.assigned.copy(), hypotheses.cost.copy()
    rows = np.arange(len(assigned))
    alive = np.ones(len(assigned), dtype=bool)
    chosen = []
    while alive.any():
        seen = assigned >= 0
        support = seen.sum(axis=1)
        mismatch = np.where(seen, cost, 0.0).sum(axis=1) / np.maximum(support, 1)
        # Most support first, then least mismatch; ties by hypothesis order (geometric).
        order = np.lexsort((mismatch, -support))
        best = int(order[alive[order]][0])
        pick = assigned[best].copy()
        chosen.append((pick, float(mismatch[best])))
        for camera in np.flatnonzero(pick >= 0):
            taken = assigned[:, camera] == pick[camera]
            assigned[taken, camera] = -1
            cost[taken, camera] = np.inf
        # A hypothesis without one of its own pair is gone.
        alive &= (assigned[rows, hypotheses.seeds[:, 0]] >= 0) & \
            (assigned[rows, hypotheses.seeds[:, 1]] >= 0)
    return chosen


def _nearest_point(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Return the point ``(3,)`` nearest (least squares) to rays ``origins, directions (V, 3)``."""
    projectors = np.eye(3)[None] - directions[:, :, None] * directions[:, None, :]  # (V, 3, 3)
    return np.linalg.solve(projectors.sum(axis=0),
                           np.einsum('vij,vj->i', projectors, origins))


def _matched_object(cameras: list[_Camera], pick: np.ndarray, mismatch: float
                    ) -> MatchedObject:
    seeing = [camera for camera in cameras if pick[camera.index] >= 0]
    instances = [int(pick[camera.index]) for camera in seeing]
    position = _nearest_point(np.stack([camera.centre for camera in seeing]),
                              np.stack([c.rays[i] for c, i in zip(seeing, instances)]))
    diameters = [2.0 * c.radii_px[i] * float(c.project(position[None])[1][0]) / c.focal_px
                 for c, i in zip(seeing, instances)]
    ids: list[Optional[int]] = [None] * len(cameras)
    for camera, i in zip(seeing, instances):
        ids[camera.index] = camera.ids[i]
    views = tuple(CalibratedView(c.source.intrinsics, c.source.camera_to_fixed, c.masks[i])
                  for c, i in zip(seeing, instances))
    return MatchedObject(tuple(float(x) for x in position), float(np.median(diameters)),
                         tuple(ids), views, mismatch)


def match_instances(cameras: Sequence[CameraInstances], *, min_views: int = 2,
                    max_instances: int = MAX_INSTANCES, gap_tolerance: float = 0.75,
                    match_tolerance: float = 1.0, size_ratio: float = 2.0) -> MatchResult:
    """Find the objects that several calibrated cameras see, and each one's instance in each.

    The method is the module docstring's. The result does not depend on the id values.

    :param cameras: each camera's K, pose and instance masks; all in one fixed frame.
    :param min_views: fewest cameras an object must be matched in to be returned (>= 2).
    :param max_instances: most instances a camera may hold (bounds the work).
    :param gap_tolerance: how close two centroid rays must pass, in object radii.
    :param match_tolerance: how near a projected point must lie to a centroid, in mask radii.
    :param size_ratio: largest ratio between two views' estimates of the object's radius.
    :returns: the objects (sorted by x, then y, then z) and what was left out.
    :raises InstanceError: a bad K, pose or mask, too many instances, bad options.
    """
    if min_views < 2:
        raise InstanceError(f'min_views must be >= 2 (one view fixes no depth), got {min_views}')
    if not (gap_tolerance > 0 and match_tolerance > 0 and size_ratio > 1):
        raise InstanceError(f'gap_tolerance and match_tolerance must be > 0 and size_ratio > 1, '
                            f'got {gap_tolerance}, {match_tolerance} and {size_ratio}')
    prepared = [_camera(i, source, max_instances) for i, source in enumerate(cameras)]
    hypotheses = _pairs(prepared, gap_tolerance, size_ratio)
    _support(hypotheses, prepared, match_tolerance, size_ratio)
    objects, unmatched = [], 0
    alone = {(c.index, i) for c in prepared for i in range(len(c.ids))}  # in no choice yet
    for pick, mismatch in _choose(hypotheses):
        # Chosen in order of support: the first below min_views ends the objects.
        if int((pick >= 0).sum()) < min_views:
            unmatched += 1
        else:
            objects.append(_matched_object(prepared, pick, mismatch))
        alone -= {(int(c), int(pick[c])) for c in np.flatnonzero(pick >= 0)}
    unmatched += len(alone)  # instances no other camera matched
    objects.sort(key=lambda o: o.position)
    returned = {(c, k) for o in objects for c, k in enumerate(o.instance_ids) if k is not None}
    unused = sorted((c.index, k) for c in prepared for k in c.ids if (c.index, k) not in returned)
    return MatchResult(tuple(objects), unmatched, tuple(unused))
