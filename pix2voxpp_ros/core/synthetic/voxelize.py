"""Solid voxelization of synthetic objects in ShapeNetVox32's frame and axis order.

The grid is indexed ``(x, y, z)``, y up, centred on the origin with edge 1 (the object's largest
extent): voxel ``(i, j, k)`` has its centre at ``((i, j, k) + 0.5) / N - 0.5``, the convention of
:mod:`pix2voxpp_ros.core.voxels`, at every resolution (32³ for ShapeNetVox32, 128³ for the
128³ network).

Each voxel is sampled at ``supersample³`` regularly spaced points: 4³ at 32³ and 2³ at finer
grids by default, so a 128³ grid is sampled twice as finely along an edge as a 32³ one (256
against 128 points) in a tenth of the time and memory 4³ would take there (0.7 s and 160 MB for
a car against 5.5 s and 890 MB). Two rules, by part:

* **thin parts off the lattice** (:meth:`Part.thickness` under :data:`THIN_VOXELS` voxels, and
  not lying in whole voxel layers across their thickness: a rod at an angle) occupy every voxel
  they pass through, as binvox's surface voxelization followed by filling does, so that a rod
  thinner than a voxel is still a connected chain of voxels;
* **all other parts** occupy the voxels that their union fills at least half of: their boundary
  is then not biased outwards by up to a voxel, and the grid's silhouette matches the rendered
  one as closely as 32³ allows. Any solid at least two voxels thick fills half of some voxel, so
  no such part can vanish; neither can a thin part whose faces across its thickness lie on voxel
  faces (a leg, a slat, a swept wing of :mod:`.shapes`, snapped by :mod:`.lattice`), since it
  fills whole voxel layers, and the rule then draws its outline within them.

Decals (:attr:`Part.decal`) are surface paint: the part under them holds their voxels.
"""

from __future__ import annotations

import numpy as np

from .lattice import RESOLUTION, THIN_VOXELS
from .primitives import Box, Frustum, Part
from .shapes import SyntheticObject


#: Sample points one part is tested at in one go; larger blocks (only on grids finer than 32³,
#: so 32³ grids are computed exactly as before) go in slabs along x to bound the memory.
_MAX_BLOCK_SAMPLES = 1 << 22


def default_supersample(resolution: int) -> int:
    """Return the samples per voxel edge :func:`voxelize` takes by default: 4 up to 32³, else 2."""
    return 4 if resolution <= RESOLUTION else 2


