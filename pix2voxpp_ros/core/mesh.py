"""The surface of an occupancy grid as a triangle mesh (marching cubes), and placing it.

:func:`grid_surface` runs scikit-image's marching cubes on a ``(D, D, D)`` grid in ShapeNet axes
(the network's output) and returns the mesh in the project's ROS axes, in grid-edge units and
centred on the grid's centre, as :func:`~.voxels.grid_to_points` places voxel centres: a vertex
of the surface lies halfway between an occupied and a free voxel centre (bool grids), or where
the probability crosses the threshold (probability grids). The grid is padded with free voxels
first, so an object touching the grid's border still has a closed surface.

Triangles wind counter-clockwise seen from outside (right-hand normals point out of the solid),
the convention of RViz and of MoveIt's collision meshes.

A mesh is kept under ``max_triangles``: above it the grid is max-pooled by 2 (then 4, ...) and
meshed again. Pooling never thins the object (a thin handle stays, a little thicker), which a
collision object wants more than detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.measure import marching_cubes

from .placement import ObjectPose
from .voxels import SHAPENET_TO_ROS

#: Default cap on triangles per mesh: about 290 KB as a Marker TRIANGLE_LIST (72 B a triangle),
#: 100 KB as a shape_msgs/Mesh. A full 32³ sphere (~8,900 triangles) is meshed pooled by 2.
MAX_TRIANGLES = 4000
#: The fewest triangles a cap may allow: one voxel's closed surface has 8.
MIN_TRIANGLES = 8


@dataclass(frozen=True, eq=False)
class TriangleMesh:
    """A closed triangle mesh of one object's grid.

    :ivar vertices: ``(V, 3)`` float32, grid-edge units, ROS axes, the grid's centre at 0.
    :ivar triangles: ``(T, 3)`` int32 vertex indices, counter-clockwise seen from outside.
    :ivar pooling: the grid's pooling factor the mesh was made at (1: full resolution).
    """

    vertices: np.ndarray
    triangles: np.ndarray
    pooling: int = 1

    def __len__(self) -> int:
        """Return the number of triangles."""
        return len(self.triangles)


def _empty_mesh() -> TriangleMesh:
    return TriangleMesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))


def _max_pool(values: np.ndarray, factor: int) -> np.ndarray:
    """Max over ``factor``-wide blocks; the far sides are padded with 0 to a whole block."""
    if factor == 1:
        return values
    size = values.shape[0]
    blocks = -(-size // factor)  # ceil
    padded = np.zeros((blocks * factor,) * 3, values.dtype)
    padded[:size, :size, :size] = values
    # (b, f, b, f, b, f): every coarse voxel's block along its own axes
    return padded.reshape(blocks, factor, blocks, factor, blocks, factor).max(axis=(1, 3, 5))


def _surface_at(values: np.ndarray, threshold: float, factor: int, size: int
                ) -> TriangleMesh:
    """Mesh ``values`` pooled by ``factor``; vertices in grid-edge units of the ``size`` grid."""
    coarse = np.pad(_max_pool(values, factor), 1)  # (d + 2,) * 3, a free border closes it
    if not (coarse >= threshold).any():
        return _empty_mesh()
    vertices, faces, _, _ = marching_cubes(coarse, level=threshold)
    # Coarse voxel c (after the pad: index c + 1) spans fine voxels f*c .. f*c + f - 1, so its
    # centre is at fine index f*c + (f - 1) / 2; a fine voxel i's centre at (i + 0.5) / D - 0.5.
    fine = factor * (vertices - 1.0) + 0.5 * (factor - 1)
    shapenet = (fine + 0.5) / size - 0.5  # (V, 3) grid-edge units, ShapeNet axes
    ros = shapenet @ SHAPENET_TO_ROS.T  # a proper rotation: the winding is kept
    # skimage's default ('descent') winds the triangles clockwise seen from outside: flip them.
    return TriangleMesh(ros.astype(np.float32), np.ascontiguousarray(faces[:, ::-1], np.int32),
                        factor)


def grid_surface(
    grid: np.ndarray,
    *,
    threshold: float = 0.5,
    max_triangles: int = MAX_TRIANGLES,
) -> TriangleMesh:
    """Return the closed surface of the voxels at or above ``threshold``.

    :param grid: ``(D, D, D)`` bool or probabilities indexed (x, y, z), ShapeNet axes.
    :param threshold: the iso-level, in (0, 1); a bool grid is meshed at 0.5 whatever it is.
    :param max_triangles: cap; the grid is pooled by 2, 4, ... until the mesh fits.
    :returns: the mesh (no triangles when nothing reaches the threshold).
    :raises ValueError: a grid that is not a cube, a threshold outside (0, 1), a cap under
        :data:`MIN_TRIANGLES`.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1 or grid.shape[0] < 1:
        raise ValueError(f'expected a (D, D, D) grid, got shape {grid.shape}')
    if not 0.0 < threshold < 1.0:
        raise ValueError(f'threshold must lie in (0, 1), got {threshold}')
    if max_triangles < MIN_TRIANGLES:
        raise ValueError(f'max_triangles must be at least {MIN_TRIANGLES}, got {max_triangles}')
    if grid.dtype == np.bool_:
        values, level = grid.astype(np.float32), 0.5
    else:
        values, level = grid.astype(np.float32, copy=False), float(threshold)
    size = grid.shape[0]
    factor = 1
    while True:
        mesh = _surface_at(values, level, factor, size)
        if len(mesh) <= max_triangles or factor >= size:
            return mesh
        factor *= 2


def mesh_to_fixed(mesh: TriangleMesh, pose: ObjectPose) -> np.ndarray:
    """Return the mesh's ``(V, 3)`` vertices in the fixed frame, metres, where ``pose`` puts it."""
    return pose.to_fixed(mesh.vertices)


def mesh_in_grid_frame(mesh: TriangleMesh, size_m: float) -> np.ndarray:
    """Return the ``(V, 3)`` vertices in metres in the grid's own frame (ROS axes, centred)."""
    return mesh.vertices.astype(np.float64) * float(size_m)
