"""Several placed objects of one view set -> one PointCloud2, one MarkerArray, one PoseArray.

Small free functions, :class:`~pix2voxpp_ros.core.objects.PlacedObject` records in and messages
out; every position is in ``header.frame_id``, the fixed frame the objects were placed in.

Cloud layout (:func:`objects_to_cloud`), unorganized (``height`` 1), native byte order, no
padding, ``point_step`` 20: ``x, y, z, occupancy`` float32 at offsets 0, 4, 8, 12 (the
occupied voxel's centre in metres and its probability, 1 where unknown), then ``instance``
uint32 at 16: the object's stable id. Points come object by object in the order given.

Markers (:func:`objects_to_markers`): one namespace per kind, the object's id as the marker id,
so RViz lists each kind once and a tracked object keeps its markers' ids:

* ``objects/voxels``: CUBE_LIST of the occupied voxels (the marker's pose is the grid's, so the
  cubes turn with the object), coloured by probability when known, else in the object's colour;
* ``objects/mesh``: TRIANGLE_LIST of the marching-cubes surface (:mod:`~..core.mesh`),
  vertices in the fixed frame, counter-clockwise seen from outside;
* ``objects/box``: LINE_LIST of the 12 edges of the tight box of the voxels;
* ``objects/label``: TEXT_VIEW_FACING above the box, ``"<id>"`` or ``"<id> <category>"``.

The array starts with one DELETEALL per namespace (Marker.msg: DELETEALL with a ``ns`` deletes
that namespace's markers only), then adds the current objects: each array is the whole state,
so objects that left vanish without the publisher remembering them, a late viewer of the
latched topic sees exactly the current set, and the single-object ``occupancy`` markers are
left alone.
"""

from __future__ import annotations

import array
import itertools
import math
import sys
from typing import Mapping, Optional, Sequence

import numpy as np
from geometry_msgs.msg import Point, Pose, PoseArray
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ...core.mesh import MAX_TRIANGLES, TriangleMesh, grid_surface, mesh_to_fixed
from ...core.objects import ObjectBox, PlacedObject, check_unique_ids, object_box
from ...core.placement import ObjectPose
from ...core.voxels import grid_to_points
from .clouds import MARKER_ALL_VOXELS_EDGE, probability_colours, visible_voxels

OBJECT_CLOUD_FIELD_NAMES = ('x', 'y', 'z', 'occupancy', 'instance')
OBJECT_POINT_STEP = 20
VOXELS_NAMESPACE = 'objects/voxels'
MESH_NAMESPACE = 'objects/mesh'
BOX_NAMESPACE = 'objects/box'
LABEL_NAMESPACE = 'objects/label'
OBJECT_NAMESPACES = (VOXELS_NAMESPACE, MESH_NAMESPACE, BOX_NAMESPACE, LABEL_NAMESPACE)
#: Distinct hues for object ids (the Okabe-Ito palette, readable to colour-blind viewers).
PALETTE = ((0.90, 0.62, 0.00), (0.34, 0.71, 0.91), (0.00, 0.62, 0.45), (0.94, 0.89, 0.26),
           (0.00, 0.45, 0.70), (0.84, 0.37, 0.00), (0.80, 0.47, 0.65))
MESH_ALPHA = 0.8  # the voxels stay visible through the surface
# The cloud's rows: native byte order, as points_to_cloud writes the single-object cloud.
_CLOUD_ROW = np.dtype([('x', np.float32), ('y', np.float32), ('z', np.float32),
                       ('occupancy', np.float32), ('instance', np.uint32)])


def object_cloud_fields() -> list[PointField]:
    """Return the cloud's fields: float32 ``x, y, z, occupancy``, uint32 ``instance``."""
    fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, name in enumerate(OBJECT_CLOUD_FIELD_NAMES[:4])]
    return fields + [PointField(name='instance', offset=16, datatype=PointField.UINT32, count=1)]


def objects_to_cloud(objects: Sequence[PlacedObject], *, header: Header) -> PointCloud2:
    """Every object's occupied voxel centres in one PointCloud2, each tagged with its id.

    :param objects: the view set's objects (none: an empty cloud of the same layout).
    :raises ObjectRecordError: two objects with one id.
    """
    check_unique_ids(objects)
    parts = [obj.occupied_points() for obj in objects]  # [(points (N, 3), values (N,))]
    rows = np.empty(sum(len(values) for _, values in parts), dtype=_CLOUD_ROW)  # (ΣN,)
    start = 0
    for obj, (points, values) in zip(objects, parts):
        end = start + len(values)
        rows['x'][start:end], rows['y'][start:end], rows['z'][start:end] = points.T
        rows['occupancy'][start:end] = values
        rows['instance'][start:end] = obj.object_id
        start = end
    cloud = PointCloud2(header=header, height=1, width=len(rows), fields=object_cloud_fields(),
                        is_bigendian=sys.byteorder != 'little', point_step=OBJECT_POINT_STEP,
                        row_step=OBJECT_POINT_STEP * len(rows), is_dense=True)
    cloud.data = array.array('B', rows.tobytes())
    return cloud


def pose_message(position: Sequence[float], heading_rad: float) -> Pose:
    """Return a ``geometry_msgs/Pose`` at ``position``, turned by ``heading_rad`` about z."""
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    pose.orientation.z = math.sin(0.5 * heading_rad)
    pose.orientation.w = math.cos(0.5 * heading_rad)
    return pose


def object_pose_message(pose: ObjectPose) -> Pose:
    """Return the grid's centre and axes in the fixed frame as a ``geometry_msgs/Pose``."""
    return pose_message(pose.position, pose.heading_rad)


