"""Calibrated views for placement: each frame's intrinsics, its camera pose, the placing step.

The node and ``pix2voxpp-bag`` share this (``placement: calibrated``):

* :class:`Intrinsics` checks what a ``sensor_msgs/CameraInfo`` says (``K``, image size) and
  :class:`CameraInfos` keeps the latest per camera, so a frame gets its ``K`` when it arrives or
  is dropped as ``no_camera_info`` / ``bad_camera_info``;
* a :class:`PoseSource` gives a frame's camera pose in the fixed frame at its stamp: TF in the
  node (``ros/tf_poses.py``), the recorded ``/tf`` in the bag tool, fixed ``camera_poses``
  (:class:`FixedPoses`) where there is no TF; a frame without a pose is ``no_transform``;
* :func:`place_view_set` places one reconstruction (:mod:`.placement`), carves it if asked and
  refuses a fit below ``min_placement_iou`` (``placement_failed``).

Pure numpy: no ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Protocol, Sequence

import numpy as np

from .drops import DropReason, FrameDrop
from .errors import Pix2VoxError
from .geometry import PoseError, poses_from_numbers
from .placement import CalibratedView, ObjectPose, PlacementError, carve, place_object
from .views import Frame, ViewSet

PLACEMENT_MODES = ('canonical', 'calibrated')
#: Bytes of one recorded sensor_msgs/CameraInfo (``pix2voxpp-bag``): a real one is about 350
#: (5 to 14 distortion coefficients); a longer one is taken as a bad calibration.
MAX_CAMERA_INFO_BYTES = 1 << 16


class CalibrationError(Pix2VoxError, ValueError):
    """A camera's calibration is unusable (zero or non-finite K, a size unlike the image's)."""


class PoseUnavailableError(Pix2VoxError, LookupError):
    """No pose of a camera in the fixed frame at that time (yet, or at all)."""


@dataclass(frozen=True)
class Intrinsics:
    """A camera's pinhole model as ``CameraInfo`` gives it.

    :ivar matrix: ``(3, 3)`` K (``CameraInfo.k``), OpenCV pixel convention.
    :ivar width: the image width the calibration is for.
    :ivar height: the image height.
    """

    matrix: np.ndarray
    width: int
    height: int

    @classmethod
    def from_camera_info(cls, k: Sequence[float], width: int, height: int) -> Intrinsics:
        """Check and build from ``CameraInfo``'s ``k`` (9 numbers), ``width`` and ``height``.

        :raises CalibrationError: not 9 finite numbers, zero or negative focal lengths, a
            last row other than ``0 0 1``, or no image size.
        """
        values = np.asarray(list(k), dtype=np.float64)
        if values.shape != (9,) or not np.isfinite(values).all():
            raise CalibrationError(f'K must be 9 finite numbers, got {len(values)} '
                                   f'({"non-finite" if values.size == 9 else "wrong count"})')
        matrix = values.reshape(3, 3)
        if not (matrix[0, 0] > 0 and matrix[1, 1] > 0):
            raise CalibrationError(f'K has focal lengths fx {matrix[0, 0]:g}, fy '
                                   f'{matrix[1, 1]:g}: the camera is not calibrated')
        if not np.allclose(matrix[2], (0.0, 0.0, 1.0)) or matrix[1, 0] != 0:
            raise CalibrationError(f'K is no pinhole matrix (rows 2-3: {matrix[1:].tolist()})')
        if int(width) < 1 or int(height) < 1:
            raise CalibrationError(f'camera_info gives no image size ({width}x{height})')
        matrix.flags.writeable = False
        return cls(matrix, int(width), int(height))

    def check_image(self, width: int, height: int) -> None:
        """Check that an image has the size the calibration is for.

        :raises CalibrationError: it has another size.
        """
        if (width, height) != (self.width, self.height):
            raise CalibrationError(f'camera_info is for {self.width}x{self.height} images, the '
                                   f'image is {width}x{height}')


class CameraInfos:
    """The latest calibration of each camera, and the check each frame passes.

    :param num_cameras: cameras in the configured order.
    """

    def __init__(self, num_cameras: int) -> None:
        self._latest: list[Optional[Intrinsics | CalibrationError]] = [None] * num_cameras

    def update(self, camera: int, k: Sequence[float], width: int, height: int) -> None:
        """Store a camera's calibration message (a bad one is kept as its error)."""
        try:
            self._latest[camera] = Intrinsics.from_camera_info(k, width, height)
        except CalibrationError as exc:
            self._latest[camera] = exc

    def calibrate(self, frame: Frame) -> Frame | FrameDrop:
        """Return the frame with its intrinsics, or the drop that says why it has none."""
        latest = self._latest[frame.camera] if 0 <= frame.camera < len(self._latest) else None
        if latest is None:
            return FrameDrop(frame.camera, DropReason.NO_CAMERA_INFO,
                             'no camera_info received for this camera yet', frame=frame)
        try:
            if isinstance(latest, CalibrationError):
                raise latest
            latest.check_image(frame.image.shape[1], frame.image.shape[0])
        except CalibrationError as exc:
            return FrameDrop(frame.camera, DropReason.BAD_CAMERA_INFO, str(exc), frame=frame,
                             key=(type(exc).__name__,))
        return replace(frame, intrinsics=latest.matrix)


