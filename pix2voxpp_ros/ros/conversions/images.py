"""Message conversions: sensor_msgs/Image -> numpy, occupancy grid -> PointCloud2 and markers.

Small free functions, numpy in and message out, no node state. Where the robot has ``cv_bridge``
(images) or ``sensor_msgs_py`` (clouds) they are used; elsewhere the module's own few lines do the
same with identical results (the tests compare both paths wherever both exist). Every image is
validated first (encoding, size, step, data length), so a malformed message raises
:class:`ImageConversionError` with a clear reason instead of an obscure numpy error.

Geometry follows :mod:`pix2voxpp_ros.core.voxels`: voxel centres in metres, the grid of edge
``object_size_m`` centred on the origin of ``frame_id``, ROS axes (x forward, y left, z up).
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
import cv2
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..core.errors import Pix2VoxError
from ..core.preprocess import ENCODINGS, ImageDecodeError, MaskError, decode_image
from ..core.voxels import grid_to_points, grid_to_ros_axes, voxel_centres

BACKENDS = ('auto', 'own', 'library')
CLOUD_FIELD_NAMES = ('x', 'y', 'z', 'occupancy')
MARKER_NAMESPACE = 'occupancy'

_cv_bridge: Any = None  # CvBridge instance, False once its import failed
_point_cloud2: Any = None  # sensor_msgs_py.point_cloud2 module, False once its import failed


COMPRESSED_FORMATS = ('jpeg', 'png')


class ImageConversionError(Pix2VoxError, ValueError):
    """An Image message is malformed: size, step or data length do not fit its encoding."""


class UnsupportedEncodingError(ImageConversionError):
    """An Image message uses an encoding the network cannot take."""


def _bridge() -> Any:
    global _cv_bridge
    if _cv_bridge is None:
        try:
            from cv_bridge import CvBridge
            _cv_bridge = CvBridge()
        except ImportError:
            _cv_bridge = False
    return _cv_bridge


def _pc2() -> Any:
    global _point_cloud2
    if _point_cloud2 is None:
        try:
            from sensor_msgs_py import point_cloud2
            _point_cloud2 = point_cloud2
        except ImportError:
            _point_cloud2 = False
    return _point_cloud2


def library_available(kind: str) -> bool:
    """Whether ``'cv_bridge'`` or ``'sensor_msgs_py'`` can be imported here."""
    if kind == 'cv_bridge':
        return bool(_bridge())
    if kind == 'sensor_msgs_py':
        return bool(_pc2())
    raise ValueError(f"kind must be 'cv_bridge' or 'sensor_msgs_py', got {kind!r}")


def _use_library(backend: str, kind: str) -> bool:
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'own':
        return False
    available = library_available(kind)
    if backend == 'library' and not available:
        raise ImportError(f'{kind} is not importable here')
    return available


def stamp_to_ns(stamp: Time) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Return integer nanoseconds as a ``builtin_interfaces/Time``."""
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def check_image(msg: Image) -> tuple[int, int, int, int]:
    """Validate an Image message against its encoding.

    :returns: ``(height, width, channels, step)``.
    :raises UnsupportedEncodingError: the encoding is not one of :data:`ENCODINGS`.
    :raises ImageConversionError: zero size, a step shorter than a row, or a data length other
        than ``step * height``.
    """
    if msg.encoding not in ENCODINGS:
        raise UnsupportedEncodingError(f'unsupported encoding {msg.encoding!r} (supported: '
                                       f'{", ".join(ENCODINGS)})')
    channels = ENCODINGS[msg.encoding][0]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f'zero-size {width}x{height} image')
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(f'step {step} is shorter than a row of {width} {msg.encoding} '
                                   f'pixels ({row_bytes} bytes)')
    size = len(msg.data)
    if size != step * height:
        raise ImageConversionError(f'data holds {size} bytes, expected step x height = '
                                   f'{step} x {height} = {step * height}')
    return height, width, channels, step


def image_to_array(msg: Image, *, backend: str = 'auto') -> np.ndarray:
    """Convert an Image message to a uint8 array without copying when rows are unpadded.

    :param msg: an image in one of :data:`ENCODINGS` (8 bits per channel).
    :param backend: ``auto`` (cv_bridge when importable), ``own`` or ``library`` (cv_bridge).
    :returns: ``(H, W)`` for ``mono8``, else ``(H, W, C)`` uint8, C-contiguous, channels as
        stored (no colour conversion; the preprocessing reorders them).
    :raises UnsupportedEncodingError: see :func:`check_image`.
    :raises ImageConversionError: see :func:`check_image`.
    """
    height, width, channels, step = check_image(msg)
    # Padded rows always take the own path: some cv_bridge releases ignore ``step``.
    if step == width * channels and _use_library(backend, 'cv_bridge'):
        image = _bridge().imgmsg_to_cv2(msg, desired_encoding='passthrough')
    else:
        rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)
        image = rows[:, :width * channels].reshape(height, width, channels)
        if channels == 1:
            image = image[:, :, 0]
    return np.ascontiguousarray(image)


