"""Adapter tests of the several-object outputs with the real message classes (no node, no spin)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pix2voxpp_ros.core.mesh import grid_surface
from pix2voxpp_ros.core.objects import (CollisionChanges, ObjectRecordError, PlacedObject,
                                        object_box)
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.ros.conversions import (OBJECT_CLOUD_FIELD_NAMES, OBJECT_NAMESPACES,
                                           OptionalOutputs, object_meshes, objects_to_cloud,
                                           objects_to_collision_objects, objects_to_detections,
                                           objects_to_markers, objects_to_pose_array,
                                           unavailable_reason)

D = 32
HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=5), frame_id='world')


def mug(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a hollow cylinder with a handle, ShapeNet axes (y up), and its probabilities."""
    x, y, z = np.indices((D, D, D)) + 0.5 - D / 2
    radius = np.hypot(x, z)
    grid = ((radius < 10) & (radius > 7) & (np.abs(y) < 12)) | ((radius < 10) & (y < -10))
    grid |= (np.abs(z) < 1.5) & (x > 9) & (x < 14) & (np.abs(y) < 6)  # the handle, along +x
    rng = np.random.default_rng(seed)
    probabilities = np.where(grid, rng.uniform(0.5, 1.0, grid.shape),
                             rng.uniform(0.0, 0.4, grid.shape)).astype(np.float32)
    return grid, probabilities


def scene() -> list[PlacedObject]:
    grid, probabilities = mug(0)
    box = np.zeros((D, D, D), bool)
    box[4:28, 0:10, 8:24] = True  # a flat block on the grid's floor
    return [
        PlacedObject(3, grid, ObjectPose((0.4, 0.1, 0.08), 0.6, 0.16),
                     probabilities=probabilities, category='mug'),
        PlacedObject(11, box, ObjectPose((-0.2, 0.5, 0.05), -2.0, 0.3)),
    ]


def decode(cloud: PointCloud2) -> np.ndarray:
    """Read the cloud's rows as a structured array, by its own field descriptions."""
    types = {PointField.FLOAT32: '<f4', PointField.UINT32: '<u4'}
    dtype = np.dtype({'names': [f.name for f in cloud.fields],
                      'formats': [types[f.datatype] for f in cloud.fields],
                      'offsets': [f.offset for f in cloud.fields],
                      'itemsize': cloud.point_step})
    return np.frombuffer(bytes(cloud.data), dtype=dtype)


def inside(points: np.ndarray, obj: PlacedObject, *, margin: float = 1e-5) -> np.ndarray:
    """Whether each ``(N, 3)`` fixed-frame point lies in the object's box."""
    box = object_box(obj)
    local = (points - np.asarray(box.centre)) @ obj.pose.rotation()  # back to the box's axes
    return (np.abs(local) <= 0.5 * np.asarray(box.size) + margin).all(axis=1)


def yaw(orientation) -> float:
    assert orientation.x == 0.0 and orientation.y == 0.0
    return 2.0 * math.atan2(orientation.z, orientation.w)


# ------------------------------------------------------------------ cloud
def test_cloud_layout_and_points_where_the_objects_stand() -> None:
    objects = scene()
    cloud = deserialize_message(serialize_message(objects_to_cloud(objects, header=HEADER)),
                                PointCloud2)
    assert cloud.header == HEADER and cloud.height == 1 and cloud.is_dense
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('occupancy', 12, PointField.FLOAT32, 1),
        ('instance', 16, PointField.UINT32, 1)]
    assert tuple(f.name for f in cloud.fields) == OBJECT_CLOUD_FIELD_NAMES
    assert cloud.point_step == 20 and cloud.row_step == 20 * cloud.width
    rows = decode(cloud)
    assert len(rows) == sum(int(obj.occupied.sum()) for obj in objects)
    for obj in objects:
        mine = rows[rows['instance'] == obj.object_id]
        xyz = np.stack([mine['x'], mine['y'], mine['z']], axis=1)
        assert len(mine) == obj.occupied.sum()
        points, values = obj.occupied_points()
        np.testing.assert_allclose(xyz, points, atol=1e-6)
        np.testing.assert_array_equal(mine['occupancy'], values)
        assert inside(xyz, obj).all()
        assert not inside(xyz, objects[1 - objects.index(obj)]).any()  # apart from the other
    # The mug's probabilities, the box's unknown ones as 1.
    np.testing.assert_array_equal(rows['occupancy'][rows['instance'] == 3],
                                  objects[0].probabilities[objects[0].occupied])
    assert (rows['occupancy'][rows['instance'] == 11] == 1.0).all()


