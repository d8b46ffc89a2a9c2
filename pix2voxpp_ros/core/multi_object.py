"""Every object on the table: one view set's instance label images to placed reconstructions.

:func:`reconstruct_objects` takes one image and one instance label image per calibrated camera
and returns every object that enough cameras see, each reconstructed and placed:

1. **Match**: each label image is split into instance masks and the instances are matched
   across the cameras from the calibration alone (:func:`.instances.match_instances`): the
   ids of different cameras need not agree.
2. **Preprocess**: each object's views are cropped to its own mask and the rest of the image
   blanked (``roi_margin=-1``, the node's masked preprocessing), so that the network sees that
   object alone, whatever stands beside it.
3. **One forward per view count**: the network's views of one object are fused (Pix2Vox++'s
   context-aware merger, a softmax over the views), so all objects go through the network
   together, batched, but objects seen by ``V`` cameras and by ``V'`` cameras cannot share a
   ``(B, V, ...)`` batch. Padding the short ones by repeating a view would change the fusion
   weights and make an object's grid depend on the other objects in the view set, so the
   objects are grouped by view count instead: one call when every camera sees every object,
   at most ``cameras - min_views + 1`` calls in all.
4. **Place**: each grid is placed by :func:`.placement.place_object` with its masks. An object
   whose placement fails (an empty grid, degenerate views) is dropped with the reason.

The objects keep the matcher's order (by rough position: x, then y, then z), which does not
depend on the ids. :class:`ObjectTracker` gives the objects of successive view sets ids that
stay the same while an object stays put. Pure core: no ROS.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from .calibration import PlacementFailedError, PlacementSettings, PoseSource, posed_frames
from .drops import DropReason, FrameDrop
from .errors import Pix2VoxError
from .inference import Reconstructor
from .instances import (MAX_INSTANCES, MIN_PIXELS, CameraInstances, InstanceError,
                        MatchedObject, match_instances)
from .metrics import iou
from .objects import CollisionChanges, PlacedObject, collision_changes
from .placement import ObjectPose, Placement, PlacementError, carve, place_object
from .views import ViewSet


@dataclass(frozen=True)
class ReconstructedObject:
    """One object of a view set, reconstructed and placed.

    :ivar instance_ids: its instance id in each camera, in the cameras' order; None where the
        camera does not see it.
    :ivar probabilities: ``(32, 32, 32)`` float32 occupancy probabilities, ShapeNet axes.
    :ivar occupied: ``(32, 32, 32)`` bool, probabilities at or above the threshold.
    :ivar placement: the grid's pose and size in the fixed frame, and the fit's quality.
    :ivar matched: the matcher's object (its views and rough position).
    """

    instance_ids: tuple[Optional[int], ...]
    probabilities: np.ndarray
    occupied: np.ndarray
    placement: Placement
    matched: MatchedObject


@dataclass(frozen=True)
class DroppedObject:
    """An object that was matched but could not be placed, with the reason."""

    instance_ids: tuple[Optional[int], ...]
    reason: str


@dataclass(frozen=True)
class StageTimes:
    """Seconds spent in each stage of one :func:`reconstruct_objects` call."""

    matching_s: float
    preprocess_s: float
    network_s: float
    placement_s: float


@dataclass(frozen=True)
class MultiObjectResult:
    """The result of :func:`reconstruct_objects`.

    :ivar objects: the placed objects, in the matcher's order (by rough position).
    :ivar dropped: matched objects whose placement failed.
    :ivar unmatched: objects fewer than ``min_views`` cameras see, plus instances no other
        camera matched (see :class:`.instances.MatchResult`).
    :ivar unused: ``(camera, instance id)`` of every instance in no matched object.
    :ivar forward_passes: network calls made (one per distinct view count).
    :ivar times: where the time went.
    """

    objects: tuple[ReconstructedObject, ...]
    dropped: tuple[DroppedObject, ...]
    unmatched: int
    unused: tuple[tuple[int, int], ...]
    forward_passes: int
    times: StageTimes

    @property
    def placement_failures(self) -> int:
        """How many matched objects were dropped because their placement failed."""
        return len(self.dropped)


def _cameras(labels: Sequence[np.ndarray], images: Sequence[np.ndarray],
             intrinsics: Sequence[np.ndarray], camera_to_fixed: Sequence[np.ndarray],
             max_instances: int, min_pixels: int) -> list[CameraInstances]:
    counts = {len(images), len(labels), len(intrinsics), len(camera_to_fixed)}
    if len(counts) != 1:
        raise InstanceError(f'one image, label image, K and pose per camera, got '
                            f'{len(images)}, {len(labels)}, {len(intrinsics)} and '
                            f'{len(camera_to_fixed)}')
    cameras = []
    for index, (image, label, k, pose) in enumerate(zip(images, labels, intrinsics,
                                                        camera_to_fixed)):
        if np.shape(label) != np.shape(image)[:2]:
            raise InstanceError(f'camera {index}: label image {np.shape(label)} is not the '
                                f'size of its image {np.shape(image)[:2]}')
        cameras.append(CameraInstances.from_labels(k, pose, label, max_instances=max_instances,
                                                   min_pixels=min_pixels))
    return cameras


def reconstruct_objects(reconstructor: Reconstructor, images: Sequence[np.ndarray],
                        labels: Sequence[np.ndarray], intrinsics: Sequence[np.ndarray],
                        camera_to_fixed: Sequence[np.ndarray], *,
                        encoding: Union[str, Sequence[str]] = 'rgb8', min_views: int = 2,
                        threshold: Optional[float] = None, max_instances: int = MAX_INSTANCES,
                        min_pixels: int = MIN_PIXELS, roi_margin: float = -1.0,
                        min_silhouette_iou: float = 0.0, carve_views: bool = False
                        ) -> MultiObjectResult:
    """Reconstruct and place every object that ``min_views`` cameras or more see.

    The method is the module docstring's.

    :param images: per camera ``(H, W, 3)`` (or what ``encoding`` says) frame.
    :param labels: per camera ``(H, W)`` uint8 or uint16 instance labels, 0 background; each
        camera's ids are its own.
    :param intrinsics: per camera ``(3, 3)`` K.
    :param camera_to_fixed: per camera ``(4, 4)`` pose of its optical frame (x right, y down,
        z forward) in the fixed frame (z up).
    :param encoding: the frames' encoding (as :meth:`Reconstructor.preprocess`), one for all
        or one per camera.
    :param min_views: fewest cameras an object must be matched in (>= 2).
    :param threshold: occupancy threshold; None: the weights' own.
    :param max_instances: most instances a camera may hold; ``min_pixels``: smaller ones are
        specks and dropped (see :func:`.instances.split_instances`).
    :param roi_margin: the crop's margin around each instance (negative: the masks' default).
    :param min_silhouette_iou: placements whose silhouettes match the masks worse are dropped
        (``min_placement_iou``).
    :param carve_views: empty the voxels a view sees outside the object's mask
        (:func:`.placement.carve`; ``probabilities`` and ``occupied`` then agree with it).
    :raises InstanceError: inputs that do not pair up, bad label images or calibration.
    :raises PreprocessError: a frame that cannot be preprocessed.
    :raises InferenceError: the network fails.
    """
    start = time.perf_counter()
    cameras = _cameras(labels, images, intrinsics, camera_to_fixed, max_instances, min_pixels)
    matched = match_instances(cameras, min_views=min_views, max_instances=max_instances)
    matching_s = time.perf_counter() - start

    start = time.perf_counter()
    encodings = [encoding] * len(images) if isinstance(encoding, str) else list(encoding)
    inputs = []  # per object (V, 3, 224, 224): its views, each masked to its own instance
    for obj in matched.objects:
        inputs.append(np.stack([
            reconstructor.preprocess(images[c], encoding=encodings[c], roi_margin=roi_margin,
                                     mask=view.mask.astype(np.uint8) * 255)
            for c, view in zip(obj.cameras, obj.views)]))
    preprocess_s = time.perf_counter() - start

    start = time.perf_counter()
    probabilities: list[Optional[np.ndarray]] = [None] * len(inputs)
    groups: dict[int, list[int]] = {}  # view count -> object indices
    for index, views in enumerate(inputs):
        groups.setdefault(len(views), []).append(index)
    for members in groups.values():
        batch = np.stack([inputs[i] for i in members])  # (B, V, 3, 224, 224)
        for i, grid in zip(members, reconstructor.infer(batch)):  # (B, 32, 32, 32)
            probabilities[i] = grid
    network_s = time.perf_counter() - start

    start = time.perf_counter()
    cutoff = reconstructor.threshold if threshold is None else threshold
    placed, dropped = [], []
    for obj, grid in zip(matched.objects, probabilities):
        occupied = grid >= cutoff  # (32, 32, 32) bool
        try:
            placement = place_object(occupied, obj.views)
        except PlacementError as exc:
            dropped.append(DroppedObject(obj.instance_ids, f'placement failed: {exc}'))
            continue
        if not (placement.silhouette_iou >= min_silhouette_iou
                and math.isfinite(placement.pose.size_m)):
            dropped.append(DroppedObject(
                obj.instance_ids, f'the placed silhouettes match the masks with IoU '
                f'{placement.silhouette_iou:.2f}, below min_placement_iou '
                f'{min_silhouette_iou:g}'))
            continue
        if carve_views:
            kept = carve(occupied, placement.pose, obj.views)
            grid = np.where(occupied & ~kept, np.float32(0.0), grid)
            occupied = occupied & kept
        placed.append(ReconstructedObject(obj.instance_ids, grid, occupied, placement, obj))
    placement_s = time.perf_counter() - start
    return MultiObjectResult(tuple(placed), tuple(dropped), matched.unmatched, matched.unused,
                             len(groups), StageTimes(matching_s, preprocess_s, network_s,
                                                     placement_s))


class TrackerError(Pix2VoxError, ValueError):
    """Tracker options or an update that cannot be used."""


@dataclass(frozen=True)
class TrackUpdate:
    """What one :meth:`ObjectTracker.update` found.

    :ivar ids: the track id of each object given, in the order given.
    :ivar added: ids new in this update (objects not seen before), increasing.
    :ivar removed: ids of tracks dropped in this update (their objects left), increasing.
    """

    ids: tuple[int, ...]
    added: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass
class _Track:
    position: np.ndarray  # (3,) fixed frame
    size_m: float
    missed: int = 0


class ObjectTracker:
    """Keeps an id per object across successive view sets (MoveIt collision objects need them).

    An object is the same as a track when its placed position lies within ``tolerance`` times
    the larger of the two sizes of the track's last position; pairs are taken nearest first
    (relative distance), so each track and each object is paired once. An unpaired object
    starts a new track (ids count up from 1 and are never reused); a track unpaired for more
    than ``max_missed`` updates in a row is removed.

    :param tolerance: largest distance, as a fraction of the object's size, to stay the same.
    :param max_missed: updates a track may miss before it is removed (0: at once).
    :raises TrackerError: a tolerance that is not positive, or a negative ``max_missed``.
    """

    def __init__(self, *, tolerance: float = 0.5, max_missed: int = 0) -> None:
        if not (tolerance > 0 and math.isfinite(tolerance)) or max_missed < 0:
            raise TrackerError(f'tolerance must be positive and max_missed >= 0, got '
                               f'{tolerance} and {max_missed}')
        self.tolerance = tolerance
        self.max_missed = max_missed
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    @property
    def ids(self) -> tuple[int, ...]:
        """The ids of the tracks alive now, increasing."""
        return tuple(sorted(self._tracks))

    def update(self, positions: Sequence[Sequence[float]], sizes_m: Sequence[float]
               ) -> TrackUpdate:
        """Pair one view set's objects with the tracks; start and remove tracks.

        :param positions: ``(N, 3)`` the objects' placed positions, fixed frame.
        :param sizes_m: ``(N,)`` their sizes (the grid edge), metres.
        :raises TrackerError: lengths that differ, non-finite values or sizes not positive.
        """
        points = np.asarray(positions, dtype=np.float64).reshape(-1, 3)  # (N, 3)
        sizes = np.asarray(sizes_m, dtype=np.float64).reshape(-1)  # (N,)
        if len(points) != len(sizes) or not np.isfinite(points).all() \
                or not (np.isfinite(sizes).all() and (sizes > 0).all()):
            raise TrackerError(f'need one finite position and one positive size per object, '
                               f'got {np.shape(positions)} and {np.shape(sizes_m)}')
        track_ids = list(self._tracks)
        ids: list[Optional[int]] = [None] * len(points)
        if track_ids and len(points):
            known = np.stack([self._tracks[t].position for t in track_ids])  # (T, 3)
            known_sizes = np.array([self._tracks[t].size_m for t in track_ids])  # (T,)
            distance = np.linalg.norm(points[:, None] - known[None], axis=2)  # (N, T)
            relative = distance / np.maximum(sizes[:, None], known_sizes[None])
            taken = set()
            for flat in np.argsort(relative, axis=None, kind='stable'):
                n, t = divmod(int(flat), len(track_ids))
                if relative[n, t] > self.tolerance:
                    break
                if ids[n] is None and t not in taken:
                    ids[n] = track_ids[t]
                    taken.add(t)
        added = []
        for n, track_id in enumerate(ids):
            if track_id is None:
                track_id = ids[n] = self._next_id
                self._next_id += 1
                added.append(track_id)
            self._tracks[track_id] = _Track(points[n].copy(), float(sizes[n]))
        removed = []
        seen = set(ids)
        for track_id in track_ids:
            if track_id in seen:
                continue
            track = self._tracks[track_id]
            track.missed += 1
            if track.missed > self.max_missed:
                del self._tracks[track_id]
                removed.append(track_id)
        return TrackUpdate(tuple(int(i) for i in ids), tuple(added), tuple(sorted(removed)))

    def update_result(self, result: MultiObjectResult) -> TrackUpdate:
        """Update with the placed objects of a :func:`reconstruct_objects` result."""
        poses = [obj.placement.pose for obj in result.objects]
        return self.update([p.position for p in poses], [p.size_m for p in poses])


@dataclass(frozen=True)
class ViewSetObjects:
    """What :func:`reconstruct_view_set` made of one view set.

    :ivar result: the objects found, reconstructed and placed, and those left out.
    :ivar drops: frames left out for want of a camera pose (``no_transform``).
    """

    result: MultiObjectResult
    drops: tuple[FrameDrop, ...]

    @property
    def left_out(self) -> dict[DropReason, int]:
        """How many objects were left out, by reason (``unmatched``, ``placement_failed``)."""
        return {DropReason.UNMATCHED: self.result.unmatched,
                DropReason.PLACEMENT_FAILED: self.result.placement_failures}


def reconstruct_view_set(reconstructor: Reconstructor, view_set: ViewSet, *, poses: PoseSource,
                         settings: PlacementSettings, min_views: int, threshold: float,
                         roi_margin: float = -1.0, max_instances: int = MAX_INSTANCES
                         ) -> ViewSetObjects:
    """Every object of a buffered view set whose masks are label images (``mask_mode: instances``).

    What the node's worker and ``pix2voxpp-bag`` run: each frame's camera pose is looked up at
    its stamp (a frame without one is left out, ``no_transform``), then
    :func:`reconstruct_objects` on the rest with the placement settings.

    :param view_set: frames with their intrinsics and label images (``Frame.mask``).
    :raises PlacementFailedError: fewer than ``min_views`` frames with a camera pose.
    :raises InstanceError, PreprocessError, InferenceError: as :func:`reconstruct_objects`.
    """
    frames, drops = posed_frames(view_set, poses=poses, settings=settings)
    if len(frames) < max(2, min_views):
        raise PlacementFailedError(f'{len(frames)} view(s) with a camera pose, fewer than the '
                                   f'{max(2, min_views)} that matching objects needs', drops)
    result = reconstruct_objects(
        reconstructor, [f.image for f, _ in frames], [f.mask for f, _ in frames],
        [f.intrinsics for f, _ in frames], [p for _, p in frames],
        encoding=[f.encoding for f, _ in frames], min_views=min_views, threshold=threshold,
        max_instances=max_instances, roi_margin=roi_margin,
        min_silhouette_iou=settings.min_placement_iou, carve_views=settings.carve)
    return ViewSetObjects(result, tuple(drops))


@dataclass(frozen=True)
class SceneUpdate:
    """The objects of one view set with their track ids, and what a planning scene must change.

    :ivar objects: the placed objects, in increasing id order.
    :ivar changes: MoveIt collision object changes (ADD / MOVE / REMOVE) against the last update.
    :ivar track: the tracker's pairing (ids added and removed).
    """

    objects: tuple[PlacedObject, ...]
    changes: CollisionChanges
    track: TrackUpdate


class ObjectScene:
    """The objects seen so far: stable ids (:class:`ObjectTracker`) and the collision scene.

    One per node activation (and per ``pix2voxpp-bag`` run): each view set's result becomes
    :class:`~.objects.PlacedObject` records with their track ids, and the changes a MoveIt
    planning scene needs. An object is sent again whole (ADD) when its shape changed: the
    occupied grid's IoU with the one last sent is below ``reshape_iou``.

    :param tolerance: as :class:`ObjectTracker` (fraction of the object's size).
    :param reshape_iou: below this IoU with the last sent grid an object counts as reshaped.
    """

    def __init__(self, *, tolerance: float = 0.5, reshape_iou: float = 0.7) -> None:
        self.tracker = ObjectTracker(tolerance=tolerance)
        self.reshape_iou = reshape_iou
        self._scene: dict[int, ObjectPose] = {}
        self._sent: dict[int, np.ndarray] = {}  # id -> occupied grid as last sent whole

    def update(self, result: MultiObjectResult) -> SceneUpdate:
        """Give the result's objects their ids and compare them with the scene."""
        track = self.tracker.update_result(result)
        records = sorted((PlacedObject(object_id, obj.occupied, obj.placement.pose,
                                       probabilities=obj.probabilities)
                          for object_id, obj in zip(track.ids, result.objects)),
                         key=lambda record: record.object_id)
        reshaped = [r.object_id for r in records if r.object_id in self._sent
                    and iou(r.occupied, self._sent[r.object_id]) < self.reshape_iou]
        changes = collision_changes(self._scene, {r.object_id: r.pose for r in records},
                                    reshaped=reshaped)
        self._scene = changes.scene
        for record in records:
            if record.object_id in changes.add:
                self._sent[record.object_id] = record.occupied
        for object_id in changes.remove:
            self._sent.pop(object_id, None)
        return SceneUpdate(tuple(records), changes, track)

    def clear(self) -> SceneUpdate:
        """Forget every object; the update removes whatever the scene held."""
        changes = collision_changes(self._scene, {})
        self.tracker = ObjectTracker(tolerance=self.tracker.tolerance)
        self._scene, self._sent = {}, {}
        return SceneUpdate((), changes, TrackUpdate((), (), changes.remove))