def objects_to_pose_array(objects: Sequence[PlacedObject], *, header: Header) -> PoseArray:
    """``~/objects``: each placed grid's pose, in the order of ``objects``."""
    return PoseArray(header=header, poses=[object_pose_message(obj.pose) for obj in objects])


def object_colour(object_id: int, *, alpha: float = 1.0) -> ColorRGBA:
    """Return the colour of an id's markers: the same from one view set to the next."""
    r, g, b = PALETTE[object_id % len(PALETTE)]
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def object_meshes(objects: Sequence[PlacedObject], *, max_triangles: int = MAX_TRIANGLES
                  ) -> dict[int, TriangleMesh]:
    """Mesh each object's occupied voxels, by id: built once, for the markers and MoveIt."""
    return {obj.object_id: grid_surface(np.asarray(obj.occupied, dtype=bool),
                                        max_triangles=max_triangles) for obj in objects}


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, dtype=np.float64).tolist()]


def _marker(header: Header, ns: str, obj: PlacedObject, kind: int) -> Marker:
    marker = Marker(header=header, ns=ns, id=int(obj.object_id), type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    return marker


def voxel_marker(obj: PlacedObject, *, header: Header) -> Optional[Marker]:
    """CUBE_LIST of the occupied voxels, posed with the grid; None when none is occupied.

    A grid finer than :data:`MARKER_ALL_VOXELS_EDGE` (32³) shows only the voxels a face of
    which is free: the hidden ones would be most of a solid object's cubes and of RViz's work.
    """
    occupied = np.asarray(obj.occupied, dtype=bool)
    if occupied.shape[0] > MARKER_ALL_VOXELS_EDGE:
        occupied = visible_voxels(occupied.astype(np.float32), threshold=0.5) >= 0.5
    local, _ = grid_to_points(occupied, threshold=0.5, object_size_m=obj.pose.size_m,
                              ros_axes=True)  # (N, 3) metres in the grid's frame
    if len(local) == 0:
        return None
    marker = _marker(header, VOXELS_NAMESPACE, obj, Marker.CUBE_LIST)
    marker.pose = object_pose_message(obj.pose)
    marker.scale.x = marker.scale.y = marker.scale.z = obj.pose.size_m / obj.resolution
    marker.color = object_colour(obj.object_id)
    marker.points = _points(local)
    if obj.probabilities is not None:
        values = np.asarray(obj.probabilities, dtype=np.float32)[np.nonzero(occupied)]
        marker.colors = [ColorRGBA(r=r, g=g, b=b, a=a)
                         for r, g, b, a in probability_colours(values).tolist()]
    return marker


def mesh_marker(obj: PlacedObject, mesh: TriangleMesh, *, header: Header) -> Optional[Marker]:
    """TRIANGLE_LIST of ``mesh`` in the fixed frame; None for a mesh without triangles."""
    if len(mesh) == 0:
        return None
    marker = _marker(header, MESH_NAMESPACE, obj, Marker.TRIANGLE_LIST)
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color = object_colour(obj.object_id, alpha=MESH_ALPHA)
    corners = mesh_to_fixed(mesh, obj.pose)[mesh.triangles.reshape(-1)]  # (3T, 3) metres
    marker.points = _points(corners)
    return marker


def box_marker(obj: PlacedObject, box: ObjectBox, *, header: Header) -> Marker:
    """LINE_LIST of the 12 edges of ``box``, posed with it."""
    marker = _marker(header, BOX_NAMESPACE, obj, Marker.LINE_LIST)
    marker.pose = pose_message(box.centre, box.heading_rad)
    marker.scale.x = max(0.002, 0.01 * obj.pose.size_m)  # line width
    marker.color = object_colour(obj.object_id)
    half = 0.5 * np.asarray(box.size)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))  # (8, 3) corners
    # An edge joins two corners that differ in one sign: 12 pairs of the 8 corners.
    edges = [(i, j) for i, j in itertools.combinations(range(8), 2)
             if np.count_nonzero(signs[i] != signs[j]) == 1]
    marker.points = _points(signs[np.array(edges).reshape(-1)] * half)  # (24, 3)
    return marker


def label_marker(obj: PlacedObject, box: ObjectBox, *, header: Header) -> Marker:
    """TEXT_VIEW_FACING above ``box``: the id, and the category where given."""
    marker = _marker(header, LABEL_NAMESPACE, obj, Marker.TEXT_VIEW_FACING)
    height = min(max(0.15 * obj.pose.size_m, 0.02), 0.1)  # text height, metres
    x, y, z = box.centre
    marker.pose.position = Point(x=x, y=y, z=z + 0.5 * box.size[2] + height)
    marker.scale.z = height
    marker.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    marker.text = str(obj.object_id) if obj.category is None else \
        f'{obj.object_id} {obj.category}'
    return marker


def objects_to_markers(
    objects: Sequence[PlacedObject],
    *,
    header: Header,
    meshes: Optional[Mapping[int, TriangleMesh]] = None,
    max_triangles: int = MAX_TRIANGLES,
) -> MarkerArray:
    """Build the view set's markers: a DELETEALL per namespace, then each object's four.

    :param meshes: surfaces by id from :func:`object_meshes` (shared with the collision
        objects); None builds them with ``max_triangles``.
    :raises ObjectRecordError: two objects with one id.
    """
    check_unique_ids(objects)
    if meshes is None:
        meshes = object_meshes(objects, max_triangles=max_triangles)
    markers = [Marker(header=header, ns=ns, action=Marker.DELETEALL) for ns in OBJECT_NAMESPACES]
    for obj in objects:
        box = object_box(obj)
        built = (voxel_marker(obj, header=header),
                 mesh_marker(obj, meshes[obj.object_id], header=header),
                 box_marker(obj, box, header=header), label_marker(obj, box, header=header))
        markers.extend(m for m in built if m is not None)
    return MarkerArray(markers=markers)
