"""The 32³ voxel lattice seen from a builder's metric frame, for snapping parts onto it.

A 32³ ground truth holds only what is made of whole voxels: a leg thinner than a voxel fills a
whole voxel column, so the grid's silhouette of it is much wider than the rendered one, and a
plate lying across two voxel layers fills both. Procedural objects are therefore built
*voxel-faithful*, in grid coordinates known while they are built:
:func:`~pix2voxpp_ros.core.synthetic.shapes.make_object` builds an object twice from the same
random draws. The first, sizing pass (``Lattice()``, which changes nothing) gives the object's
bounds and so the scale and offset into the grid (:meth:`Lattice.fit`); the second pass builds it
again with that lattice, and the builders snap their parts with it: faces on voxel faces, thin
parts a whole number of voxels (at least one) thick, round parts centred in whole voxels. Should
snapping move a part that is not snapped itself out of the grid, the grid is fitted to what was
built and the object built again.

All values stay in the builder's metric frame; :meth:`Lattice.to_grid` and the parts'
``transformed`` map them into grid coordinates, where voxel faces lie at ``k / 32 - 1/2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Grid resolution of ShapeNetVox32.
RESOLUTION = 32
#: Extents under this many voxels are thin: :meth:`Lattice.span` keeps their width a whole number
#: of voxels (at least one) instead of rounding each face on its own, and
#: :func:`~pix2voxpp_ros.core.synthetic.voxelize.voxelize` fills every voxel a thin part passes
#: through unless the part lies in whole voxel layers.
THIN_VOXELS = 2.0

_AXES = {'x': 0, 'y': 1, 'z': 2, 0: 0, 1: 1, 2: 2}


@dataclass(frozen=True)
class Lattice:
    """Maps an object's metric frame to grid coordinates and snaps values to voxel faces.

    :ivar scale: grid edges per metric unit; 0 for the sizing pass, in which every method
        returns its input unchanged.
    :ivar offset: grid coordinates of the metric origin.
    :ivar resolution: voxels along each grid edge.
    """

    scale: float = 0.0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    resolution: int = RESOLUTION

    @classmethod
    def fit(cls, lo: np.ndarray, hi: np.ndarray, *, resolution: int = RESOLUTION) -> Lattice:
        """Return the lattice that fits metric bounds into the grid cube.

        The largest extent becomes the grid edge and the bounds are centred, except along y,
        where they move by under half a voxel so that the floor (the lowest point) lies on a
        voxel face and the whole object still fits.
        """
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        scale = 1.0 / float((hi - lo).max())
        offset = -0.5 * (lo + hi) * scale
        floor = (lo[1] * scale + offset[1] + 0.5) * resolution  # in voxels from the grid corner
        offset[1] += (round(floor) - floor) / resolution
        return cls(scale, (float(offset[0]), float(offset[1]), float(offset[2])), resolution)

    @property
    def active(self) -> bool:
        """Return False in the sizing pass."""
        return self.scale > 0.0

    @property
    def voxel(self) -> float:
        """Return the metric edge of one voxel, or 0 in the sizing pass."""
        return 1.0 / (self.scale * self.resolution) if self.active else 0.0

    def to_grid(self, points: np.ndarray) -> np.ndarray:
        """Map metric points ``(..., 3)`` to grid coordinates."""
        return np.asarray(points, dtype=np.float64) * self.scale + np.asarray(self.offset)

    def _voxels(self, value: float, axis: int) -> float:
        # Metric coordinate -> voxel coordinate, 0 at the grid's low face.
        return ((value * self.scale + self.offset[axis]) + 0.5) * self.resolution

    def _metric(self, voxels: float, axis: int) -> float:
        return ((voxels / self.resolution - 0.5) - self.offset[axis]) / self.scale

    def plane(self, value: float, axis: str | int) -> float:
        """Return the voxel face nearest to a metric coordinate along ``axis``."""
        if not self.active:
            return value
        a = _AXES[axis]
        return self._metric(round(self._voxels(value, a)), a)

    def length(self, value: float, *, least: int = 1) -> float:
        """Round a metric length to whole voxels, at least ``least`` of them."""
        if not self.active:
            return value
        return max(least, round(value * self.scale * self.resolution)) * self.voxel

    def span(self, lo: float, hi: float, axis: str | int) -> tuple[float, float]:
        """Snap the interval ``[lo, hi]`` along ``axis`` to voxel faces.

        A thick interval (:data:`THIN_VOXELS` or more) rounds each face to the nearest voxel
        face, so intervals that share a face still share it. A thin one keeps its width, rounded
        to whole voxels and at least one, and moves its centre by under half a voxel: a leg or a
        plate never vanishes or doubles. Snapping is idempotent, and intervals mirrored through
        the grid's centre stay mirrored (ties round half to even).
        """
        if not self.active:
            return lo, hi
        a = _AXES[axis]
        v0, v1 = self._voxels(lo, a), self._voxels(hi, a)
        if v1 - v0 >= THIN_VOXELS:
            return self._metric(round(v0), a), self._metric(round(v1), a)
        return self._whole(v0, v1, a)

    def column(self, centre: float, diameter: float, axis: str | int, *,
               parity: int | None = None) -> tuple[float, float]:
        """Return the voxel-face interval of a round part's cross-section along ``axis``.

        The width is the diameter rounded to whole voxels (at least one; of the given parity,
        0 even or 1 odd, if any), the same along both cross-section axes, and the interval is
        the one of that width nearest to ``centre``: a circle inscribed in it is centred in its
        voxels.
        """
        if not self.active:
            return centre - 0.5 * diameter, centre + 0.5 * diameter
        a = _AXES[axis]
        v0, v1 = self._voxels(centre - 0.5 * diameter, a), self._voxels(centre + 0.5 * diameter, a)
        return self._whole(v0, v1, a, parity)

    def around(self, width: float, ref: tuple[float, float]) -> tuple[float, float]:
        """Return an interval about ``width`` wide centred on the snapped interval ``ref``.

        Its voxel count has the parity of ``ref``'s (the nearest such count, ties to the
        smaller), so that its faces lie on voxel faces too: round parts stacked on one axis.
        """
        mid = 0.5 * (ref[0] + ref[1])
        if self.active:
            width = _count(width / self.voxel, self.parity(ref)) * self.voxel
        return mid - 0.5 * width, mid + 0.5 * width

    def parity(self, span: tuple[float, float]) -> int:
        """Return 0 if a snapped interval is an even number of voxels wide, else 1."""
        return round((span[1] - span[0]) / self.voxel) % 2 if self.active else 0

    def _whole(self, v0: float, v1: float, axis: int, parity: int | None = None
               ) -> tuple[float, float]:
        # The interval of whole voxels (at least one) nearest to [v0, v1] (voxel coordinates).
        width = _count(v1 - v0, parity)
        start = round(0.5 * (v0 + v1) - 0.5 * width)  # half-to-even: odd under negation
        return self._metric(start, axis), self._metric(start + width, axis)


def _count(voxels: float, parity: int | None) -> int:
    """Round a width in voxels to a whole count, at least one, of the given parity if any."""
    if parity is None:
        return max(1, round(voxels))
    count = 2 * math.ceil((voxels - parity) / 2 - 0.5) + parity  # nearest, ties to the smaller
    return max(count, 2 - parity)
