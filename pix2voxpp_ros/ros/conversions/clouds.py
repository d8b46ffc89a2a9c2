"""Grid conversions: occupancy grid -> PointCloud2 (occupied voxels, dense grid) and markers.

Small free functions, numpy in and message out, no node state. Where the robot has
``sensor_msgs_py`` it builds the occupied-voxel cloud; elsewhere this module's own lines do the
same with identical bytes (the tests compare both paths).

Geometry follows :mod:`pix2voxpp_ros.core.voxels`: voxel centres in metres, the grid of edge
``object_size_m`` centred on the origin of ``frame_id``, ROS axes (x forward, y left, z up).
With a ``pose`` (``placement: calibrated``) the grid stands where that
:class:`~pix2voxpp_ros.core.placement.ObjectPose` puts it in ``frame_id`` (the fixed frame), at
its metric size: ``object_size_m`` is then the estimated one.

Grids of any edge D work (32³, 128³ from the 128³ network): a voxel is ``object_size_m / D``.
What the node publishes of a grid finer than 32³ is kept practical (measured for a 128³ car,
340,526 occupied voxels: the occupied cloud 5.4 MB, the dense grid 33.6 MB, every voxel's marker
13.6 MB and 3 s to build):

* ``~/occupancy`` (:func:`grid_to_cloud`): every occupied voxel at full resolution;
* ``~/grid`` (:func:`reconstruction_messages`): the dense grid max-pooled to
  :data:`DENSE_GRID_MAX_EDGE` (32³, 0.52 MB, the layout and spacing of a 32³ network's): a coarse
  voxel is as probable as its most probable fine voxel, so whatever the fine grid holds at a
  threshold the coarse one holds too (conservative for a planner). :func:`grid_to_dense_cloud`
  itself converts any grid it is given;
* ``~/markers`` (:func:`grid_to_markers`): above :data:`MARKER_ALL_VOXELS_EDGE` only the visible
  voxels, those with a free face; the hidden inside of a solid adds nothing in RViz.
"""

from __future__ import annotations

import array
import math
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ...core.placement import ObjectPose
from ...core.voxels import grid_to_points, grid_to_ros_axes, pool_grid, voxel_centres
from .libraries import point_cloud2, use_library

CLOUD_FIELD_NAMES = ('x', 'y', 'z', 'occupancy')
MARKER_NAMESPACE = 'occupancy'
#: The finest dense ``~/grid`` published; finer grids are max-pooled to it (see the module).
DENSE_GRID_MAX_EDGE = 32
#: Markers of grids up to this edge show every occupied voxel; finer ones only the visible.
MARKER_ALL_VOXELS_EDGE = 32


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
    if use_library(backend, 'sensor_msgs_py'):
        cloud = point_cloud2().create_cloud(header, fields, rows)
    else:
        cloud = PointCloud2(header=header, height=1, width=len(rows), fields=fields,
                            is_bigendian=sys.byteorder != 'little', point_step=rows.itemsize * 4,
                            row_step=rows.itemsize * 4 * len(rows))
        cloud.data = array.array('B', rows.tobytes())
    cloud.is_dense = True  # voxel centres are always finite
    return cloud


def placed(points: np.ndarray, pose: Optional[ObjectPose]) -> np.ndarray:
    """Move ``(N, 3)`` points of the grid frame (metres, ROS axes) to where ``pose`` puts it."""
    if pose is None:
        return points
    return (points @ pose.rotation().T + np.asarray(pose.position)).astype(np.float32)


def grid_to_cloud(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float,
    header: Header,
    backend: str = 'auto',
    pose: Optional[ObjectPose] = None,
) -> PointCloud2:
    """Occupied voxel centres (probability >= threshold) as a PointCloud2, ROS axes, metres.

    :param grid: ``(D, D, D)`` probabilities indexed (x, y, z), ShapeNet axes (core convention).
    :param pose: where the grid stands in ``header.frame_id`` (None: centred on its origin).
    """
    points, values = grid_to_points(grid, threshold=threshold, object_size_m=object_size_m,
                                    ros_axes=True)
    return points_to_cloud(placed(points, pose), values, header=header, backend=backend)


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


def visible_voxels(grid: np.ndarray, *, threshold: float) -> np.ndarray:
    """Return the grid with its hidden occupied voxels (all six face neighbours occupied) emptied.

    Voxels on the grid's border count as visible. Emptied voxels get ``-inf``, below every
    threshold.

    :param grid: ``(D, D, D)`` probabilities.
    :returns: ``(D, D, D)`` float32.
    """
    occupied = np.pad(np.asarray(grid) >= threshold, 1)  # (D + 2,) * 3, free outside
    inner = occupied[1:-1, 1:-1, 1:-1]
    hidden = inner.copy()
    for axis in range(3):
        for step in (-1, 1):
            hidden &= np.roll(occupied, step, axis=axis)[1:-1, 1:-1, 1:-1]
    return np.where(hidden, -np.inf, grid).astype(np.float32)


