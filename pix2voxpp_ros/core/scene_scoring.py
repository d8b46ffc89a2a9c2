"""Score every object of a table: what the node found in one view set against the true objects.

The multi-object demo (``pix2voxpp-demo --objects-per-scene N``) shows tables of N objects;
the node (``mask_mode: instances``) publishes every object it found in a view set, each placed
in the fixed frame. :func:`pair_objects` pairs found and true objects by position (nearest
first, within a share of the true size), :func:`score_table` scores each pair as the
single-object placed demo scores its object (:func:`.metrics.score_placement`: world IoU,
position, size and heading errors, and the canonical IoU in the object frame) and counts the
objects found, missed and invented. :class:`TableStampScorer` pairs the node's object sets with
the rig's truths, names and views of the same stamp and scores the first set of each table;
:func:`tables_summary` gives the totals. The demo's ROS collector feeds it; no ROS here.

Grids are ``(32, 32, 32)`` bool indexed along the ROS axes of their own frame, as
:func:`.metrics.cloud_to_voxels` returns them from voxel centres.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from .metrics import (PlacementScore, cloud_to_voxels, iou, placement_summary,
                      ros_grid_to_shapenet, score_placement)
from .placement import ObjectPose
from .scoring import keep_recent, unscored_before

#: A found object belongs to a true one when their grid centres lie within this share of the
#: true object's size (the table's objects stand further apart: their footprints never overlap).
PAIR_TOLERANCE = 0.5


@dataclass(frozen=True, eq=False)
class PlacedGrid:
    """One object as a placed grid: found by the node, or true.

    :ivar label: the true object's name, or the found object's id as text.
    :ivar grid: ``(32, 32, 32)`` bool, ROS axes of its own frame.
    :ivar pose: where that grid stands in the fixed frame, and its edge.
    """

    label: str
    grid: np.ndarray
    pose: ObjectPose


@dataclass(frozen=True)
class ObjectScore:
    """A found object paired with a true one.

    :ivar name: the true object's name; ``found``: the found object's label (its id).
    :ivar iou: canonical IoU, both grids in their own object frames.
    :ivar placement: the world scores of the placed grid against the truth.
    """

    name: str
    found: str
    iou: float
    placement: PlacementScore

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        """Return the scores for JSON (``position_error_rel`` added)."""
        return dict({'name': self.name, 'object_id': self.found,
                     'iou': round(self.iou, digits)}, **self.placement.as_dict(digits),
                    position_error_rel=round(self.placement.position_error_rel, digits))


@dataclass
class TableScore:
    """One table's first view set the node published, scored.

    :ivar objects: the pairs, in the truth's order.
    :ivar missed: names of the true objects no found object belongs to.
    :ivar invented: labels of the found objects that belong to no true object.
    """

    name: str
    stamp_ns: int
    latency_s: float
    objects: list[ObjectScore]
    missed: list[str]
    invented: list[str]
    found: list[PlacedGrid] = field(default_factory=list, repr=False)
    truths: list[PlacedGrid] = field(default_factory=list, repr=False)
    views: list[np.ndarray] = field(default_factory=list, repr=False)  # rgb, per camera
    labels: list[np.ndarray] = field(default_factory=list, repr=False)  # label images

    @property
    def total(self) -> int:
        """The number of true objects on the table."""
        return len(self.objects) + len(self.missed)


def pair_objects(found: Sequence[ObjectPose], truths: Sequence[ObjectPose], *,
                 tolerance: float = PAIR_TOLERANCE) -> list[tuple[int, int]]:
    """Pair found and true objects by position, nearest first, each at most once.

    The distance between grid centres is taken relative to the true object's size; pairs
    further than ``tolerance`` are not made.

    :returns: ``(found index, true index)`` pairs, in the truths' order.
    """
    if not found or not truths:
        return []
    at = np.array([p.position for p in found], dtype=np.float64)  # (F, 3)
    true_at = np.array([p.position for p in truths], dtype=np.float64)  # (T, 3)
    sizes = np.array([p.size_m for p in truths], dtype=np.float64)  # (T,)
    relative = np.linalg.norm(at[:, None] - true_at[None], axis=2) / sizes[None]  # (F, T)
    pairs: dict[int, int] = {}  # true index -> found index
    used: set[int] = set()
    order = np.argsort(relative, axis=None, kind='stable')
    for f, t in zip(*np.unravel_index(order, relative.shape)):
        if relative[f, t] > tolerance:
            break
        if int(f) not in used and int(t) not in pairs:
            pairs[int(t)] = int(f)
            used.add(int(f))
    return [(pairs[t], t) for t in sorted(pairs)]


def score_table(found: Sequence[PlacedGrid], truths: Sequence[PlacedGrid], *, name: str = '',
                stamp_ns: int = 0, latency_s: float = 0.0,
                tolerance: float = PAIR_TOLERANCE) -> TableScore:
    """Pair a view set's found objects with the table's true ones and score each pair."""
    pairs = pair_objects([f.pose for f in found], [t.pose for t in truths], tolerance=tolerance)
    scores = []
    for f, t in pairs:
        mine, truth = found[f], truths[t]
        scores.append(ObjectScore(
            name=truth.label, found=mine.label, iou=iou(mine.grid, truth.grid),
            placement=score_placement(ros_grid_to_shapenet(mine.grid), mine.pose,
                                      ros_grid_to_shapenet(truth.grid), truth.pose)))
    paired_found = {f for f, _ in pairs}
    paired_truths = {t for _, t in pairs}
    return TableScore(
        name=name, stamp_ns=stamp_ns, latency_s=latency_s, objects=scores,
        missed=[t.label for k, t in enumerate(truths) if k not in paired_truths],
        invented=[f.label for k, f in enumerate(found) if k not in paired_found],
        found=list(found), truths=list(truths))


def truth_grids(points: np.ndarray, instances: np.ndarray, count: int,
                object_size_m: float) -> list[np.ndarray]:
    """Split a truth cloud of several objects into each one's grid.

    :param points: ``(N, 3)`` voxel centres, each object's in its canonical frame.
    :param instances: ``(N,)`` the truth index of each point's object.
    :param count: how many objects the table holds (an object without a point: empty grid).
    """
    instances = np.asarray(instances).reshape(-1)
    return [cloud_to_voxels(points[instances == k], object_size_m) for k in range(count)]


class TableStampScorer:
    """Collect the rig's truths and the node's object sets by stamp; score each table's first.

    Feed it from any thread: the rig's names (:meth:`add_names`), truth grids
    (:meth:`add_truths`) and true placements (:meth:`add_true_poses`), the node's found objects
    (:meth:`add_found`), and for pictures views and label images. An object set is scored once
    its stamp has the names, every truth and every true placement.

    :param tolerance: see :func:`pair_objects`.
    """

    def __init__(self, *, tolerance: float = PAIR_TOLERANCE) -> None:
        self.tolerance = tolerance
        self.lock = threading.Lock()
        self.names: dict[int, tuple[str, ...]] = {}  # tick stamp -> the table's object names
        self.truths: dict[int, list[np.ndarray]] = {}  # tick stamp -> grid per truth index
        self.true_poses: dict[int, dict[int, ObjectPose]] = {}  # tick stamp -> index -> pose
        self.views: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> rgb
        self.labels: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> labels
        self.found: list[tuple[int, list[PlacedGrid], float]] = []  # not yet scored sets
        self.latencies: list[float] = []
        self.scored: dict[tuple[str, ...], TableScore] = {}  # names -> the first scored set
        self.forgotten = 0  # sets whose truth never came whole (messages the scorer lost)

    def add_names(self, stamp_ns: int, names: Sequence[str]) -> None:
        """Record the names of the objects on the table shown at ``stamp_ns``, truth order."""
        with self.lock:
            self.names[stamp_ns] = tuple(names)

    def add_truths(self, stamp_ns: int, grids: Sequence[np.ndarray]) -> None:
        """Record each true object's grid (ROS axes, canonical frame) of ``stamp_ns``."""
        with self.lock:
            keep_recent(self.truths)
            self.truths[stamp_ns] = list(grids)

    def add_true_poses(self, stamp_ns: int, poses: dict[int, ObjectPose]) -> None:
        """Record where each true object stood at ``stamp_ns``, by truth index."""
        with self.lock:
            keep_recent(self.true_poses)
            self.true_poses[stamp_ns] = dict(poses)

    def add_view(self, stamp_ns: int, camera: int, image: np.ndarray) -> None:
        """Record camera ``camera``'s rgb image of ``stamp_ns`` (for the pictures)."""
        with self.lock:
            keep_recent(self.views)
            self.views.setdefault(stamp_ns, {})[camera] = image

    def add_labels(self, stamp_ns: int, camera: int, labels: np.ndarray) -> None:
        """Record camera ``camera``'s instance label image of ``stamp_ns`` (for the pictures)."""
        with self.lock:
            keep_recent(self.labels)
            self.labels.setdefault(stamp_ns, {})[camera] = labels

    def add_found(self, stamp_ns: int, found: Sequence[PlacedGrid], latency_s: float) -> None:
        """Record the objects the node published for the view set of ``stamp_ns``."""
        with self.lock:
            self.found.append((stamp_ns, list(found), latency_s))
            self.latencies.append(latency_s)

    def _truth(self, stamp: int) -> Optional[list[PlacedGrid]]:
        """Return the table's true objects at ``stamp`` once all is known, else None."""
        names = self.names.get(stamp)
        grids = self.truths.get(stamp)
        poses = self.true_poses.get(stamp, {})
        if names is None or grids is None or len(grids) != len(names) or \
                any(k not in poses for k in range(len(names))):
            return None
        return [PlacedGrid(name, grid, poses[k])
                for k, (name, grid) in enumerate(zip(names, grids))]

    def score(self) -> list[TableScore]:
        """Score the first object set of each table whose truth is known; all so far, in order.

        Sets of tables already scored, or older than every kept truth, are forgotten.
        """
        with self.lock:
            waiting = []
            for stamp, found, latency in self.found:
                names = self.names.get(stamp)
                if names in self.scored:
                    continue
                truths = self._truth(stamp)
                if truths is None:
                    if not self.truths or stamp >= min(self.truths):
                        waiting.append((stamp, found, latency))  # its truth may come
                    else:
                        self.forgotten += 1
                    continue
                table = score_table(found, truths, name=' '.join(names), stamp_ns=stamp,
                                    latency_s=latency, tolerance=self.tolerance)
                views, labels = self.views.get(stamp, {}), self.labels.get(stamp, {})
                table.views = [views[i] for i in sorted(views)]
                table.labels = [labels[i] for i in sorted(labels)]
                self.scored[names] = table
            self.found = waiting
            return sorted(self.scored.values(), key=lambda s: s.stamp_ns)

    def missed_tables(self) -> list[tuple[str, ...]]:
        """Tables shown before the last scored one that got no object set, in order."""
        with self.lock:
            return unscored_before(self.names, self.scored)


def _mean(values: Sequence[float]) -> Optional[float]:
    return statistics.fmean(values) if values else None


def tables_summary(tables: Sequence[TableScore],
                   unscored: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """Totals over the scored tables: objects found, missed and invented, and the scores.

    :param unscored: tables shown that got no object set at all (their objects count as
        missed: the node found none of them).
    :returns: ``tables``, ``objects`` (true objects shown), ``found`` (paired), ``missed``,
        ``invented``, ``found_share`` (found / objects), ``mean_iou`` and ``mean_world_iou``
        (over the paired objects), ``tables_without_output`` and ``world``
        (:func:`.metrics.placement_summary` of the paired objects).
    """
    paired = [o for table in tables for o in table.objects]
    shown = sum(table.total for table in tables) + sum(len(names) for names in unscored)
    return {
        'tables': len(tables), 'objects': shown, 'found': len(paired),
        'missed': shown - len(paired),
        'invented': sum(len(table.invented) for table in tables),
        'found_share': len(paired) / shown if shown else None,
        'mean_iou': _mean([o.iou for o in paired]),
        'mean_world_iou': _mean([o.placement.world_iou for o in paired]),
        'tables_without_output': len(unscored),
        'world': placement_summary([o.placement for o in paired]),
    }
