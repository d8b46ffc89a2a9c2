"""Solid primitives of synthetic objects: boxes, frustums (cylinders, cones) and ellipsoids.

Each primitive is a convex solid with a pose (``centre`` and a rotation whose columns are the
primitive's local axes in the object frame) and an albedo colour. It answers three questions, all
vectorised over many rays or points, which is what keeps the renderer and the voxelizer exact and
mutually consistent:

* :meth:`Part.intersect` — the first hit of rays from one origin (analytic, no ray marching);
* :meth:`Part.normal` — the outward unit normal at surface points;
* :meth:`Part.contains` — whether points lie inside the solid.

Arrays work in the primitive's local frame; :meth:`Part.to_local` maps object-frame points there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import numpy as np

_EYE = np.eye(3)


def rows_times(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Return ``vectors @ matrix`` for ``(..., 3)`` rows and a ``(3, 3)`` matrix.

    einsum is several times faster than ``@`` for millions of 3-vectors here and uses no BLAS
    threads, which would compete with the dataset writer's worker processes.
    """
    return np.einsum('...j,jk->...k', vectors, matrix)


@dataclass(frozen=True, eq=False)
class Part(ABC):
    """A convex solid placed in the object frame.

    :ivar centre: ``(3,)`` position of the local origin in the object frame.
    :ivar rotation: ``(3, 3)`` rotation; column ``i`` is local axis ``i`` in the object frame.
    :ivar colour: albedo as RGB floats in ``[0, 1]``.
    :ivar decal: a surface detail (a headlight, a label) lying on a bigger part and standing
        out of it by a sliver: rendered, but no part of the object's solid, its bounds or its
        voxels, which the part under it holds.
    """

    centre: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: _EYE.copy())
    colour: tuple[float, float, float] = (0.7, 0.7, 0.7)
    decal: bool = False

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` object-frame points to the local frame."""
        return rows_times(points - self.centre, self.rotation)

    @abstractmethod
    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Return the ray parameter of the first hit of rays ``origin + t * dirs`` (local frame).

        :param origin: ``(3,)`` common ray origin, outside the solid.
        :param dirs: ``(N, 3)`` unit directions.
        :returns: ``(N,)`` float, ``inf`` where a ray misses.
        """

    @abstractmethod
    def normal(self, points: np.ndarray) -> np.ndarray:
        """Return ``(N, 3)`` outward unit normals at local surface points ``(N, 3)``."""

    @abstractmethod
    def contains(self, points: np.ndarray) -> np.ndarray:
        """Return ``(N,)`` bool: whether local points lie inside or on the solid."""

    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the tight axis-aligned bounds ``(lo (3,), hi (3,))`` in the object frame."""

    @abstractmethod
    def thickness(self) -> float:
        """Return the solid's smallest extent (a plate's thickness, a rod's diameter)."""

    @abstractmethod
    def transformed(self, scale: float, offset: np.ndarray) -> Part:
        """Return the part with the object frame scaled by ``scale`` and shifted by ``offset``."""


@dataclass(frozen=True, eq=False)
class Box(Part):
    """A cuboid with half extents ``half`` along its local axes."""

    half: np.ndarray = field(default_factory=lambda: np.full(3, 0.5))

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Intersect by the slab test; see :meth:`Part.intersect`."""
        with np.errstate(divide='ignore', invalid='ignore'):
            inv = 1.0 / dirs
            t_a = (-self.half - origin) * inv
            t_b = (self.half - origin) * inv
        t_near = np.minimum(t_a, t_b).max(axis=1)
        t_far = np.maximum(t_a, t_b).min(axis=1)
        hit = (t_near <= t_far) & (t_near > 0.0)
        return np.where(hit, t_near, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        """Return the normal of the face each point lies on; see :meth:`Part.normal`."""
        ratio = points / self.half
        axis = np.abs(ratio).argmax(axis=1)
        out = np.zeros_like(points)
        rows = np.arange(len(points))
        out[rows, axis] = np.sign(ratio[rows, axis])
        return out

    def contains(self, points: np.ndarray) -> np.ndarray:
        """See :meth:`Part.contains`."""
        return (np.abs(points) <= self.half).all(axis=1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`Part.bounds`."""
        reach = np.abs(self.rotation) @ self.half
        return self.centre - reach, self.centre + reach

    def thickness(self) -> float:
        """See :meth:`Part.thickness`."""
        return 2.0 * float(self.half.min())

    def transformed(self, scale: float, offset: np.ndarray) -> Box:
        """See :meth:`Part.transformed`."""
        return replace(self, centre=self.centre * scale + offset, half=self.half * scale)


@dataclass(frozen=True, eq=False)
class Frustum(Part):
    """A truncated cone along local y from ``-half_height`` to ``+half_height``.

    Radius ``radius_bottom`` at ``y = -half_height`` and ``radius_top`` at ``+half_height``;
    equal radii make a cylinder, a zero radius a cone.
    """

    radius_bottom: float = 0.5
    radius_top: float = 0.5
    half_height: float = 0.5

    def _radius_line(self) -> tuple[float, float]:
        # r(y) = mid + slope * y
        mid = 0.5 * (self.radius_bottom + self.radius_top)
        slope = (self.radius_top - self.radius_bottom) / (2.0 * self.half_height)
        return mid, slope

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Intersect the quadric side and the two cap discs; see :meth:`Part.intersect`."""
        mid, slope = self._radius_line()
        h = self.half_height
        ox, oy, oz = origin
        dx, dy, dz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
        # x^2 + z^2 - r(y)^2 = 0 with r(t) = e + f t is a quadratic a t^2 + 2 b t + c.
        e = mid + slope * oy
        f = slope * dy
        a = dx * dx + dz * dz - f * f
        b = ox * dx + oz * dz - e * f
        c = ox * ox + oz * oz - e * e
        disc = b * b - a * c
        with np.errstate(divide='ignore', invalid='ignore'):
            root = np.sqrt(np.maximum(disc, 0.0))
            t1 = (-b - root) / a
            t2 = (-b + root) / a
        best = np.full(len(dirs), np.inf)
        for t in (t1, t2):
            y = oy + t * dy
            ok = (disc >= 0.0) & (t > 0.0) & (np.abs(y) <= h) & (e + f * t >= 0.0)
            best = np.where(ok & (t < best), t, best)
        with np.errstate(divide='ignore', invalid='ignore'):
            for y_cap, r_cap in ((h, self.radius_top), (-h, self.radius_bottom)):
                t = (y_cap - oy) / dy
                px = ox + t * dx
                pz = oz + t * dz
                ok = (t > 0.0) & (px * px + pz * pz <= r_cap * r_cap)
                best = np.where(ok & (t < best), t, best)
        return best

    def normal(self, points: np.ndarray) -> np.ndarray:
        """Return the cap or side normal, whichever surface is nearer; see :meth:`Part.normal`."""
        mid, slope = self._radius_line()
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        rho = np.hypot(x, z)
        r = mid + slope * y
        cap_gap = np.abs(self.half_height - np.abs(y))
        side_gap = np.abs(r - rho) / np.sqrt(1.0 + slope * slope)
        side = np.stack([x, -slope * r, z], axis=1)
        # A point on the axis of a cone tip has no radial direction: fall back to the axis.
        side[rho < 1e-12] = (0.0, 1.0, 0.0)
        side /= np.linalg.norm(side, axis=1, keepdims=True)
        cap = np.zeros_like(points)
        cap[:, 1] = np.where(y >= 0.0, 1.0, -1.0)
        return np.where((cap_gap < side_gap)[:, None], cap, side)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """See :meth:`Part.contains`."""
        mid, slope = self._radius_line()
        y = points[:, 1]
        r = mid + slope * y
        rho2 = points[:, 0] ** 2 + points[:, 2] ** 2
        return (np.abs(y) <= self.half_height) & (rho2 <= r * r)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the exact bounds of the two cap circles; see :meth:`Part.bounds`."""
        axis = self.rotation[:, 1]
        spread = np.sqrt(np.clip(1.0 - axis * axis, 0.0, 1.0))  # circle reach per world axis
        lo, hi = [], []
        for sign, radius in ((1.0, self.radius_top), (-1.0, self.radius_bottom)):
            cap = self.centre + sign * self.half_height * axis
            lo.append(cap - radius * spread)
            hi.append(cap + radius * spread)
        return np.minimum(*lo), np.maximum(*hi)

    def thickness(self) -> float:
        """Return the smaller of largest diameter and height; see :meth:`Part.thickness`."""
        return 2.0 * min(max(self.radius_bottom, self.radius_top), self.half_height)

    def transformed(self, scale: float, offset: np.ndarray) -> Frustum:
        """See :meth:`Part.transformed`."""
        return replace(self, centre=self.centre * scale + offset,
                       radius_bottom=self.radius_bottom * scale,
                       radius_top=self.radius_top * scale,
                       half_height=self.half_height * scale)


@dataclass(frozen=True, eq=False)
class Ellipsoid(Part):
    """An ellipsoid with semi-axes ``radii`` along its local axes."""

    radii: np.ndarray = field(default_factory=lambda: np.full(3, 0.5))

    def intersect(self, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
        """Intersect as a unit sphere in scaled coordinates; see :meth:`Part.intersect`."""
        o = origin / self.radii
        d = dirs / self.radii
        a = (d * d).sum(axis=1)
        b = np.einsum('ij,j->i', d, o)
        c = float(o @ o) - 1.0
        disc = b * b - a * c
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        return np.where((disc >= 0.0) & (t > 0.0), t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        """Return the normalised gradient of the implicit function; see :meth:`Part.normal`."""
        grad = points / (self.radii * self.radii)
        return grad / np.linalg.norm(grad, axis=1, keepdims=True)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """See :meth:`Part.contains`."""
        return ((points / self.radii) ** 2).sum(axis=1) <= 1.0

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`Part.bounds`."""
        reach = np.sqrt(((self.rotation * self.radii) ** 2).sum(axis=1))
        return self.centre - reach, self.centre + reach

    def thickness(self) -> float:
        """See :meth:`Part.thickness`."""
        return 2.0 * float(self.radii.min())

    def transformed(self, scale: float, offset: np.ndarray) -> Ellipsoid:
        """See :meth:`Part.transformed`."""
        return replace(self, centre=self.centre * scale + offset, radii=self.radii * scale)
