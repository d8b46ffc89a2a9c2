"""Pair a reconstruction's clouds with the rig's truth, views and object name of the same stamp.

The simulated rig stamps every message of a tick alike (images, masks, the true grid, the object
name) and the reconstruction node stamps a cloud like the newest frame it used, so a cloud is
scored once the messages of its stamp are known. :class:`StampScorer` keeps what has arrived,
from any thread, and scores the first cloud of each object (IoU, :func:`.metrics.iou`). The demo's
ROS collector feeds it; no ROS here.

Placed clouds (``placement: calibrated``, ``placed=True``) are in the fixed frame: such a cloud is
scored once the node's placement of its stamp (``~/object_pose`` and the grid's size) and the
rig's true placement of that stamp are known too. Its grid is recovered in the object frame for
the canonical IoU and scored in the fixed frame against the truth
(:func:`.metrics.score_placement`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping, Optional

import numpy as np

from .metrics import (PlacementScore, cloud_to_voxels, iou, placed_cloud_to_voxels,
                      ros_grid_to_shapenet, score_placement)
from .placement import ObjectPose

KEPT_TICKS = 64  # views and masks of this many recent stamps are kept: only recent ticks matter


@dataclass
class ScoredObject:
    """One object of the demo and the first reconstruction made only from its views."""

    name: str
    stamp_ns: int
    iou: float
    points: int
    truth_voxels: int
    latency_s: float
    prediction: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    views: list[np.ndarray] = field(repr=False)
    cloud: np.ndarray = field(repr=False)  # (N, 4) x, y, z, occupancy as published
    masks: list[np.ndarray] = field(default_factory=list, repr=False)  # mono8, when the rig has
    # Placed clouds: the node's and the true placement, the world scores.
    pose: Optional[ObjectPose] = None
    true_pose: Optional[ObjectPose] = None
    placement: Optional[PlacementScore] = None
    # Per view, when known (pictures): (K (3, 3), camera pose (4, 4) in the fixed frame).
    calibration: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)


class StampScorer:
    """Collect truths, views, masks, names and clouds by stamp; score each object's first cloud.

    :param object_size_m: edge of the grid in metres (the node's and the rig's).
    :param cameras: views a stamp needs before its cloud is scored.
    :param settle_s: score only clouds stamped at least this long after their object's first
        tick (a moving camera's first clouds of an object still hold key frames of the one before).
    :param placed: clouds are placed in the fixed frame; each also needs its placement and the
        true placement of its stamp.
    :param true_pose: the truth's placement at every stamp (a rig that publishes none: its grid
        fixed in the fixed frame); None: from :meth:`add_true_pose`.
    """

    def __init__(self, *, object_size_m: float, cameras: int, settle_s: float = 0.0,
                 placed: bool = False, true_pose: Optional[ObjectPose] = None) -> None:
        self.object_size_m = object_size_m
        self.cameras = cameras
        self.settle_ns = int(settle_s * 1e9)
        self.placed = placed
        self.fixed_true_pose = true_pose
        self.lock = threading.Lock()
        self.names: dict[int, str] = {}  # tick stamp -> object name
        self.truths: dict[int, np.ndarray] = {}  # tick stamp -> truth grid (ROS axes)
        self.views: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> rgb
        self.masks: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> mono8
        self.clouds: list[tuple[int, np.ndarray, float]] = []  # not yet scored clouds
        self.latencies: list[float] = []
        self.scored: dict[str, ScoredObject] = {}  # object name -> its first scored cloud
        self.true_poses: dict[int, ObjectPose] = {}  # tick stamp -> true placement
        # cloud stamp -> what the node said of its placement: position and heading, size
        self.placements: dict[int, dict[str, object]] = {}

    def add_name(self, stamp_ns: int, name: str) -> None:
        """Record the name of the object the rig showed at ``stamp_ns``."""
        with self.lock:
            self.names[stamp_ns] = name

    def add_truth(self, stamp_ns: int, points: np.ndarray) -> None:
        """Record the true grid of ``stamp_ns`` from its ``(N, 3)`` voxel centres."""
        grid = cloud_to_voxels(points, self.object_size_m)
        with self.lock:
            self.truths[stamp_ns] = grid

    def add_view(self, stamp_ns: int, camera: int, image: np.ndarray) -> None:
        """Record camera ``camera``'s rgb image ``(H, W, 3)`` of ``stamp_ns``."""
        with self.lock:
            keep_recent(self.views)
            self.views.setdefault(stamp_ns, {})[camera] = image

    def add_mask(self, stamp_ns: int, camera: int, mask: np.ndarray) -> None:
        """Record camera ``camera``'s mono8 object mask ``(H, W)`` of ``stamp_ns``."""
        with self.lock:
            keep_recent(self.masks)
            self.masks.setdefault(stamp_ns, {})[camera] = mask

    def add_true_pose(self, stamp_ns: int, pose: ObjectPose) -> None:
        """Record where the rig's target stood at ``stamp_ns`` (its grid's pose and size)."""
        with self.lock:
            keep_recent(self.true_poses)
            self.true_poses[stamp_ns] = pose

    def add_object_pose(self, stamp_ns: int, position: tuple[float, float, float],
                        heading_rad: float) -> None:
        """Record the placed grid's centre and heading of the cloud of ``stamp_ns``."""
        with self.lock:
            keep_recent(self.placements)
            self.placements.setdefault(stamp_ns, {}).update(position=position,
                                                            heading_rad=heading_rad)

    def add_object_size(self, stamp_ns: int, size_m: float) -> None:
        """Record the placed grid's edge (metres) of the cloud of ``stamp_ns``."""
        with self.lock:
            keep_recent(self.placements)
            self.placements.setdefault(stamp_ns, {})['size_m'] = size_m

    def add_cloud(self, stamp_ns: int, cloud: np.ndarray, latency_s: float) -> None:
        """Record a reconstruction: ``(N, 4)`` x, y, z, occupancy, and how late it arrived."""
        with self.lock:
            self.clouds.append((stamp_ns, cloud, latency_s))
            self.latencies.append(latency_s)

    def score(self) -> list[ScoredObject]:
        """Score the first cloud of each object whose truth and views are known, in order.

        A scored object stays scored; clouds of objects already scored, or too old to ever get
        their truth and views, are forgotten.
        """
        with self.lock:
            waiting = []
            for stamp, cloud, latency in self.clouds:
                name = self.names.get(stamp)
                if name in self.scored or self._settling(stamp, name):
                    continue
                if name is None or stamp not in self.truths or len(
                        self.views.get(stamp, {})) < self.cameras or (
                        self.placed and not self._placements(stamp)):
                    if not self.views or stamp >= min(self.views):
                        waiting.append((stamp, cloud, latency))  # its messages may come
                    continue
                self.scored[name] = self._scored(name, stamp, cloud, latency)
            self.clouds = waiting
            return sorted(self.scored.values(), key=lambda s: s.stamp_ns)

    def missed(self) -> list[str]:
        """Return the objects shown before the last scored one that got no scored cloud, in order.

        (A placed scene's node publishes nothing for a view set it cannot place.)
        """
        with self.lock:
            return unscored_before(self.names, self.scored)

    def _settling(self, stamp: int, name: str | None) -> bool:
        """Whether a cloud of ``name`` may hold key frames of the object before."""
        return name is not None and bool(self.settle_ns) and stamp - min(
            s for s, n in self.names.items() if n == name) < self.settle_ns

    def _placements(self, stamp: int) -> Optional[tuple[ObjectPose, ObjectPose]]:
        """Return the node's and the true placement of a placed cloud's stamp, once known."""
        parts = self.placements.get(stamp, {})
        truth = self.fixed_true_pose or self.true_poses.get(stamp)
        if truth is None or len(parts) < 3:
            return None
        return ObjectPose(**parts), truth

    def _scored(self, name: str, stamp: int, cloud: np.ndarray,
                latency: float) -> ScoredObject:
        truth = self.truths[stamp]
        views = self.views[stamp]
        masks = self.masks.get(stamp, {})
        pose = true_pose = placement = None
        if self.placed:
            pose, true_pose = self._placements(stamp)
            prediction = placed_cloud_to_voxels(cloud[:, :3], pose)  # the grid frame's voxels
            placement = score_placement(ros_grid_to_shapenet(prediction), pose,
                                        ros_grid_to_shapenet(truth), true_pose)
        else:
            prediction = cloud_to_voxels(cloud[:, :3], self.object_size_m)
        return ScoredObject(
            name=name, stamp_ns=stamp, iou=iou(prediction, truth), points=len(cloud),
            truth_voxels=int(truth.sum()), latency_s=latency, prediction=prediction,
            truth=truth, views=[views[i] for i in range(self.cameras)], cloud=cloud,
            masks=[masks[i] for i in range(self.cameras)] if len(masks) == self.cameras else [],
            pose=pose, true_pose=true_pose, placement=placement)


def keep_recent(by_stamp: dict[int, Any]) -> None:
    """Forget the oldest stamp once more than :data:`KEPT_TICKS` are kept (memory bound)."""
    if len(by_stamp) > KEPT_TICKS:
        del by_stamp[min(by_stamp)]


def unscored_before(names: Mapping[int, Hashable], scored: Mapping[Hashable, Any]
                    ) -> list[Hashable]:
    """Return what was shown before the last scored one but never scored, in showing order.

    :param names: tick stamp -> what the rig showed then (an object's name, a table's names).
    :param scored: what was scored, by the same key; each value has a ``stamp_ns``.
    """
    if not scored:
        return []
    last = max(s.stamp_ns for s in scored.values())
    first_tick: dict[Hashable, int] = {}
    for stamp, name in sorted(names.items()):
        first_tick.setdefault(name, stamp)
    return [name for name, stamp in sorted(first_tick.items(), key=lambda item: item[1])
            if stamp < last and name not in scored]