class PoseSource(Protocol):
    """Where camera poses in the fixed frame come from."""

    def frame_pose(self, frame: Frame, *, timeout_s: float) -> np.ndarray:
        """``(4, 4)`` pose of the frame's optical frame in the fixed frame at its stamp.

        :raises PoseUnavailableError: none within ``timeout_s``.
        """


class FixedPoses:
    """``camera_poses``: one fixed pose per camera (``x y z qx qy qz qw`` each), no TF.

    :raises PoseError: the wrong count of numbers, or a pose that is not rigid.
    """

    def __init__(self, values: Sequence[float], num_cameras: int) -> None:
        self._poses = poses_from_numbers(list(values), num_cameras)

    def frame_pose(self, frame: Frame, *, timeout_s: float = 0.0) -> np.ndarray:
        """Return the camera's configured pose, whatever the time."""
        return self._poses[frame.camera]


@dataclass(frozen=True)
class PlacementSettings:
    """The placement parameters of the node and the bag tool.

    :ivar min_placement_iou: fits whose mean silhouette IoU is lower are refused.
    :ivar carve: empty the voxels a view sees outside its mask.
    :ivar tf_timeout_s: how long to wait for a camera's pose at a frame's stamp.
    """

    min_placement_iou: float = 0.5
    carve: bool = False
    tf_timeout_s: float = 0.1


@dataclass
class PlacedGrid:
    """One placed reconstruction.

    :ivar grid: ``(D, D, D)`` probabilities, ShapeNet axes (carved: emptied voxels are 0).
    :ivar pose: the grid's pose and metric size in the fixed frame.
    :ivar silhouette_iou: the fit's quality.
    :ivar drops: frames of the set left out for want of a pose (``no_transform``).
    """

    grid: np.ndarray
    pose: ObjectPose
    silhouette_iou: float
    drops: list[FrameDrop] = field(default_factory=list)


class PlacementFailedError(Pix2VoxError, RuntimeError):
    """A view set's reconstruction could not be placed; the set is dropped (``placement_failed``).

    :ivar drops: frames left out for want of a pose, counted as ``no_transform`` as well.
    """

    def __init__(self, message: str, drops: Sequence[FrameDrop] = ()) -> None:
        super().__init__(message)
        self.drops = list(drops)


def posed_frames(view_set: ViewSet, *, poses: PoseSource, settings: PlacementSettings
                 ) -> tuple[list[tuple[Frame, np.ndarray]], list[FrameDrop]]:
    """Look up each frame's camera pose at its stamp; frames without one are left out.

    :returns: ``(frame, (4, 4) camera pose in the fixed frame)`` of the frames with a pose, and
        the drops (``no_transform``) of the others.
    :raises PlacementFailedError: a frame without intrinsics or mask (with the drops so far).
    """
    posed, drops = [], []
    for frame in view_set.frames:
        try:
            pose = poses.frame_pose(frame, timeout_s=settings.tf_timeout_s)
        except (PoseUnavailableError, PoseError) as exc:
            drops.append(FrameDrop(frame.camera, DropReason.NO_TRANSFORM, str(exc), frame=frame))
            continue
        if frame.intrinsics is None or frame.mask is None:
            raise PlacementFailedError(f'camera {frame.camera}: a frame without intrinsics or '
                                       'mask cannot be placed', drops)
        posed.append((frame, pose))
    return posed, drops


def place_view_set(grid: np.ndarray, view_set: ViewSet, *, threshold: float,
                   poses: PoseSource, settings: PlacementSettings) -> PlacedGrid:
    """Place the reconstruction of a view set in the fixed frame.

    Every frame needs its intrinsics (:meth:`CameraInfos.calibrate`) and mask; its camera pose
    is looked up at its stamp. A frame without one is left out (``no_transform``).

    :param grid: ``(D, D, D)`` probabilities, ShapeNet axes.
    :raises PlacementFailedError: fewer than two views with a pose, a fit below
        ``min_placement_iou``, or a placement error.
    """
    posed, drops = posed_frames(view_set, poses=poses, settings=settings)
    views = [CalibratedView(frame.intrinsics, pose, frame.mask) for frame, pose in posed]
    occupied = np.asarray(grid) >= threshold
    try:
        placement = place_object(occupied, views)
    except PlacementError as exc:
        raise PlacementFailedError(str(exc), drops) from exc
    if not placement.silhouette_iou >= settings.min_placement_iou:
        raise PlacementFailedError(
            f'the placed silhouettes match the masks with IoU {placement.silhouette_iou:.2f}, '
            f'below min_placement_iou {settings.min_placement_iou:g}', drops)
    if not math.isfinite(placement.pose.size_m):
        raise PlacementFailedError('the placement gave no finite size', drops)
    placed = np.asarray(grid, dtype=np.float32)
    if settings.carve:
        removed = occupied & ~carve(occupied, placement.pose, views)
        placed = np.where(removed, np.float32(0.0), placed)
    return PlacedGrid(placed, placement.pose, placement.silhouette_iou, drops)
