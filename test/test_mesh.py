"""Core tests of the grid's marching-cubes surface: closed, wound outward, in the ROS axes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pix2voxpp_ros.core.mesh import (MAX_TRIANGLES, TriangleMesh, grid_surface,
                                     mesh_in_grid_frame, mesh_to_fixed)
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.voxels import grid_to_points

D = 32


def ball(radius_voxels: float, size: int = D) -> np.ndarray:
    """``(D, D, D)`` bool: voxel centres within ``radius_voxels`` of the grid's centre."""
    centres = np.indices((size,) * 3) + 0.5 - size / 2  # (3, D, D, D) voxel units
    return (centres ** 2).sum(axis=0) <= radius_voxels ** 2


def corners(mesh: TriangleMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each triangle's three corners, ``(T, 3)`` each."""
    return tuple(mesh.vertices[mesh.triangles[:, k]].astype(np.float64) for k in range(3))


def signed_volume(mesh: TriangleMesh) -> float:
    """Volume enclosed (grid-edge units³), positive when the triangles wind outward."""
    a, b, c = corners(mesh)
    return float(np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6.0)


def area(mesh: TriangleMesh) -> float:
    a, b, c = corners(mesh)
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def assert_closed(mesh: TriangleMesh) -> None:
    """Watertight and consistently wound: every directed edge once, its reverse once."""
    t = mesh.triangles
    edges = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])  # (3T, 2) directed
    directed = set(map(tuple, edges.tolist()))
    assert len(directed) == len(edges), 'an edge is used twice in one direction'
    assert all((b, a) in directed for a, b in directed), 'an edge has no opposite: a hole'


def test_box_is_closed_outward_and_in_ros_axes() -> None:
    grid = np.zeros((D, D, D), bool)
    grid[4:12, 10:30, 16:20] = True  # ShapeNet x 8, y (up) 20, z 4 voxels
    mesh = grid_surface(grid)
    assert mesh.pooling == 1 and mesh.vertices.dtype == np.float32
    assert_closed(mesh)
    # Marching cubes cuts every corner and edge of a box: the volume is a little under its own.
    assert 0.9 * grid.sum() / D ** 3 < signed_volume(mesh) < grid.sum() / D ** 3
    # Extent as the clouds' points (ROS axes: x = ShapeNet z, y = x, z = y) plus half a voxel.
    points, _ = grid_to_points(grid, threshold=0.5, ros_axes=True)
    np.testing.assert_allclose(mesh.vertices.min(axis=0), points.min(axis=0) - 0.5 / D,
                               atol=1e-6)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), points.max(axis=0) + 0.5 / D,
                               atol=1e-6)
    np.testing.assert_allclose(np.ptp(mesh.vertices, axis=0), np.array([4, 8, 20]) / D,
                               atol=1e-6)


def test_sphere_area_volume_and_outward_normals() -> None:
    radius = 10.0  # voxels
    mesh = grid_surface(ball(radius), max_triangles=100_000)
    assert_closed(mesh)
    r = radius / D
    assert signed_volume(mesh) == pytest.approx(4.0 / 3.0 * math.pi * r ** 3, rel=0.05)
    assert area(mesh) == pytest.approx(4.0 * math.pi * r ** 2, rel=0.1)
    a, b, c = corners(mesh)
    normals = np.cross(b - a, c - a)  # right-hand rule: counter-clockwise seen from outside
    assert (np.einsum('ij,ij->i', normals, (a + b + c) / 3.0) > 0).all()


def test_object_at_the_border_closes() -> None:
    mesh = grid_surface(np.ones((D, D, D), bool), max_triangles=100_000)
    assert_closed(mesh)
    assert signed_volume(mesh) == pytest.approx(1.0, rel=0.05)
    assert np.abs(mesh.vertices).max() == pytest.approx(0.5, abs=1e-6)


def test_cap_pools_the_grid_and_never_thins_it() -> None:
    grid = ball(15.5)
    full = grid_surface(grid, max_triangles=100_000)
    assert len(full) > MAX_TRIANGLES
    capped = grid_surface(grid)
    assert capped.pooling == 2 and 0 < len(capped) <= MAX_TRIANGLES
    assert_closed(capped)
    assert signed_volume(capped) >= signed_volume(full)
    # A one-voxel rod survives any pooling.
    rod = np.zeros((D, D, D), bool)
    rod[16, :, 16] = True
    tiny = grid_surface(rod, max_triangles=40)
    assert tiny.pooling > 1 and 0 < len(tiny) <= 40
    assert_closed(tiny)


def test_probability_grid_uses_the_threshold() -> None:
    grid = np.zeros((D, D, D), np.float32)
    grid[8:24, 8:24, 8:24] = 0.6
    assert len(grid_surface(grid, threshold=0.7)) == 0
    mesh = grid_surface(grid, threshold=0.3)
    assert_closed(mesh)
    # The surface lies where 0 -> 0.6 crosses 0.3: halfway between the centres, as a bool grid.
    np.testing.assert_allclose(mesh.vertices, grid_surface(grid > 0.3).vertices, atol=1e-6)


def test_empty_grid_has_no_triangles() -> None:
    mesh = grid_surface(np.zeros((D, D, D), bool))
    assert mesh.vertices.shape == (0, 3) and mesh.triangles.shape == (0, 3)


def test_fixed_frame_vertices_follow_the_pose() -> None:
    grid = np.zeros((D, D, D), bool)
    grid[2:6, 20:30, 12:14] = True
    mesh = grid_surface(grid)
    pose = ObjectPose(position=(1.0, -2.0, 0.5), heading_rad=0.7, size_m=0.3)
    fixed = mesh_to_fixed(mesh, pose)
    turn = np.array([[math.cos(0.7), -math.sin(0.7), 0.0],
                     [math.sin(0.7), math.cos(0.7), 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(fixed, mesh.vertices * 0.3 @ turn.T + [1.0, -2.0, 0.5],
                               atol=1e-6)
    np.testing.assert_allclose(mesh_in_grid_frame(mesh, 0.3), mesh.vertices * 0.3, atol=1e-7)
    # The canonical up (ShapeNet y) stays up in the fixed frame, as the clouds' points do.
    assert np.ptp(fixed[:, 2]) == pytest.approx(10 / D * 0.3, abs=1e-6)


@pytest.mark.parametrize('bad', [dict(grid=np.zeros((4, 4, 5), bool)),
                                 dict(threshold=0.0), dict(threshold=1.0),
                                 dict(max_triangles=7)])
def test_bad_arguments_are_refused(bad: dict) -> None:
    arguments = dict(grid=np.zeros((4, 4, 4), bool)) | bad
    grid = arguments.pop('grid')
    with pytest.raises(ValueError):
        grid_surface(grid, **arguments)