@pytest.mark.robot_tools('sensor_msgs_py')
def test_cloud_reads_back_with_sensor_msgs_py() -> None:
    from sensor_msgs_py.point_cloud2 import read_points
    objects = scene()
    cloud = objects_to_cloud(objects, header=HEADER)
    rows = read_points(cloud, field_names=OBJECT_CLOUD_FIELD_NAMES)
    np.testing.assert_array_equal(rows['instance'], decode(cloud)['instance'])
    assert rows['instance'].dtype == np.uint32
    np.testing.assert_allclose(np.stack([rows['x'], rows['y'], rows['z']], axis=1),
                               np.concatenate([o.occupied_points()[0] for o in objects]))


def test_empty_view_set_and_repeated_ids() -> None:
    cloud = objects_to_cloud([], header=HEADER)
    assert cloud.width == 0 and len(cloud.data) == 0 and len(cloud.fields) == 5
    markers = objects_to_markers([], header=HEADER).markers
    assert [(m.ns, m.action) for m in markers] == [(ns, Marker.DELETEALL)
                                                   for ns in OBJECT_NAMESPACES]
    assert objects_to_pose_array([], header=HEADER).poses == []
    twice = [scene()[0], scene()[0]]
    with pytest.raises(ObjectRecordError):
        objects_to_cloud(twice, header=HEADER)
    with pytest.raises(ObjectRecordError):
        objects_to_markers(twice, header=HEADER)


# ------------------------------------------------------------------ markers
def test_markers_per_object_namespaces_ids_and_types() -> None:
    objects = scene()
    markers = objects_to_markers(objects, header=HEADER).markers
    # Every namespace cleared first, so objects that left vanish with no memory of them.
    assert [(m.ns, m.action) for m in markers[:4]] == [(ns, Marker.DELETEALL)
                                                       for ns in OBJECT_NAMESPACES]
    added = {(m.ns, m.id): m for m in markers[4:]}
    assert len(added) == len(markers) - 4 == 8
    assert all(m.action == Marker.ADD and m.header == HEADER for m in added.values())
    kinds = {'objects/voxels': Marker.CUBE_LIST, 'objects/mesh': Marker.TRIANGLE_LIST,
             'objects/box': Marker.LINE_LIST, 'objects/label': Marker.TEXT_VIEW_FACING}
    for obj in objects:
        for ns, kind in kinds.items():
            assert added[ns, obj.object_id].type == kind
    assert added['objects/label', 3].text == '3 mug'
    assert added['objects/label', 11].text == '11'
    assert added['objects/mesh', 3].color != added['objects/mesh', 11].color


def test_voxel_marker_is_posed_with_the_grid() -> None:
    obj = scene()[0]
    marker = objects_to_markers([obj], header=HEADER).markers[4]
    assert marker.ns == 'objects/voxels'
    assert marker.scale.x == pytest.approx(obj.pose.size_m / D)
    p = marker.pose.position
    assert (p.x, p.y, p.z) == pytest.approx(obj.pose.position)
    assert yaw(marker.pose.orientation) == pytest.approx(obj.pose.heading_rad)
    local = np.array([(q.x, q.y, q.z) for q in marker.points])
    np.testing.assert_allclose(local @ obj.pose.rotation().T + obj.pose.position,
                               obj.occupied_points()[0], atol=1e-6)
    assert len(marker.colors) == len(marker.points)  # by probability: the mug has them


def test_voxel_marker_of_a_128_grid_shows_its_surface_cubes_only() -> None:
    """At 128³ a solid block's hidden voxels are left out; at 32³ every voxel is a cube."""
    fine = np.zeros((128, 128, 128), bool)
    fine[10:50, 0:40, 20:60] = True  # a 40³ block on the floor
    probabilities = np.where(fine, np.float32(0.9), np.float32(0.0))
    obj = PlacedObject(5, fine, ObjectPose((0.0, 0.0, 0.2), 0.3, 0.4),
                       probabilities=probabilities)
    marker = next(m for m in objects_to_markers([obj], header=HEADER).markers
                  if m.ns == 'objects/voxels' and m.type == Marker.CUBE_LIST)
    assert len(marker.points) == len(marker.colors) == 40 ** 3 - 38 ** 3
    assert marker.scale.x == pytest.approx(0.4 / 128)
    local = np.array([(q.x, q.y, q.z) for q in marker.points])
    everything = obj.occupied_points()[0] - obj.pose.position  # every voxel, fixed frame
    shown = local @ obj.pose.rotation().T
    assert np.abs(shown).max(axis=0) == pytest.approx(np.abs(everything).max(axis=0))
    coarse = next(m for m in objects_to_markers(scene()[1:], header=HEADER).markers
                  if m.ns == 'objects/voxels' and m.type == Marker.CUBE_LIST)
    assert len(coarse.points) == 24 * 10 * 16  # 32³: the block's every voxel