def array_to_image(
    image: np.ndarray,
    *,
    encoding: str,
    stamp: Optional[Time] = None,
    frame_id: str = '',
) -> Image:
    """Build an unpadded Image message from a uint8 array (for cameras, tests and benchmarks).

    :param image: ``(H, W)`` or ``(H, W, C)`` uint8 with C as ``encoding`` requires.
    :raises UnsupportedEncodingError: the encoding is not one of :data:`ENCODINGS`.
    :raises ImageConversionError: the array does not fit the encoding.
    """
    if encoding not in ENCODINGS:
        raise UnsupportedEncodingError(f'unsupported encoding {encoding!r}')
    channels = ENCODINGS[encoding][0]
    image = np.asarray(image)
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != channels:
        raise ImageConversionError(f'{encoding} needs a uint8 (H, W, {channels}) array, got '
                                   f'{image.dtype} {image.shape}')
    height, width = image.shape[:2]
    msg = Image(header=Header(stamp=stamp or Time(), frame_id=frame_id), height=height,
                width=width, encoding=encoding, is_bigendian=0, step=width * channels)
    msg.data = array.array('B', np.ascontiguousarray(image).tobytes())
    return msg


def compressed_to_array(msg: CompressedImage) -> tuple[np.ndarray, str]:
    """Decode a CompressedImage (JPEG or PNG, whatever its ``format`` string says).

    :returns: the image and its encoding (``bgr8``, ``bgra8`` or ``mono8``), as
        :func:`pix2voxpp_ros.core.preprocess.decode_image` returns them.
    :raises ImageConversionError: corrupt, truncated or unsupported data.
    """
    try:
        return decode_image(memoryview(msg.data))
    except ImageDecodeError as exc:
        raise ImageConversionError(f'format {msg.format!r}: {exc}') from exc


def frame_to_array(msg: Image | CompressedImage, *, compressed: bool,
                   backend: str = 'auto') -> tuple[np.ndarray, str]:
    """Convert a camera frame, raw or compressed, to its pixels and their encoding.

    :param compressed: ``msg`` is a CompressedImage (decoded by :func:`compressed_to_array`),
        else an Image (:func:`image_to_array`, with ``backend``).
    :raises UnsupportedEncodingError: an Image of an encoding the network cannot take.
    :raises ImageConversionError: a malformed Image, or corrupt compressed data.
    """
    if compressed:
        return compressed_to_array(msg)
    return image_to_array(msg, backend=backend), msg.encoding


def mask_to_array(msg: Image, *, backend: str = 'auto') -> np.ndarray:
    """Convert a segmenter's mask message (mono8, nonzero on the object) to ``(H, W)`` uint8.

    :raises MaskError: another encoding than mono8, or a malformed message.
    """
    if msg.encoding != 'mono8':
        raise MaskError(f"mask encoding is '{msg.encoding}', not mono8")
    try:
        return image_to_array(msg, backend=backend)
    except ImageConversionError as exc:
        raise MaskError(f'malformed mask: {exc}') from exc


def array_to_compressed(
    image: np.ndarray,
    *,
    encoding: str,
    image_format: str = 'jpeg',
    quality: int = 90,
    stamp: Optional[Time] = None,
    frame_id: str = '',
) -> CompressedImage:
    """Compress a uint8 image into a CompressedImage, as a camera's compressed transport does.

    The ``format`` field reads ``'<encoding>; jpeg compressed bgr8'`` (or ``png``): colour
    images are stored in OpenCV's BGR order, so any decoder gets the colours right.

    :param image_format: ``jpeg`` or ``png``.
    :param quality: JPEG quality, 1 .. 100.
    :raises ImageConversionError: the array does not fit the encoding, or the format is unknown.
    """
    if image_format not in COMPRESSED_FORMATS:
        raise ImageConversionError(f'format must be one of {", ".join(COMPRESSED_FORMATS)}, '
                                   f'got {image_format!r}')
    raw = array_to_image(image, encoding=encoding)  # validates shape and encoding
    channels, stored_bgr = ENCODINGS[encoding]
    pixels = np.asarray(image).reshape(raw.height, raw.width, channels)
    if channels == 1:
        target, pixels = 'mono8', pixels[:, :, 0]
    elif channels == 3:
        target, pixels = 'bgr8', pixels if stored_bgr else pixels[:, :, ::-1]
    else:
        target, pixels = 'bgra8', pixels if stored_bgr else pixels[:, :, [2, 1, 0, 3]]
    if image_format == 'jpeg' and channels == 4:
        target, pixels = 'bgr8', pixels[:, :, :3]  # JPEG has no alpha
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if image_format == 'jpeg' else []
    ok, data = cv2.imencode('.jpg' if image_format == 'jpeg' else '.png',
                            np.ascontiguousarray(pixels), params)
    if not ok:
        raise ImageConversionError(f'OpenCV could not encode a {encoding} image as {image_format}')
    msg = CompressedImage(header=Header(stamp=stamp or Time(), frame_id=frame_id),
                          format=f'{encoding}; {image_format} compressed {target}')
    msg.data = array.array('B', data.tobytes())
    return msg


