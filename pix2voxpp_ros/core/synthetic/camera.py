"""The synthetic camera: R2N2 view parameters, intrinsics, pose, projection and view sampling.

Conventions (shared by the renderer, the dataset writer, the tests and the simulated camera rig)
-----------------------------------------------------------------------------------------------
* **Object frame**: ShapeNet's canonical frame, y up; one unit is the edge of the 32³ voxel grid,
  which is centred on the origin (see :mod:`pix2voxpp_ros.core.voxels`). Synthetic objects face +z.
* **Camera position** (how the R2N2 loaders of meshrcnn and PyTorch3D rebuild 3D-R2N2's Blender
  cameras, written in ShapeNet's y-up frame)::

      C = distance * (cos(el) cos(az), sin(el), cos(el) sin(az))

  The camera looks at the origin with the object's +y pointing up in the image; azimuth 0 looks
  from +x, azimuth 90 from +z (the front of synthetic objects).
* **In-plane rotation** rolls the camera about its optical axis; a positive angle turns the image
  content counter-clockwise.
* **Camera frame** is OpenCV's: x right, y down, z forward. Pixel coordinates ``(u, v)`` have the
  centre of the top-left pixel at ``(0, 0)``; the principal point is the image centre.
* **Field of view** ``fov_deg`` is horizontal (across the image width); pixels are square.
* **Distance**: ``distance = distance_ratio * max_distance`` in grid-edge units. Those loaders
  place R2N2's cameras at ``distance_ratio * 1.75`` ShapeNetCore units with a 35 mm lens on a
  32 mm sensor (about 49° field of view), although the metadata files record 25. Here the
  recorded 25° *is* the lens, and :data:`R2N2_MAX_DISTANCE` (5.5 grid edges) is chosen so that
  objects cover a similar part of the 137×137 image (about 45 % of its width at ratio 0.95, 70 %
  at 0.65) while the widest objects still fit at the nearest ratio, inside the 128×128 centre
  crop that preprocessing takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import Pix2VoxError

#: Distance in grid-edge units at ``distance_ratio == 1`` (see the module docstring).
R2N2_MAX_DISTANCE = 5.5
#: R2N2 view sampling: image size, azimuth, elevation and distance-ratio ranges, fixed values.
R2N2_IMAGE_SIZE = 137
R2N2_AZIMUTH_RANGE = (0.0, 360.0)
R2N2_ELEVATION_RANGE = (25.0, 30.0)
R2N2_DISTANCE_RATIO_RANGE = (0.65, 0.95)
R2N2_INPLANE_DEG = 0.0
R2N2_FOV_DEG = 25.0
#: The centre square of a rendering that preprocessing keeps (``preprocess.RENDERING_CROP_SIZE``;
#: not imported: that module needs torch, this package does not).
R2N2_CROP_SIZE = 128
#: Robot view sampling (:func:`sample_robot_cameras`): elevations from level to steeply down
#: (wrist and overhead cameras look down at 38-70 degrees), distances in grid edges from a wrist
#: camera's close-up (1.5: 30 cm from a 20 cm object) to an overhead camera's (6), and how much of
#: the crop the object's longer side fills, drawn around R2N2's (median 0.57, 10th-90th
#: percentile 0.47-0.72: ``benchmarks/measure_fill.py``).
ROBOT_ELEVATION_RANGE = (0.0, 75.0)
ROBOT_DISTANCE_RANGE = (1.5, 6.0)
ROBOT_FILL_RANGE = (0.45, 0.75)
#: Pixels kept free between a robot view's object and the edge of the centre crop.
_CROP_MARGIN_PX = 1.5


class CameraError(Pix2VoxError, ValueError):
    """A camera parameter or a metadata line is invalid."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera aimed at ``look_at`` (the origin by default), set by R2N2 view parameters.

    :ivar azimuth_deg: rotation of the camera about the object's y axis.
    :ivar elevation_deg: angle of the camera above the object's x-z plane, in ``(-90, 90)``.
    :ivar inplane_deg: roll about the optical axis (R2N2 always uses 0).
    :ivar distance_ratio: distance from the origin as a fraction of ``max_distance``.
    :ivar fov_deg: horizontal field of view, in ``(0, 180)``.
    :ivar width: image width in pixels.
    :ivar height: image height in pixels.
    :ivar max_distance: distance at ratio 1, in grid-edge units.
    :ivar look_at: the point the camera looks at and orbits (object frame); scenes aim past
        an object with it so that the object is not centred. R2N2 always uses the origin.
    :raises CameraError: a value is out of range.
    """

    azimuth_deg: float
    elevation_deg: float
    inplane_deg: float = R2N2_INPLANE_DEG
    distance_ratio: float = 0.8
    fov_deg: float = R2N2_FOV_DEG
    width: int = R2N2_IMAGE_SIZE
    height: int = R2N2_IMAGE_SIZE
    max_distance: float = R2N2_MAX_DISTANCE
    look_at: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        """Check the ranges; a camera inside the object or looking along y is refused."""
        if not -90.0 < self.elevation_deg < 90.0:
            raise CameraError(f'elevation_deg must be in (-90, 90), got {self.elevation_deg}')
        if not 0.0 < self.fov_deg < 180.0:
            raise CameraError(f'fov_deg must be in (0, 180), got {self.fov_deg}')
        if not (self.distance_ratio > 0.0 and self.max_distance > 0.0):
            raise CameraError(f'distance_ratio ({self.distance_ratio}) and max_distance '
                              f'({self.max_distance}) must be positive')
        if int(self.width) != self.width or int(self.height) != self.height \
                or self.width < 1 or self.height < 1:
            raise CameraError(f'image size must be positive integers, got '
                              f'{self.width}x{self.height}')
        if len(self.look_at) != 3 or not all(math.isfinite(v) for v in self.look_at):
            raise CameraError(f'look_at must be three finite numbers, got {self.look_at}')
        for name in ('azimuth_deg', 'inplane_deg'):
            if not math.isfinite(getattr(self, name)):
                raise CameraError(f'{name} must be finite, got {getattr(self, name)}')

    @classmethod
    def from_distance(cls, azimuth_deg: float, elevation_deg: float, distance: float, *,
                      inplane_deg: float = 0.0, fov_deg: float = R2N2_FOV_DEG,
                      width: int = R2N2_IMAGE_SIZE, height: int = R2N2_IMAGE_SIZE) -> Camera:
        """Build a camera at a distance given in grid-edge units (``max_distance`` = distance).

        :raises CameraError: a value is out of range.
        """
        return cls(azimuth_deg, elevation_deg, inplane_deg, 1.0, fov_deg, width, height,
                   max_distance=distance)

    @property
    def distance(self) -> float:
        """Distance from the camera centre to the origin, in grid-edge units."""
        return self.distance_ratio * self.max_distance

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (square pixels)."""
        return 0.5 * self.width / math.tan(math.radians(self.fov_deg) / 2.0)

    # The matrices below are cached (the camera is immutable) and returned read-only.

    @cached_property
    def intrinsics(self) -> np.ndarray:
        """The ``(3, 3)`` intrinsic matrix K (OpenCV pixel convention)."""
        f = self.focal_px
        return _frozen(np.array([[f, 0.0, (self.width - 1) / 2.0],
                                 [0.0, f, (self.height - 1) / 2.0],
                                 [0.0, 0.0, 1.0]]))

    @cached_property
    def centre(self) -> np.ndarray:
        """The camera centre ``(3,)`` in the object frame."""
        az, el = math.radians(self.azimuth_deg), math.radians(self.elevation_deg)
        return _frozen(np.asarray(self.look_at, dtype=np.float64) + self.distance * np.array(
            [math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)]))

    @cached_property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` R mapping object-frame directions to the camera frame (rows: its axes)."""
        forward = np.asarray(self.look_at, dtype=np.float64) - self.centre
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 1.0, 0.0))
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        base = np.stack([right, down, forward])
        # Rolling the camera by -angle turns the image content by +angle (counter-clockwise).
        a = math.radians(self.inplane_deg)
        roll = np.array([[math.cos(a), math.sin(a), 0.0],
                         [-math.sin(a), math.cos(a), 0.0],
                         [0.0, 0.0, 1.0]])
        return _frozen(roll @ base)

    @cached_property
    def world_to_camera(self) -> np.ndarray:
        """The ``(4, 4)`` pose mapping object-frame points to camera-frame points."""
        rot = self.rotation
        pose = np.eye(4)
        pose[:3, :3] = rot
        pose[:3, 3] = -rot @ self.centre
        return _frozen(pose)

    def to_camera(self, points_xyz: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` object-frame points to the camera frame."""
        points = np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3)
        return np.einsum('ij,kj->ik', points - self.centre, self.rotation)

    def project(self, points_xyz: np.ndarray) -> np.ndarray:
        """Project ``(N, 3)`` object-frame points to ``(N, 2)`` pixel coordinates ``(u, v)``.

        Points at or behind the camera plane give non-finite coordinates.
        """
        cam = self.to_camera(points_xyz)
        k = self.intrinsics
        with np.errstate(divide='ignore', invalid='ignore'):
            z = np.where(cam[:, 2] > 0.0, cam[:, 2], np.nan)
            u = k[0, 0] * cam[:, 0] / z + k[0, 2]
            v = k[1, 1] * cam[:, 1] / z + k[1, 2]
        return np.stack([u, v], axis=1)

    def ray_directions(self) -> np.ndarray:
        """Return ``(H, W, 3)`` unit directions of the rays through pixel centres, object frame."""
        v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        return self.pixel_rays(np.stack([u, v], axis=-1))

    def pixel_rays(self, uv: np.ndarray) -> np.ndarray:
        """Return unit ray directions (object frame) through pixel coordinates ``(..., 2)``."""
        uv = np.asarray(uv, dtype=np.float64)
        k = self.intrinsics
        dirs = np.empty(uv.shape[:-1] + (3,))
        dirs[..., 0] = (uv[..., 0] - k[0, 2]) / k[0, 0]
        dirs[..., 1] = (uv[..., 1] - k[1, 2]) / k[1, 1]
        dirs[..., 2] = 1.0
        dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
        # camera -> object frame: d_obj = R^T d_cam (einsum: no BLAS threads, see primitives)
        return np.einsum('...j,jk->...k', dirs, self.rotation)

    def metadata_line(self) -> str:
        """Return the R2N2 ``rendering_metadata.txt`` line: azimuth elevation inplane ratio fov."""
        return ' '.join(_format_number(v) for v in (
            self.azimuth_deg, self.elevation_deg, self.inplane_deg, self.distance_ratio,
            self.fov_deg))

    @classmethod
    def from_metadata_line(cls, line: str, *, width: int = R2N2_IMAGE_SIZE,
                           height: int = R2N2_IMAGE_SIZE,
                           max_distance: float = R2N2_MAX_DISTANCE) -> Camera:
        """Parse one ``rendering_metadata.txt`` line (five numbers separated by spaces).

        :raises CameraError: the line does not hold five numbers or a value is out of range.
        """
        fields = line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError as exc:
            raise CameraError(f'metadata line {line!r} holds a non-number') from exc
        if len(values) != 5:
            raise CameraError(f'metadata line {line!r} has {len(values)} values, expected 5')
        az, el, inplane, ratio, fov = values
        return cls(az, el, inplane, ratio, fov, width, height, max_distance=max_distance)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _format_number(value: float) -> str:
    # Six decimals (R2N2 writes similar) and no trailing zeros; integers stay integers ('25').
    text = f'{value:.6f}'.rstrip('0').rstrip('.')
    return '0' if text == '-0' else text


def sample_r2n2_cameras(rng: np.random.Generator, count: int = 24, *,
                        elevation_range: tuple[float, float] = R2N2_ELEVATION_RANGE
                        ) -> list[Camera]:
    """Draw ``count`` views as R2N2 did: azimuth U[0, 360), elevation U[25, 30), ratio U[.65, .95).

    Values are rounded to the precision of :meth:`Camera.metadata_line`, so the camera parsed
    back from the written metadata is exactly the one that rendered the image.

    :param elevation_range: another elevation range, the draws otherwise the same.
    :raises CameraError: an elevation range outside ``[0, 90)`` or reversed.
    """
    _check_elevation_range(elevation_range)
    cameras = []
    for _ in range(count):
        az = round(float(rng.uniform(*R2N2_AZIMUTH_RANGE)), 6) % 360.0
        el = round(float(rng.uniform(*elevation_range)), 6)
        ratio = round(float(rng.uniform(*R2N2_DISTANCE_RATIO_RANGE)), 6)
        cameras.append(Camera(az, el, R2N2_INPLANE_DEG, ratio, R2N2_FOV_DEG))
    return cameras


def _check_elevation_range(elevation_range: tuple[float, float]) -> None:
    low, high = (float(v) for v in elevation_range)
    if not 0.0 <= low <= high < 90.0:
        raise CameraError(f'elevation range must satisfy 0 <= low <= high < 90 degrees, got '
                          f'{low:g}..{high:g}')


def sample_robot_cameras(rng: np.random.Generator, points: np.ndarray, count: int = 24, *,
                         elevation_range: tuple[float, float] = ROBOT_ELEVATION_RANGE,
                         distance_range: tuple[float, float] = ROBOT_DISTANCE_RANGE,
                         fill_range: tuple[float, float] = ROBOT_FILL_RANGE) -> list[Camera]:
    """Draw ``count`` views as robot cameras see an object, framed as R2N2's renderings are.

    Azimuth U[0, 360), elevation, distance (grid edges) and fill uniform in their ranges. The
    field of view then follows from the object: the one that makes the longer side of the
    object's projected bounding box ``fill`` of the 128-pixel centre crop, narrowed further if
    the object would otherwise reach within 1.5 pixels of the crop's edge. A close camera thus
    has a wide field of view and a strong perspective, a far one a narrow view, and every
    rendering frames the object as the fixed centre crop and a mask crop expect. The camera
    looks at the origin with no roll, so its five numbers (:meth:`Camera.metadata_line`; the
    distance as a ratio of :data:`R2N2_MAX_DISTANCE`) describe it exactly.

    :param points: ``(N, 3)`` points of the object, object frame, whose projections bound its
        silhouette (its voxels' corners); the draws do not depend on them.
    :raises CameraError: a range is reversed or out of bounds, or ``points`` is empty.
    """
    _check_elevation_range(elevation_range)
    if not 0.0 < distance_range[0] <= distance_range[1]:
        raise CameraError(f'distance range must be positive and ordered, got {distance_range}')
    if not 0.0 < fill_range[0] <= fill_range[1] <= 1.0:
        raise CameraError(f'fill range must lie in (0, 1] and be ordered, got {fill_range}')
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        raise CameraError('no object points to frame')
    if distance_range[0] <= float(np.linalg.norm(points, axis=1).max()):
        raise CameraError(f'the nearest distance {distance_range[0]:g} does not clear the '
                          'object')
    half_crop = 0.5 * R2N2_CROP_SIZE - _CROP_MARGIN_PX
    cameras = []
    for _ in range(count):
        az = round(float(rng.uniform(*R2N2_AZIMUTH_RANGE)), 6) % 360.0
        el = round(float(rng.uniform(*elevation_range)), 6)
        ratio = round(float(rng.uniform(*distance_range)) / R2N2_MAX_DISTANCE, 6)
        fill = float(rng.uniform(*fill_range))
        # Image-plane coordinates at unit focal length; the focal length scales them.
        cam = Camera(az, el, R2N2_INPLANE_DEG, ratio).to_camera(points)
        plane = cam[:, :2] / cam[:, 2:3]
        extent = float((plane.max(axis=0) - plane.min(axis=0)).max())
        reach = float(np.abs(plane).max())
        focal = min(fill * R2N2_CROP_SIZE / extent, half_crop / reach)
        fov = round(math.degrees(2.0 * math.atan(0.5 * R2N2_IMAGE_SIZE / focal)), 6)
        cameras.append(Camera(az, el, R2N2_INPLANE_DEG, ratio, fov))
    return cameras