def test_mesh_triangles_in_the_fixed_frame() -> None:
    objects = scene()
    meshes = object_meshes(objects, max_triangles=100_000)  # full resolution: exact volume
    markers = {(m.ns, m.id): m for m in objects_to_markers(objects, header=HEADER,
                                                           meshes=meshes).markers}
    for obj in objects:
        marker = markers['objects/mesh', obj.object_id]
        assert marker.pose.position.x == 0.0 and marker.pose.orientation.w == 1.0
        corners = np.array([(q.x, q.y, q.z) for q in marker.points])  # (3T, 3)
        assert len(corners) == 3 * len(meshes[obj.object_id]) > 0
        assert inside(corners, obj).all()
        # Wound outward: the signed volume of the triangles is the solid's (the voxels', less
        # the corners marching cubes cuts), positive.
        a, b, c = corners[0::3], corners[1::3], corners[2::3]
        volume = np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0
        solid = obj.occupied.sum() * (obj.pose.size_m / D) ** 3
        assert 0.75 * solid < volume < solid
    # The same mesh whether given or built.
    again = objects_to_markers(objects[:1], header=HEADER, max_triangles=100_000).markers[5]
    assert again.points == markers['objects/mesh', 3].points


def test_box_and_label_around_the_voxels() -> None:
    obj = scene()[1]
    box = object_box(obj)
    markers = {m.ns: m for m in objects_to_markers([obj], header=HEADER).markers[4:]}
    edges = markers['objects/box']
    assert len(edges.points) == 24
    ends = np.array([(q.x, q.y, q.z) for q in edges.points]).reshape(12, 2, 3)
    lengths = sorted(np.linalg.norm(ends[:, 0] - ends[:, 1], axis=1).round(6))
    assert lengths == sorted(np.repeat(np.round(box.size, 6), 4))
    assert yaw(edges.pose.orientation) == pytest.approx(-2.0)
    np.testing.assert_allclose(box.size, (16 / D * 0.3, 24 / D * 0.3, 10 / D * 0.3))
    label = markers['objects/label'].pose.position
    assert (label.x, label.y) == pytest.approx(box.centre[:2])
    assert label.z > box.centre[2] + 0.5 * box.size[2]


def test_an_empty_grid_keeps_its_box_and_label() -> None:
    obj = PlacedObject(4, np.zeros((D, D, D), bool), ObjectPose((0.0, 0.0, 0.0), 0.0, 0.2))
    markers = objects_to_markers([obj], header=HEADER).markers[4:]
    assert [m.ns for m in markers] == ['objects/box', 'objects/label']


# ------------------------------------------------------------------ poses
def test_pose_array_equals_the_poses() -> None:
    objects = scene()
    message = objects_to_pose_array(objects, header=HEADER)
    assert message.header == HEADER and len(message.poses) == len(objects)
    for pose, obj in zip(message.poses, objects):
        assert (pose.position.x, pose.position.y, pose.position.z) == \
            pytest.approx(obj.pose.position)
        assert yaw(pose.orientation) == pytest.approx(obj.pose.heading_rad)


# ------------------------------------------------------------------ optional packages
MISSING = {output: all(importlib.util.find_spec(p) is None for p in packages)
           for output, packages in {'detections': ('vision_msgs',),
                                    'collision_objects': ('moveit_msgs',)}.items()}


@pytest.mark.parametrize('output, packages, build', [
    ('detections', 'vision_msgs',
     lambda objects: objects_to_detections(objects, header=HEADER)),
    ('collision_objects', 'moveit_msgs',
     lambda objects: objects_to_collision_objects(
         objects, CollisionChanges((3, 11), (), (), (), {}), object_meshes(objects),
         header=HEADER)),
])
def test_missing_packages_are_told_once_and_the_rest_goes_on(output, packages, build) -> None:
    if not MISSING[output]:
        pytest.skip(f'{packages} imports here')
    reason = unavailable_reason(output)
    assert reason is not None and packages in reason and output in reason
    outputs = OptionalOutputs()
    assert not outputs.available(output)
    assert outputs.notice(output) == reason
    assert outputs.notice(output) is None  # said once
    assert OptionalOutputs().notice(output) == reason  # by each node of the process
    objects = scene()
    with pytest.raises(ImportError):
        build(objects)
    assert len(objects_to_markers(objects, header=HEADER).markers) == 12


def test_unknown_optional_output_is_refused() -> None:
    with pytest.raises(ValueError, match='detections'):
        unavailable_reason('octomap')


def test_mesh_cap_reaches_the_markers() -> None:
    obj = PlacedObject(1, np.ones((D, D, D), bool), ObjectPose((0.0, 0.0, 0.0), 0.0, 0.5))
    marker = objects_to_markers([obj], header=HEADER, max_triangles=500).markers[5]
    assert marker.ns == 'objects/mesh'
    assert 0 < len(marker.points) // 3 == len(grid_surface(obj.occupied, max_triangles=500))
    assert len(marker.points) // 3 <= 500