def compressed_topic(topic: str) -> str:
    """Return the topic image_transport's ``compressed`` plugin uses for ``topic``'s images."""
    return topic.rstrip('/') + '/compressed'


def occupancy_fields() -> list[PointField]:
    """Return the cloud's fields: float32 ``x, y, z, occupancy`` at offsets 0, 4, 8, 12."""
    return [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
            for i, name in enumerate(CLOUD_FIELD_NAMES)]


def points_to_cloud(
    points: np.ndarray,
    values: np.ndarray,
    *,
    header: Header,
    backend: str = 'auto',
) -> PointCloud2:
    """Build an unorganized PointCloud2 with float32 fields ``x, y, z, occupancy``.

    :param points: ``(N, 3)`` coordinates in metres.
    :param values: ``(N,)`` occupancy probabilities.
    :param backend: ``auto`` (sensor_msgs_py when importable), ``own`` or ``library``.
    :raises ValueError: shapes that do not match.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if len(points) != len(values):
        raise ValueError(f'{len(points)} points but {len(values)} occupancy values')
    rows = np.empty((len(points), 4), dtype=np.float32)  # (N, 4) native byte order
    rows[:, :3] = points
    rows[:, 3] = values
    fields = occupancy_fields()
    if _use_library(backend, 'sensor_msgs_py'):
        cloud = _pc2().create_cloud(header, fields, rows)
    else:
        cloud = PointCloud2(header=header, height=1, width=len(rows), fields=fields,
                            is_bigendian=sys.byteorder != 'little', point_step=rows.itemsize * 4,
                            row_step=rows.itemsize * 4 * len(rows))
        cloud.data = array.array('B', rows.tobytes())
    cloud.is_dense = True  # voxel centres are always finite
    return cloud


def grid_to_cloud(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float,
    header: Header,
    backend: str = 'auto',
) -> PointCloud2:
    """Occupied voxel centres (probability >= threshold) as a PointCloud2, ROS axes, metres.

    :param grid: ``(D, D, D)`` probabilities indexed (x, y, z), ShapeNet axes (core convention).
    """
    points, values = grid_to_points(grid, threshold=threshold, object_size_m=object_size_m,
                                    ros_axes=True)
    return points_to_cloud(points, values, header=header, backend=backend)


def probability_colours(values: np.ndarray, *, threshold: float = 0.0) -> np.ndarray:
    """Map probabilities to RGBA in [0, 1]: blue at ``threshold``, green halfway, red at 1.

    :returns: ``(N, 4)`` float32.
    """
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    span = max(1.0 - threshold, 1e-6)
    t = np.clip((values - threshold) / span, 0.0, 1.0)
    colours = np.empty((len(t), 4), dtype=np.float32)
    colours[:, 0] = np.clip(2.0 * t - 1.0, 0.0, 1.0)
    colours[:, 1] = 1.0 - np.abs(2.0 * t - 1.0)
    colours[:, 2] = np.clip(1.0 - 2.0 * t, 0.0, 1.0)
    colours[:, 3] = 1.0
    return colours


def clear_markers(header: Header) -> MarkerArray:
    """Return a single DELETEALL marker: RViz removes the markers it shows of this namespace."""
    return MarkerArray(markers=[Marker(header=header, ns=MARKER_NAMESPACE,
                                       action=Marker.DELETEALL)])


def grid_to_markers(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float,
    header: Header,
) -> MarkerArray:
    """One CUBE_LIST marker of the occupied voxels, coloured by probability.

    With nothing occupied the array holds a single DELETEALL marker, so RViz clears the old one.
    """
    points, values = grid_to_points(grid, threshold=threshold, object_size_m=object_size_m,
                                    ros_axes=True)
    if len(points) == 0:
        return clear_markers(header)
    voxel = float(object_size_m) / grid.shape[0]
    marker = Marker(header=header, ns=MARKER_NAMESPACE, id=0, type=Marker.CUBE_LIST,
                    action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = voxel
    marker.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    marker.points = [Point(x=x, y=y, z=z) for x, y, z in points.tolist()]
    marker.colors = [ColorRGBA(r=r, g=g, b=b, a=a) for r, g, b, a in
                     probability_colours(values, threshold=threshold).tolist()]
    return MarkerArray(markers=[marker])


def grid_to_dense_cloud(
    grid: np.ndarray,
    *,
    object_size_m: float,
    header: Header,
) -> PointCloud2:
    """Return the whole probability grid as a dense, organized PointCloud2 for planners.

    Every voxel is a point (float32 ``x, y, z, occupancy``: its centre in metres in
    ``header.frame_id``, ROS axes, and its probability), so the message carries what a planner
    needs: stamp and frame in the header, origin and voxel size in the points themselves.
    Layout: ``height = D * D`` rows, ``width = D`` columns; voxel ``(a, b, c)`` along ROS
    x, y, z is point ``a * D * D + b * D + c`` (row ``a * D + b``, column ``c``). Point 0 is the
    centre of the corner voxel at ``-object_size_m / 2 + voxel / 2`` on every axis, and
    neighbouring points are one voxel (``object_size_m / D``) apart.

    :param grid: ``(D, D, D)`` probabilities indexed (x, y, z), ShapeNet axes (core convention).
    """
    ordered = grid_to_ros_axes(grid).astype(np.float32, copy=False)  # (D, D, D), ROS axes
    size = ordered.shape[0]
    rows = np.empty((size, size, size, 4), dtype=np.float32)
    rows[..., :3] = voxel_centres(size, edge_length=float(object_size_m))  # same axes as index
    rows[..., 3] = ordered
    cloud = PointCloud2(header=header, height=size * size, width=size,
                        fields=occupancy_fields(), is_bigendian=sys.byteorder != 'little',
                        point_step=16, row_step=16 * size, is_dense=True)
    cloud.data = array.array('B', rows.tobytes())
    return cloud


def dense_cloud_to_grid(cloud: PointCloud2) -> tuple[np.ndarray, float, np.ndarray]:
    """Inverse of :func:`grid_to_dense_cloud`: the grid in ROS axes, voxel size and origin.

    For a planner or a test that reads ``~/grid``: ``grid[a, b, c]`` is the probability of the
    voxel ``a, b, c`` steps along ROS x, y, z from the corner voxel centred at ``origin``.

    :returns: ``(grid (D, D, D) float32, voxel_size_m, origin (3,) float32)``.
    :raises ValueError: a cloud that is not such a grid (fields, layout, byte order).
    """
    names = tuple(f.name for f in cloud.fields)
    size = int(cloud.width)
    native = bool(cloud.is_bigendian) == (sys.byteorder != 'little')
    if (names != CLOUD_FIELD_NAMES or cloud.point_step != 16 or size < 2 or not native
            or cloud.height != size * size or len(cloud.data) != 16 * size ** 3):
        raise ValueError(f'not a dense {CLOUD_FIELD_NAMES} grid cloud: fields {names}, '
                         f'{cloud.height}x{cloud.width} points, point_step {cloud.point_step}')
    rows = np.frombuffer(bytes(cloud.data), dtype=np.float32).reshape(size, size, size, 4)
    origin = rows[0, 0, 0, :3].copy()
    voxel = float(rows[1, 0, 0, 0] - rows[0, 0, 0, 0])
    return rows[..., 3].copy(), voxel, origin


@dataclass(frozen=True)
class ReconstructionMessages:
    """The three outputs of one reconstruction, as the node publishes (and a bag records) them.

    :ivar cloud: occupied voxel centres (``~/occupancy``).
    :ivar markers: one CUBE_LIST of the same voxels (``~/markers``); None when not built.
    :ivar grid: every voxel with its probability (``~/grid``).
    """

    cloud: PointCloud2
    markers: Optional[MarkerArray]
    grid: PointCloud2


def reconstruction_messages(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float,
    header: Header,
    markers: bool = True,
) -> ReconstructionMessages:
    """Build every output message of one reconstruction with one header.

    :param grid: ``(D, D, D)`` probabilities, ShapeNet axes (as the network returns them).
    :param markers: build the MarkerArray (the costly one: ~10 ms per 1,000 voxels).
    """
    return ReconstructionMessages(
        cloud=grid_to_cloud(grid, threshold=threshold, object_size_m=object_size_m,
                            header=header),
        markers=grid_to_markers(grid, threshold=threshold, object_size_m=object_size_m,
                                header=header) if markers else None,
        grid=grid_to_dense_cloud(grid, object_size_m=object_size_m, header=header))