def grid_to_markers(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float,
    header: Header,
    pose: Optional[ObjectPose] = None,
) -> MarkerArray:
    """One CUBE_LIST marker of the occupied voxels, coloured by probability.

    With nothing occupied the array holds a single DELETEALL marker, so RViz clears the old one.
    With a ``pose`` the marker's own pose is the grid's, so the cubes turn with the object. A
    grid finer than :data:`MARKER_ALL_VOXELS_EDGE` shows only its :func:`visible_voxels`.
    """
    shown = grid if grid.shape[0] <= MARKER_ALL_VOXELS_EDGE else visible_voxels(
        grid, threshold=threshold)
    points, values = grid_to_points(shown, threshold=threshold, object_size_m=object_size_m,
                                    ros_axes=True)
    if len(points) == 0:
        return clear_markers(header)
    voxel = float(object_size_m) / grid.shape[0]
    marker = Marker(header=header, ns=MARKER_NAMESPACE, id=0, type=Marker.CUBE_LIST,
                    action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    if pose is not None:
        marker.pose.position = Point(x=pose.position[0], y=pose.position[1], z=pose.position[2])
        half = 0.5 * pose.heading_rad  # a turn about z
        marker.pose.orientation.z, marker.pose.orientation.w = math.sin(half), math.cos(half)
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
    pose: Optional[ObjectPose] = None,
) -> PointCloud2:
    """Return the whole probability grid as a dense, organized PointCloud2 for planners.

    Every voxel is a point (float32 ``x, y, z, occupancy``: its centre in metres in
    ``header.frame_id``, ROS axes, and its probability), so the message carries what a planner
    needs: stamp and frame in the header, origin and voxel size in the points themselves.
    Layout: ``height = D * D`` rows, ``width = D`` columns; voxel ``(a, b, c)`` along ROS
    x, y, z is point ``a * D * D + b * D + c`` (row ``a * D + b``, column ``c``). Point 0 is the
    centre of the corner voxel at ``-object_size_m / 2 + voxel / 2`` on every axis, and
    neighbouring points are one voxel (``object_size_m / D``) apart. With a ``pose`` every
    centre is moved where it puts the grid (the axes turn with its heading).

    :param grid: ``(D, D, D)`` probabilities indexed (x, y, z), ShapeNet axes (core convention).
    """
    ordered = grid_to_ros_axes(grid).astype(np.float32, copy=False)  # (D, D, D), ROS axes
    size = ordered.shape[0]
    rows = np.empty((size, size, size, 4), dtype=np.float32)
    centres = voxel_centres(size, edge_length=float(object_size_m))  # same axes as index
    rows[..., :3] = placed(centres.reshape(-1, 3), pose).reshape(centres.shape)
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
    voxel = float(np.linalg.norm(rows[1, 0, 0, :3] - rows[0, 0, 0, :3]))  # placed grids turn
    return rows[..., 3].copy(), voxel, origin


def dense_grid(grid: np.ndarray) -> np.ndarray:
    """Return the grid ``~/grid`` carries: as it is up to 32³, finer ones max-pooled to 32³."""
    factor = max(1, grid.shape[0] // DENSE_GRID_MAX_EDGE)
    return grid if factor == 1 else pool_grid(grid, factor, reduce='max')


@dataclass(frozen=True)
class ReconstructionMessages:
    """The three outputs of one reconstruction, as the node publishes (and a bag records) them.

    :ivar cloud: occupied voxel centres (``~/occupancy``).
    :ivar markers: one CUBE_LIST of the same voxels (``~/markers``); None when not built.
    :ivar grid: every voxel with its probability (``~/grid``), at most
        :data:`DENSE_GRID_MAX_EDGE` per edge (finer grids max-pooled to it).
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
    pose: Optional[ObjectPose] = None,
) -> ReconstructionMessages:
    """Build every output message of one reconstruction with one header.

    :param grid: ``(D, D, D)`` probabilities, ShapeNet axes (as the network returns them).
    :param markers: build the MarkerArray (the costly one: ~10 ms per 1,000 voxels).
    :param pose: the placement in ``header.frame_id`` (``object_size_m`` its size), or None.
    """
    return ReconstructionMessages(
        cloud=grid_to_cloud(grid, threshold=threshold, object_size_m=object_size_m,
                            header=header, pose=pose),
        markers=grid_to_markers(grid, threshold=threshold, object_size_m=object_size_m,
                                header=header, pose=pose) if markers else None,
        grid=grid_to_dense_cloud(dense_grid(grid), object_size_m=object_size_m, header=header,
                                 pose=pose))