def voxelize(obj: SyntheticObject, *, resolution: int = RESOLUTION,
             supersample: int | None = None) -> np.ndarray:
    """Return the object's solid occupancy grid.

    :param obj: the object; its parts lie in the unit cube centred on the origin.
    :param resolution: voxels along each axis.
    :param supersample: sample points per voxel along each axis, 1 to 6; None:
        :func:`default_supersample`.
    :returns: ``(N, N, N)`` bool grid indexed (x, y, z).
    :raises ValueError: ``resolution`` below 1 or ``supersample`` outside 1 to 6.
    """
    if supersample is None:
        supersample = default_supersample(resolution)
    if resolution < 1 or not 1 <= supersample <= 6:  # 6³ samples still count in a uint8
        raise ValueError(f'resolution ({resolution}) must be at least 1 and supersample '
                         f'({supersample}) within 1 to 6')
    n, s = resolution, supersample
    thin_samples = np.zeros((n * s,) * 3, dtype=np.uint8)  # fine lattice, 1 inside a thin part
    thick_samples = np.zeros((n * s,) * 3, dtype=np.uint8)  # 1 inside a thick part
    axis = (np.arange(n * s) + 0.5) / (n * s) - 0.5  # sample coordinates along one axis
    for part in obj.parts:
        if part.decal:
            continue
        lo, hi = part.bounds()
        # Voxel index range touched by the part's bounds, then the samples inside it.
        i0 = np.clip(np.floor((lo + 0.5) * n).astype(int), 0, n - 1)
        i1 = np.clip(np.floor((hi + 0.5) * n).astype(int), 0, n - 1) + 1
        conservative = part.thickness() * n < THIN_VOXELS and not _in_layers(part, n)
        target = thin_samples if conservative else thick_samples
        ys, zs = axis[i0[1] * s:i1[1] * s], axis[i0[2] * s:i1[2] * s]
        # Whole voxel slabs along x, as many as _MAX_BLOCK_SAMPLES allow (all of them at 32³).
        slab = max(1, _MAX_BLOCK_SAMPLES // (s ** 3 * int(np.prod(i1[1:] - i0[1:]))))
        for a in range(i0[0], i1[0], slab):
            b = min(a + slab, i1[0])
            pts = np.stack(np.meshgrid(axis[a * s:b * s], ys, zs, indexing='ij'),
                           axis=-1)  # (X, Y, Z, 3)
            inside = part.contains(part.to_local(pts.reshape(-1, 3))).reshape(pts.shape[:3])
            target[a * s:b * s, i0[1] * s:i1[1] * s, i0[2] * s:i1[2] * s] |= inside
    thin = _block_sum(thin_samples, n, s) > 0
    thick = 2 * _block_sum(thick_samples, n, s).astype(np.int32) >= s ** 3
    return thin | thick


def _in_layers(part: Part, n: int) -> bool:
    """Return whether each thin extent of a box or disc lies along a grid axis, on voxel faces.

    Such a part fills whole voxel layers (or columns) across its thickness.
    """
    if isinstance(part, Box):
        extents = [(part.rotation[:, i], part.centre, part.half[i]) for i in range(3)
                   if 2.0 * part.half[i] * n < THIN_VOXELS]
    elif isinstance(part, Frustum) and 2.0 * part.half_height * n < THIN_VOXELS \
            and 2.0 * max(part.radius_bottom, part.radius_top) * n >= THIN_VOXELS:
        extents = [(part.rotation[:, 1], part.centre, part.half_height)]
    else:  # ellipsoids, and rods thin across a round section
        return False
    for direction, centre, half in extents:
        axis = int(np.abs(direction).argmax())
        if abs(abs(direction[axis]) - 1.0) > 1e-9:
            return False
        for face in (centre[axis] - half, centre[axis] + half):
            voxels = (face + 0.5) * n
            if abs(voxels - round(voxels)) > 1e-6:
                return False
    return True


def _block_sum(samples: np.ndarray, n: int, s: int) -> np.ndarray:
    """Sum a ``(n*s,)*3`` uint8 lattice over each voxel's ``s³`` samples; ``(n, n, n)`` uint8."""
    # Adding whole slabs axis by axis is many times faster than reshape(...).sum(axis=(1, 3, 5)).
    out = samples.reshape(n, s, -1)
    out = sum(out[:, k] for k in range(1, s)) + out[:, 0]
    out = out.reshape(n, n, s, -1)
    out = sum(out[:, :, k] for k in range(1, s)) + out[:, :, 0]
    out = out.reshape(n, n, n, s)
    return sum(out[..., k] for k in range(1, s)) + out[..., 0]


def surface_corners(grid: np.ndarray) -> np.ndarray:
    """Return the ``(N, 3)`` corners of a grid's surface voxels, object frame, each once.

    Their projections bound the silhouette of the voxels, and of a voxel-faithful object, in
    any view: what :func:`~.camera.sample_robot_cameras` frames.

    :raises ValueError: the grid is empty.
    """
    grid = np.asarray(grid, dtype=bool)
    if not grid.any():
        raise ValueError('the grid has no occupied voxel')
    n = grid.shape[0]
    pad = np.pad(grid, 1)
    inner = grid.copy()
    for axis in range(3):
        for shift in (1, -1):
            inner &= np.roll(pad, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    cells = np.argwhere(grid & ~inner)
    offsets = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    corners = np.unique((cells[:, None, :] + offsets).reshape(-1, 3), axis=0)
    return corners / n - 0.5
