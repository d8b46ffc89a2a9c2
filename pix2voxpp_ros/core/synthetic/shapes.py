"""Procedural object categories and the :class:`SyntheticObject` they build.

Every category is a function of a numpy Generator and a :class:`~.lattice.Lattice` that returns
primitives in a rough metric scale, in ShapeNet's canonical orientation: **y up, front towards
+z** (a chair's sitter, a car's bonnet, an airplane's nose look along +z; a mug's handle is on
+x). :func:`make_object` then scales the parts so that their largest extent is 1, the edge of the
32³ grid, and centres them, as ShapeNetVox32 grids fit their models. Instances differ in
proportions, part counts, part types and colours, all drawn from one Generator seeded per object,
so an object is a pure function of ``(category, seed)``.

Objects are **voxel-faithful**: built as a 32³ grid can hold them (or a 128³ grid, for the 128³
network: ``make_object(..., resolution=128)``), so that the ground-truth voxels and the
renderings agree (see :mod:`.lattice`). Axis-aligned parts have their faces on voxel
faces, thin parts (legs, poles, slats, plates, wings) are a whole number of voxels thick, round
parts under :data:`ROUND_MIN_VOXELS` wide are square posts, and the joints between parts are
built from the snapped faces, so nothing floats or overlaps by a fraction of a voxel. Parts that
are not axis-aligned (a tilted chair back, a swept wing, a mug's handle) are either at least two
voxels thick or turn only about the axis across which they are thin, so their thickness still
lies on voxel faces. Only decals lying on bigger parts (headlights, hub caps, labels, a drink's
surface) are thinner, and they are no part of the solid.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import Pix2VoxError
from .lattice import RESOLUTION, Lattice
from .primitives import Box, Ellipsoid, Frustum, Part

#: Round parts narrower than this many voxels are made square. A post up to three voxels wide
#: fills more than half of each voxel of its square column, so the grid holds it as that square,
#: whose silhouette is up to 1.41 times as wide as a round post's (1.27 on average over views).
ROUND_MIN_VOXELS = 4

#: The generator's varieties: ``classic`` (the styles every earlier dataset, the demo and the
#: shipped weights' evaluations were made of; an object of this variety never changes for its
#: seed) and ``wide`` (those styles and many more, with wider proportions, towards the variety
#: of real furniture, vehicles and containers: :mod:`.wide`).
VARIETIES = ('classic', 'wide')

Colour = tuple[float, float, float]
Span = tuple[float, float]


class UnknownCategoryError(Pix2VoxError, KeyError):
    """A category name or taxonomy id is not one of :data:`CATEGORIES`."""

    def __str__(self) -> str:
        """Show the message without KeyError's quotes."""
        return str(self.args[0]) if self.args else ''


@dataclass(frozen=True)
class Category:
    """A procedural category with a made-up ShapeNet-style taxonomy id."""

    name: str
    taxonomy_id: str
    build: Callable[[np.random.Generator, Lattice], list[Part]]


@dataclass(frozen=True, eq=False)
class SyntheticObject:
    """One object: its parts in the canonical frame, scaled to fill the unit grid cube.

    :ivar category: category name, a key of :data:`CATEGORIES`.
    :ivar seed: the seed the object was built from.
    :ivar parts: the primitives; the union of those that are no decals is the solid.
    :ivar variety: the generator's variety it was built in (:data:`VARIETIES`).
    """

    category: str
    seed: int
    parts: tuple[Part, ...]
    variety: str = 'classic'

    @property
    def taxonomy_id(self) -> str:
        """The category's 8-digit taxonomy id."""
        return CATEGORIES[self.category].taxonomy_id

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the axis-aligned bounds ``(lo (3,), hi (3,))`` of the solid (decals aside)."""
        return _union_bounds(self.parts)


# ---------------------------------------------------------------------------------------------
# Part helpers (sizes are full sizes, not half sizes; spans are (low, high) intervals)

def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == 'x':
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == 'y':
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# Rotations taking a frustum's local y axis to +x, +y and +z.
_ALONG = (_rot('z', -math.pi / 2), np.eye(3), _rot('x', math.pi / 2))


def _frame_y(direction: np.ndarray) -> np.ndarray:
    """Return a rotation whose local y axis is ``direction``."""
    y = np.asarray(direction, dtype=np.float64)
    y = y / np.linalg.norm(y)
    helper = np.array([1.0, 0.0, 0.0]) if abs(y[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    x = np.cross(y, helper)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


def _box(centre: Sequence[float], size: Sequence[float], colour: Colour,
         rotation: np.ndarray | None = None) -> Box:
    return Box(centre=np.asarray(centre, dtype=np.float64),
               rotation=np.eye(3) if rotation is None else rotation, colour=colour,
               half=0.5 * np.asarray(size, dtype=np.float64))


def _frustum(centre: Sequence[float], r_bottom: float, r_top: float, height: float,
             colour: Colour, rotation: np.ndarray | None = None) -> Frustum:
    return Frustum(centre=np.asarray(centre, dtype=np.float64),
                   rotation=np.eye(3) if rotation is None else rotation, colour=colour,
                   radius_bottom=float(r_bottom), radius_top=float(r_top),
                   half_height=0.5 * float(height))


def _rod(p0: Sequence[float], p1: Sequence[float], radius: float, colour: Colour) -> Frustum:
    """Make a cylinder from point ``p0`` to point ``p1``."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    axis = p1 - p0
    return _frustum(0.5 * (p0 + p1), radius, radius, float(np.linalg.norm(axis)), colour,
                    _frame_y(axis))


def _ellipsoid(centre: Sequence[float], radii: Sequence[float], colour: Colour,
               rotation: np.ndarray | None = None) -> Ellipsoid:
    return Ellipsoid(centre=np.asarray(centre, dtype=np.float64),
                     rotation=np.eye(3) if rotation is None else rotation, colour=colour,
                     radii=np.asarray(radii, dtype=np.float64))


def _sphere(centre: Sequence[float], radius: float, colour: Colour) -> Ellipsoid:
    return _ellipsoid(centre, (radius, radius, radius), colour)


def _decal(part: Part) -> Part:
    return replace(part, decal=True)


def _block(g: Lattice, xs: Span, ys: Span, zs: Span, colour: Colour) -> Box:
    """Make an axis-aligned box over three spans, its faces snapped to voxel faces."""
    lo, hi = np.transpose([g.span(a, b, axis) for axis, (a, b) in enumerate((xs, ys, zs))])
    return _box(0.5 * (lo + hi), hi - lo, colour)


def _round(g: Lattice, axis: int, spans: Sequence[Span], colour: Colour, *,
           taper: float = 1.0, square: bool = False) -> Part:
    """Make a round part along a world axis, inscribed in snapped spans; a box when thin.

    :param spans: the part's x, y and z intervals; the two across ``axis`` have the same width
        (from :meth:`Lattice.column` or :meth:`Lattice.around`).
    :param taper: radius at the high end of ``axis`` over radius at the low end.
    :param square: make a box whatever the width (square legs).
    """
    lo, hi = np.transpose([g.span(a, b, i) for i, (a, b) in enumerate(spans)])
    width = min(hi[i] - lo[i] for i in range(3) if i != axis)
    if square or width < (ROUND_MIN_VOXELS - 0.5) * g.voxel:
        return _box(0.5 * (lo + hi), hi - lo, colour)
    if hi[axis] - lo[axis] < (ROUND_MIN_VOXELS - 0.5) * g.voxel:
        taper = 1.0  # a disc: its few voxel layers cannot hold a slope
    r = 0.5 * width
    r_low, r_high = (r, r * taper) if taper <= 1.0 else (r / taper, r)
    return _frustum(0.5 * (lo + hi), r_low, r_high, hi[axis] - lo[axis], colour, _ALONG[axis])


def _column(g: Lattice, axis: int, centre: Sequence[float], length: Span, diameter: float
            ) -> list[Span]:
    """Spans of a round part along ``axis``: ``length`` along it, a snapped column across it."""
    spans = []
    for i in range(3):
        spans.append(length if i == axis else g.column(centre[i], diameter, i))
    return spans


def _inside(span: Span, inset: float, width: float, side: int) -> Span:
    """Return the span ``width`` wide, ``inset`` in from the high (+1) or low (-1) end."""
    if side > 0:
        return span[1] - inset - width, span[1] - inset
    return span[0] + inset, span[0] + inset + width


def _colour(rng: np.random.Generator, hue: tuple[float, float], sat: tuple[float, float],
            val: tuple[float, float]) -> Colour:
    """Draw an RGB albedo from HSV ranges (hue in turns; its range may wrap past 1)."""
    h = float(rng.uniform(*hue)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, float(rng.uniform(*sat)), float(rng.uniform(*val)))
    return (r, g, b)


def _wood(rng: np.random.Generator) -> Colour:
    return _colour(rng, (0.05, 0.11), (0.35, 0.75), (0.35, 0.85))


def _any_colour(rng: np.random.Generator) -> Colour:
    return _colour(rng, (0.0, 1.0), (0.2, 0.85), (0.35, 0.95))


def _grey(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.85) -> Colour:
    v = float(rng.uniform(lo, hi))
    return (v, v, v)


# ---------------------------------------------------------------------------------------------
# Categories. Rough metres; y up, front +z. Spans come from the lattice ``g`` so that parts
# meeting in the design meet on the same voxel face.

def _table(rng: np.random.Generator, g: Lattice) -> list[Part]:
    colour_top = _wood(rng) if rng.random() < 0.6 else _any_colour(rng)
    colour_legs = colour_top if rng.random() < 0.6 else _grey(rng, 0.1, 0.6)
    height = rng.uniform(0.45, 0.8)
    round_top = rng.random() < 0.3
    radius = rng.uniform(0.35, 0.7)
    width = rng.uniform(0.8, 1.9)
    depth = rng.uniform(0.45, 1.0)
    top_t = rng.uniform(0.025, 0.07)
    leg_w = rng.uniform(0.03, 0.08)
    round_legs = rng.random() < 0.4
    floor = g.plane(0.0, 'y')
    top_ys = g.span(height - top_t, height, 'y')
    under = top_ys[0]  # the legs' top
    parts: list[Part] = []
    if round_top:
        top = _column(g, 1, (0.0, 0.0, 0.0), top_ys, 2 * radius)
        parts.append(_round(g, 1, top, colour_top))
        if rng.random() < 0.5:  # pedestal on a foot disc, both on the top's axis
            col_d = 2 * rng.uniform(0.03, 0.09)
            base_d = 2 * rng.uniform(0.35, 0.7) * radius
            base_ys = g.span(floor, floor + rng.uniform(0.02, 0.05), 'y')
            parts.append(_round(g, 1, (g.around(base_d, top[0]), base_ys,
                                       g.around(base_d, top[2])), colour_legs))
            parts.append(_round(g, 1, (g.around(col_d, top[0]), (base_ys[1], under),
                                       g.around(col_d, top[2])), colour_legs))
        else:  # three or four upright legs under the rim
            n_legs = int(rng.integers(3, 5))
            spread = rng.uniform(0.55, 0.8) * radius
            phase = rng.uniform(0, 2 * math.pi)
            for k in range(n_legs):
                a = phase + 2 * math.pi * k / n_legs
                centre = (spread * math.cos(a), 0.0, spread * math.sin(a))
                parts.append(_round(g, 1, _column(g, 1, centre, (floor, under), leg_w),
                                    colour_legs))
        return parts
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    parts.append(_block(g, xs, top_ys, zs, colour_top))
    inset = g.length(rng.uniform(0.02, 0.12), least=0)
    lw = g.length(leg_w)
    # Between the legs' inner faces along x and z.
    x_in = (xs[0] + inset + lw, xs[1] - inset - lw)
    z_in = (zs[0] + inset + lw, zs[1] - inset - lw)
    if rng.random() < 0.2:  # trestle: two panels at the ends
        for sx in (-1, 1):
            parts.append(_block(g, _inside(xs, inset, lw, sx), (floor, under),
                                (zs[0] + inset, zs[1] - inset), colour_legs))
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(_round(g, 1, (_inside(xs, inset, lw, sx), (floor, under),
                                           _inside(zs, inset, lw, sz)),
                                    colour_legs, square=not round_legs))
    if rng.random() < 0.5:  # apron under the top, flush with the legs' outer faces
        apron_ys = (g.plane(under - rng.uniform(0.05, 0.12), 'y'), under)
        t = g.length(rng.uniform(0.015, 0.03))
        for side in (-1, 1):
            parts.append(_block(g, x_in, apron_ys, _inside(zs, inset, t, side), colour_top))
            parts.append(_block(g, _inside(xs, inset, t, side), apron_ys, z_in, colour_top))
    if rng.random() < 0.3:  # lower shelf between the legs
        shelf_y = rng.uniform(0.1, 0.3) * height
        shelf_t = max(top_t * 0.7, 0.02)
        parts.append(_block(g, x_in, (shelf_y - shelf_t / 2, shelf_y + shelf_t / 2), z_in,
                            colour_top))
    return parts


@dataclass(frozen=True)
class _Seat:
    """A chair's seat as its other parts attach to it (spans snapped, sizes in metres)."""

    xs: Span
    zs: Span
    ys: Span  # the seat board's bottom and top
    floor: float
    back_top: float
    width: float
    depth: float
    height: float
    leg: float  # leg width, a whole number of voxels
    colour: Colour
    frame_colour: Colour


def _chair(rng: np.random.Generator, g: Lattice) -> list[Part]:
    seat = _chair_seat(rng, g)
    parts: list[Part] = [_block(g, seat.xs, seat.ys, seat.zs, seat.colour)]
    style = rng.choice(['solid', 'solid', 'slats', 'frame'])
    inset = 0.0  # of the legs, and of the posts of slat and frame backs above the rear legs
    if rng.random() < 0.2:  # swivel chair: column and a four-arm base on castors
        parts += _swivel_base(rng, g, seat)
    else:
        inset = g.length(rng.uniform(0.0, 0.04), least=0)
        parts += _chair_legs(rng, g, seat, inset)
    back_front, back = _chair_back(rng, g, seat, style, inset)
    parts += back
    if rng.random() < 0.35:  # armrests on posts, flush with the seat's sides
        parts += _armrests(rng, g, seat, back_front)
    return parts


def _chair_seat(rng: np.random.Generator, g: Lattice) -> _Seat:
    colour_seat = _any_colour(rng) if rng.random() < 0.5 else _wood(rng)
    colour_frame = colour_seat if rng.random() < 0.5 else _wood(rng)
    seat_w = rng.uniform(0.4, 0.6)
    seat_d = rng.uniform(0.38, 0.58)
    seat_h = rng.uniform(0.38, 0.5)
    seat_t = rng.uniform(0.03, 0.09)
    back_h = rng.uniform(0.3, 0.6)
    xs, zs = g.span(-seat_w / 2, seat_w / 2, 'x'), g.span(-seat_d / 2, seat_d / 2, 'z')
    return _Seat(xs=xs, zs=zs, ys=g.span(seat_h - seat_t, seat_h, 'y'), floor=g.plane(0.0, 'y'),
                 back_top=g.plane(seat_h + back_h, 'y'), width=seat_w, depth=seat_d,
                 height=seat_h, leg=g.length(rng.uniform(0.025, 0.05)), colour=colour_seat,
                 frame_colour=colour_frame)


def _swivel_base(rng: np.random.Generator, g: Lattice, seat: _Seat) -> list[Part]:
    """Make the column under the seat and a four-arm base, a castor under each arm's tip."""
    col_d = 2 * rng.uniform(0.025, 0.045)
    reach = rng.uniform(0.25, 0.33)
    arm_w = rng.uniform(0.03, 0.045)
    castor = g.span(seat.floor, seat.floor + rng.uniform(0.03, 0.05), 'y')
    arm_ys = g.span(castor[1], castor[1] + arm_w, 'y')
    col = (g.column(0.0, col_d, 'x'), g.column(0.0, col_d, 'z'))
    parts = [_round(g, 1, (col[0], (arm_ys[1], seat.ys[0]), col[1]), seat.frame_colour)]
    wheel = _grey(rng, 0.05, 0.3)
    across = (g.around(arm_w, col[0]), g.around(arm_w, col[1]))
    for axis in (0, 2):
        mid = 0.5 * sum(col[axis // 2])
        for sign in (-1, 1):
            tip = g.plane(mid + sign * reach, axis)
            spans: list[Span] = [across[0], arm_ys, across[1]]
            spans[axis] = (min(mid, tip), max(mid, tip))
            parts.append(_block(g, *spans, seat.frame_colour))
            foot = list(spans)
            foot[1] = castor
            foot[axis] = _inside(spans[axis], 0.0, across[axis // 2][1]
                                 - across[axis // 2][0], sign)
            parts.append(_block(g, *foot, wheel))
    return parts


def _chair_legs(rng: np.random.Generator, g: Lattice, seat: _Seat, inset: float
                ) -> list[Part]:
    """Make four legs ``inset`` in from the seat's corners, sometimes with side stretchers."""
    xs, zs, lw = seat.xs, seat.zs, seat.leg
    round_legs = rng.random() < 0.5
    parts: list[Part] = []
    for sx in (-1, 1):
        for sz in (-1, 1):
            parts.append(_round(g, 1, (_inside(xs, inset, lw, sx), (seat.floor, seat.ys[0]),
                                       _inside(zs, inset, lw, sz)),
                                seat.frame_colour, square=not round_legs))
    if rng.random() < 0.35:  # stretchers between the front and the rear legs
        y = rng.uniform(0.1, 0.25)
        for sx in (-1, 1):
            parts.append(_block(g, _inside(xs, inset, lw, sx), g.span(y, y + 0.02, 'y'),
                                (zs[0] + inset + lw, zs[1] - inset - lw), seat.frame_colour))
    return parts


def _chair_back(rng: np.random.Generator, g: Lattice, seat: _Seat, style: str, inset: float
                ) -> tuple[float, list[Part]]:
    """Return the back's front face (z) and its parts: solid (maybe tilted), slats or frame."""
    back_t = rng.uniform(0.025, 0.06)
    tilt = math.radians(rng.uniform(4.0, 14.0)) if rng.random() < 0.5 else 0.0
    if style == 'solid':
        return _solid_back(rng, g, seat, back_t, tilt)
    xs, zs, lw, top = seat.xs, seat.zs, seat.leg, seat.back_top
    z_rear = _inside(zs, inset, lw, -1)
    x_in = (xs[0] + inset + lw, xs[1] - inset - lw)  # between the posts
    parts: list[Part] = []
    for sx in (-1, 1):  # posts over the rear legs
        parts.append(_block(g, _inside(xs, inset, lw, sx), (seat.ys[1], top), z_rear,
                            seat.frame_colour))
    rail_ys = (g.plane(top - rng.uniform(0.05, 0.12), 'y'), top)
    parts.append(_block(g, x_in, rail_ys, z_rear, seat.frame_colour))
    if style == 'slats':
        n = int(rng.integers(2, 6))
        slat_w = rng.uniform(0.02, 0.05)
        slat_zs = g.around(0.6 * (z_rear[1] - z_rear[0]), z_rear)
        for k in range(n):
            x = x_in[0] + (k + 1) / (n + 1) * (x_in[1] - x_in[0])
            parts.append(_block(g, g.column(x, slat_w, 'x'), (seat.ys[1], rail_ys[0]),
                                slat_zs, seat.frame_colour))
    else:
        mid = seat.ys[1] + (top - seat.ys[1]) * rng.uniform(0.3, 0.55)
        mid_t = 0.7 * (rail_ys[1] - rail_ys[0])
        parts.append(_block(g, x_in, g.span(mid, mid + mid_t, 'y'), z_rear, seat.frame_colour))
    return z_rear[1], parts


def _solid_back(rng: np.random.Generator, g: Lattice, seat: _Seat, back_t: float, tilt: float
                ) -> tuple[float, list[Part]]:
    """Return the front face (z) and the board of a solid back, upright or tilted by ``tilt``."""
    zs, bottom, top = seat.zs, seat.ys[0], seat.back_top
    half_w = 0.5 * seat.width * rng.uniform(0.85, 1.0)
    back_xs = g.span(-half_w, half_w, 'x')
    if tilt == 0.0:
        back_zs = (zs[0], zs[0] + g.length(back_t))
        return back_zs[1], [_block(g, back_xs, (bottom, top), back_zs, seat.colour)]
    # Leaning backwards (towards -z) about the seat's rear edge; it turns about x only, so its
    # width stays on voxel faces, and it is two voxels thick at least, so that its voxels hold
    # it without a voxel column on either side.
    t = g.length(back_t, least=2)
    up = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    # Its top front edge, the highest, on the voxel face back_top.
    length = (top - bottom - 0.5 * t * math.sin(tilt)) / math.cos(tilt)
    centre = np.array([0.5 * (back_xs[0] + back_xs[1]), bottom, zs[0] + t / 2])
    board = _box(centre + up * length / 2, (back_xs[1] - back_xs[0], length, t), seat.colour,
                 _rot('x', -tilt))
    return g.plane(zs[0] + t, 'z'), [board]


def _armrests(rng: np.random.Generator, g: Lattice, seat: _Seat, back_front: float
              ) -> list[Part]:
    """Make two armrests from the back forward, each on a post standing on the seat."""
    xs, zs = seat.xs, seat.zs
    arm_y = seat.height + rng.uniform(0.16, 0.26)
    arm_w = g.length(rng.uniform(0.03, 0.07))
    arm_ys = g.span(arm_y, arm_y + 0.03, 'y')
    arm_zs = (back_front, g.plane(zs[1] - 0.1 * seat.depth, 'z'))
    post_zs = g.column(zs[1] - 0.2 * seat.depth, 0.7 * arm_w, 'z')
    parts: list[Part] = []
    for sx in (-1, 1):
        arm_xs = _inside(xs, 0.0, arm_w, sx)
        parts.append(_block(g, arm_xs, arm_ys, arm_zs, seat.frame_colour))
        parts.append(_block(g, g.around(0.7 * arm_w, arm_xs), (seat.ys[1], arm_ys[0]),
                            post_zs, seat.frame_colour))
    return parts


def _lamp(rng: np.random.Generator, g: Lattice) -> list[Part]:
    metal = _grey(rng, 0.2, 0.8) if rng.random() < 0.6 else _any_colour(rng)
    shade_colour = _colour(rng, (0.05, 0.16), (0.1, 0.5), (0.75, 1.0)) \
        if rng.random() < 0.6 else _any_colour(rng)
    floor_lamp = rng.random() < 0.45
    height = rng.uniform(1.2, 1.7) if floor_lamp else rng.uniform(0.35, 0.6)
    base_r = rng.uniform(0.12, 0.2) if floor_lamp else rng.uniform(0.07, 0.12)
    base_ys = g.span(0.0, rng.uniform(0.02, 0.05), 'y')
    pole_d = rng.uniform(0.016, 0.04) * (1.5 if floor_lamp else 1.0)
    shade_h = rng.uniform(0.15, 0.3) if floor_lamp else rng.uniform(0.1, 0.18)
    shade_rb = shade_h * rng.uniform(0.7, 1.4)
    shade_rt = shade_rb * rng.uniform(0.35, 0.9)
    # A square post two voxels wide at least: the pole is much of a lamp's silhouette, and a
    # one-voxel post (two pixels in R2N2's views) is where voxels and renderings differ most.
    # Base and shade share its axis.
    pole_d = max(pole_d, 2 * g.voxel)
    pole = (g.column(0.0, pole_d, 'x'), g.column(0.0, pole_d, 'z'))
    parts: list[Part] = []
    if rng.random() < 0.7:
        d = 2 * base_r
        parts.append(_round(g, 1, (g.around(d, pole[0]), base_ys, g.around(d, pole[1])),
                            metal))
    else:
        parts.append(_block(g, g.around(2 * base_r, pole[0]), base_ys,
                            g.around(1.6 * base_r, pole[1]), metal))
    if floor_lamp or rng.random() < 0.4:  # straight pole, shade on top
        shade_ys = g.span(height - shade_h, height, 'y')
        parts.append(_block(g, pole[0], (base_ys[1], shade_ys[0]), pole[1], metal))
        d = 2 * shade_rb
        parts.append(_round(g, 1, (g.around(d, pole[0]), shade_ys,
                                   g.around(d, pole[1])), shade_colour,
                            taper=shade_rt / shade_rb))
    else:  # desk lamp: a post, a knuckle, an arm reaching forward and a shade hanging from it
        arm_ys = g.span(height - pole_d, height, 'y')
        reach = height * rng.uniform(0.25, 0.55)
        # The shade's front, the lamp's end, on the voxel face nearest to where it was unsnapped.
        front = g.plane(reach + 0.8 * shade_rb, 'z')
        head = g.around(1.6 * shade_rb, pole[0])
        head_zs = (front - (head[1] - head[0]), front)
        parts.append(_block(g, pole[0], (base_ys[1], arm_ys[0]), pole[1], metal))
        knuckle = 2.2 * pole_d
        parts.append(_block(g, g.around(knuckle, pole[0]),
                            g.span(arm_ys[1] - knuckle, arm_ys[1], 'y'),
                            g.around(knuckle, pole[1]), metal))
        parts.append(_block(g, pole[0], arm_ys, (pole[1][1], g.plane(0.5 * sum(head_zs), 'z')),
                            metal))
        shade_ys = (g.plane(arm_ys[0] - shade_h, 'y'), arm_ys[0])
        parts.append(_round(g, 1, (head, shade_ys, head_zs), shade_colour,
                            taper=rng.uniform(0.35, 0.75)))
    return parts


@dataclass(frozen=True)
class _Fuselage:
    """An airplane's fuselage as the wings and the tail attach to it."""

    axis: np.ndarray  # (3,) a point on its axis; x and y of the axis
    radius: float
    z_mid: float  # centre of the cylinder section, unsnapped
    tail_z: float  # end of the tail, unsnapped
    tail_end: np.ndarray  # (3,) centre of the tail cone's end
    tail_r: float
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class _Wings:
    """The main wings' plane and sweep, where the engines hang and the tail follows."""

    span: float
    chord: float
    thickness: float
    sweep: float  # radians
    ys: Span
    z: float
    parts: tuple[Part, ...]


def _airplane(rng: np.random.Generator, g: Lattice) -> list[Part]:
    body = _grey(rng, 0.6, 0.95) if rng.random() < 0.6 else _any_colour(rng)
    accent = _any_colour(rng) if rng.random() < 0.5 else body
    length = 1.0
    hull = _fuselage(rng, g, length, body)
    wings = _main_wings(rng, g, hull, length, accent)
    return [*hull.parts, *wings.parts, *_engines(rng, g, hull, wings),
            *_tail_planes(rng, g, hull, wings, length, accent)]


def _fuselage(rng: np.random.Generator, g: Lattice, length: float, body: Colour) -> _Fuselage:
    """Make the cylinder, nose and tail cone along z, the cylinder's ends on voxel faces."""
    radius = rng.uniform(0.045, 0.08)
    nose_len = rng.uniform(0.06, 0.15)
    tail_len = rng.uniform(0.15, 0.3)
    mid_len = length - nose_len - tail_len
    z_mid = (tail_len - nose_len) / 2  # centre of the cylinder section
    # Round: at least ROUND_MIN_VOXELS wide; an even width, so that x = 0 is its axis.
    radius = max(radius, 0.5 * ROUND_MIN_VOXELS * g.voxel)
    xs = g.around(2 * radius, (0.0, 0.0))
    ys = g.column(0.0, 2 * radius, 'y', parity=0)
    zs = g.span(z_mid - mid_len / 2, z_mid + mid_len / 2, 'z')
    # Nose tip and tail end on voxel faces too; the parts that are not snapped are placed from
    # unsnapped values, so that the ends of the plane stay inside the grid it was fitted to.
    tail_z = z_mid - mid_len / 2 - tail_len  # unsnapped
    nose_len = g.plane(z_mid + mid_len / 2 + nose_len, 'z') - zs[1]
    tail_len = zs[0] - g.plane(tail_z, 'z')
    axis = np.array([0.5 * (xs[0] + xs[1]), 0.5 * (ys[0] + ys[1]), 0.0])
    radius = 0.5 * (xs[1] - xs[0])
    parts: list[Part] = [
        _round(g, 2, (xs, ys, zs), body),
        _ellipsoid((axis[0], axis[1], zs[1]), (radius, radius, nose_len), body),
    ]
    tail_r = radius * rng.uniform(0.25, 0.5)
    tail_up = radius - tail_r  # the tail cone rises to the top line of the fuselage
    tail_start = axis + (0.0, 0.0, zs[0])
    tail_end = axis + (0.0, tail_up, zs[0] - tail_len)
    parts.append(_frustum(0.5 * (tail_start + tail_end), tail_r, radius, tail_len, body,
                          _frame_y(tail_start - tail_end)))
    return _Fuselage(axis, radius, z_mid, tail_z, tail_end, tail_r, tuple(parts))


def _main_wings(rng: np.random.Generator, g: Lattice, hull: _Fuselage, length: float,
                accent: Colour) -> _Wings:
    """Make a swept plate per side, hinged at the fuselage axis.

    Sweeping turns them about y only, so their thickness stays whole voxel layers (hence no
    dihedral).
    """
    axis, radius = hull.axis, hull.radius
    span = rng.uniform(0.7, 1.15) * length
    chord = rng.uniform(0.1, 0.22) * length
    wing_t = rng.uniform(0.02, 0.05)
    sweep = math.radians(rng.uniform(0.0, 35.0))
    wing_y = axis[1] + rng.choice([-0.6, 0.0, 0.6]) * radius
    wing_ys = g.span(wing_y - wing_t / 2, wing_y + wing_t / 2, 'y')
    wing_z = hull.z_mid + rng.uniform(-0.1, 0.12) * length
    semi = span / 2
    parts = tuple(_swept(axis[0], wing_ys, wing_z, semi, chord, side * sweep, side, accent)
                  for side in (-1, 1))
    return _Wings(span, chord, wing_t, sweep, wing_ys, wing_z, parts)


def _engines(rng: np.random.Generator, g: Lattice, hull: _Fuselage, wings: _Wings
             ) -> list[Part]:
    """Hang none, two or four engines under the wings, touching their lower face."""
    n_eng = int(rng.choice([0, 2, 2, 4]))
    eng_d = 2 * rng.uniform(0.03, 0.05)
    eng_len = rng.uniform(0.1, 0.18)
    semi, sweep = wings.span / 2, wings.sweep
    parts: list[Part] = []
    for k in range(n_eng // 2):
        frac = (0.35, 0.65)[k] if n_eng == 4 else rng.uniform(0.3, 0.45)
        grey = _grey(rng, 0.3, 0.7)
        for side in (-1, 1):
            x = hull.axis[0] + side * semi * frac * math.cos(sweep)
            z = wings.z - semi * frac * math.sin(sweep) + wings.chord * 0.15
            eng_xs = g.column(x, eng_d, 'x')
            eng_ys = (wings.ys[0] - (eng_xs[1] - eng_xs[0]), wings.ys[0])
            eng_zs = g.span(z - eng_len / 2, z + eng_len / 2, 'z')
            parts.append(_round(g, 2, (eng_xs, eng_ys, eng_zs), grey))
    return parts


def _tail_planes(rng: np.random.Generator, g: Lattice, hull: _Fuselage, wings: _Wings,
                 length: float, accent: Colour) -> list[Part]:
    """Make the stabilisers and the vertical fin, swept like the wings (sometimes a T-tail)."""
    axis, tail_z = hull.axis, hull.tail_z
    stab_span = rng.uniform(0.25, 0.45) * wings.span
    # Turned in their plane, the stabilisers are two voxels wide at least: a narrower strip at
    # an angle to the grid would fill a voxel on either side of it.
    stab_chord = max(rng.uniform(0.45, 0.8) * wings.chord, 2 * g.voxel)
    stab_t = wings.thickness * 0.8
    stab_z = tail_z + stab_chord * 0.6
    t_tail = rng.random() < 0.25
    fin_h = rng.uniform(0.1, 0.2) * length
    fin_chord = rng.uniform(0.12, 0.22) * length
    fin_sweep = math.radians(rng.uniform(15.0, 45.0))
    fin_rot = _rot('x', -fin_sweep)  # lean the fin's top backwards (towards -z), about x only
    fin_xs = g.span(axis[0] - stab_t / 2, axis[0] + stab_t / 2, 'x')
    fin_base = np.array([0.5 * (fin_xs[0] + fin_xs[1]), hull.tail_end[1] + hull.tail_r * 0.5,
                         tail_z + fin_chord * 0.55])
    fin_centre = fin_base + fin_rot @ np.array([0.0, fin_h / 2, 0.0])
    parts: list[Part] = [_box(fin_centre, (fin_xs[1] - fin_xs[0], fin_h, fin_chord), accent,
                              fin_rot)]
    fin_top = fin_base + fin_rot @ np.array([0.0, fin_h, 0.0])
    stab_y = fin_top[1] - stab_t / 2 if t_tail else hull.tail_end[1]
    stab_z = fin_top[2] if t_tail else stab_z
    stab_ys = g.span(stab_y - stab_t / 2, stab_y + stab_t / 2, 'y')
    for side in (-1, 1):
        parts.append(_swept(axis[0], stab_ys, stab_z, stab_span / 2, stab_chord,
                            side * wings.sweep * 0.8, side, accent))
    return parts


def _swept(x: float, ys: Span, z: float, semi: float, chord: float, angle: float, side: int,
           colour: Colour) -> Box:
    """Make a wing plate from the root ``(x, ys, z)`` out to one side, turned about y."""
    rot = _rot('y', angle)
    centre = np.array([x, 0.5 * (ys[0] + ys[1]), z]) + rot @ np.array([side * semi / 2, 0, 0])
    return _box(centre, (semi, ys[1] - ys[0], chord), colour, rot)


#: How far decals stand out of the part under them, in voxels: enough to win the depth test,
#: too little to reach a voxel's samples or a pixel.
_SLIVER = 1.0 / 16.0


def _car(rng: np.random.Generator, g: Lattice) -> list[Part]:
    paint = _any_colour(rng)
    glass = _colour(rng, (0.55, 0.65), (0.2, 0.5), (0.12, 0.3))
    tyre = _grey(rng, 0.05, 0.15)
    length = 1.0
    width = rng.uniform(0.38, 0.48) * length
    body_h = rng.uniform(0.14, 0.24) * length
    wheel_r = rng.uniform(0.07, 0.11) * length
    clearance = wheel_r * rng.uniform(0.5, 0.9)
    kind = rng.choice(['sedan', 'sedan', 'hatch', 'pickup', 'van'])
    floor = g.plane(0.0, 'y')
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-length / 2, length / 2, 'z')
    body_ys = g.span(clearance, clearance + body_h, 'y')
    parts: list[Part] = [_block(g, xs, body_ys, zs, paint)]
    cab_h = rng.uniform(0.12, 0.2) * length
    cab_w = width * rng.uniform(0.78, 0.92)
    if kind == 'van':
        cab_len, cab_z = length * rng.uniform(0.75, 0.85), -length * 0.06
        cab_h *= 1.4
    elif kind == 'pickup':
        cab_len, cab_z = length * rng.uniform(0.25, 0.32), length * rng.uniform(0.0, 0.1)
    elif kind == 'hatch':
        cab_len = length * rng.uniform(0.45, 0.55)
        cab_z = -length / 2 + cab_len / 2 + length * 0.05
    else:
        cab_len, cab_z = length * rng.uniform(0.4, 0.55), length * rng.uniform(-0.12, 0.02)
    # Glass band with a body-coloured roof slab on top, shorter than the band.
    cab_xs = g.span(-cab_w / 2, cab_w / 2, 'x')
    cab_zs = g.span(cab_z - cab_len / 2, cab_z + cab_len / 2, 'z')
    roof_ys = g.span(body_ys[1] + cab_h * 0.8, body_ys[1] + cab_h, 'y')
    roof_len = cab_len * rng.uniform(0.8, 1.0)
    parts.append(_block(g, cab_xs, (body_ys[1], roof_ys[0]), cab_zs, glass))
    parts.append(_block(g, cab_xs, roof_ys, (cab_z - roof_len / 2, cab_z + roof_len / 2),
                        paint))
    if kind == 'pickup':  # bed walls behind the cab
        wall = g.length(0.02)
        wall_ys = g.span(body_ys[1], body_ys[1] + body_h * 0.35, 'y')
        for sx in (-1, 1):
            parts.append(_block(g, _inside(xs, 0.0, wall, sx), wall_ys, (zs[0], cab_zs[0]),
                                paint))
        parts.append(_block(g, xs, wall_ys, (zs[0], zs[0] + wall), paint))
    if kind == 'sedan' and rng.random() < 0.25:
        parts += _spoiler(g, width, body_ys[1], zs, paint)
    wheel_w = rng.uniform(0.05, 0.09) * length
    axle = length * rng.uniform(0.28, 0.36)
    hub = _grey(rng, 0.55, 0.9)
    parts += _wheels(g, xs, floor, wheel_r, wheel_w, (-axle, axle), tyre, hub)
    lamp = (1.0, 0.95, 0.7)
    y = body_ys[0] + 0.7 * (body_ys[1] - body_ys[0])
    for sx in (-1, 1):  # headlights on the front face
        parts.append(_decal(_box((sx * width * 0.32, y, zs[1] - 0.002 + _SLIVER * g.voxel / 2),
                                 (width * 0.18, body_h * 0.18, 0.004 + _SLIVER * g.voxel),
                                 lamp)))
    return parts


def _spoiler(g: Lattice, width: float, body_top: float, zs: Span, colour: Colour
             ) -> list[Part]:
    """Make a rear spoiler on two posts over the body's rear end."""
    wing_ys = g.span(body_top + 0.03, body_top + 0.05, 'y')
    wing_zs = g.span(zs[0] + 0.01, zs[0] + 0.07, 'z')
    parts: list[Part] = [_block(g, (-0.45 * width, 0.45 * width), wing_ys, wing_zs, colour)]
    for sx in (-1, 1):
        parts.append(_block(g, g.column(sx * width * 0.3, 0.02, 'x'), (body_top, wing_ys[0]),
                            g.around(0.02, wing_zs), colour))
    return parts


def _wheels(g: Lattice, xs: Span, floor: float, wheel_r: float, wheel_w: float,
            axles: Sequence[float], tyre: Colour, hub: Colour) -> list[Part]:
    """Make a wheel at both ends of each axle (its z), hub caps as decals on them.

    Wheels stand out of the body's sides ``xs`` by a voxel or more, so tyre and paint never
    share a face.
    """
    out = g.length(0.15 * wheel_w)
    ww = max(g.length(wheel_w), out + g.voxel)
    parts: list[Part] = []
    for z in axles:
        wheel_zs = g.column(z, 2 * wheel_r, 'z')
        wheel_ys = (floor, floor + wheel_zs[1] - wheel_zs[0])
        r = 0.5 * (wheel_zs[1] - wheel_zs[0])
        for sx in (-1, 1):
            wheel_xs = _inside((xs[0] - out, xs[1] + out), 0.0, ww, sx)
            parts.append(_round(g, 0, (wheel_xs, wheel_ys, wheel_zs), tyre))
            face = wheel_xs[1] if sx > 0 else wheel_xs[0]
            parts.append(_decal(_frustum((face - sx * (ww / 4 - _SLIVER * g.voxel / 2),
                                          floor + r, 0.5 * sum(wheel_zs)), 0.5 * r, 0.5 * r,
                                         ww / 2 + _SLIVER * g.voxel, hub, _ALONG[0])))
    return parts


def _mug(rng: np.random.Generator, g: Lattice) -> list[Part]:
    colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.7, 0.95)
    height = 1.0
    r_bottom = rng.uniform(0.32, 0.47) * height
    r_top = r_bottom * rng.uniform(0.95, 1.2)
    body = _column(g, 1, (0.0, 0.0, 0.0), g.span(0.0, height, 'y'), 2 * max(r_bottom, r_top))
    parts: list[Part] = [_round(g, 1, body, colour, taper=r_top / r_bottom)]
    # The snapped radii and axis.
    scale = 0.5 * (body[0][1] - body[0][0]) / max(r_bottom, r_top)
    r_bottom, r_top = r_bottom * scale, r_top * scale
    x0, z0, top = 0.5 * sum(body[0]), 0.5 * sum(body[2]), body[1][1]
    # Drink surface just below the rim: a dark disc standing a sliver out of the top.
    drink = _colour(rng, (0.03, 0.08), (0.5, 0.9), (0.12, 0.35)) \
        if rng.random() < 0.6 else _grey(rng, 0.2, 0.5)
    wall = max(r_top * 0.08, g.voxel)
    parts.append(_decal(_frustum((x0, top - 0.002, z0), r_top - wall, r_top - wall,
                                 0.004 + 2 * _SLIVER * g.voxel, drink)))
    # Handle: a chain of rods along half an ellipse on the +x side, spheres at the joints; two
    # voxels thick at least, so that its voxels follow the curve without a voxel on each side.
    tube = max(rng.uniform(0.035, 0.06) * height, g.voxel)
    reach = rng.uniform(0.18, 0.3) * height
    half_h = rng.uniform(0.22, 0.32) * height
    centre_y = height * rng.uniform(0.45, 0.55)
    # The handle's outer end on a voxel face, where the unsnapped mug would have it.
    x_wall = x0 + (r_bottom + r_top) / 2 - tube
    reach = g.plane(0.5 * (r_bottom + r_top) / scale + reach, 'x') - tube - x_wall
    n = 6
    pts = []
    for k in range(n + 1):
        a = -math.pi / 2 + math.pi * k / n
        pts.append(np.array([x_wall + reach * math.cos(a), centre_y + half_h * math.sin(a), z0]))
    for k in range(n):
        parts.append(_rod(pts[k], pts[k + 1], tube, colour))
        if 0 < k:
            parts.append(_sphere(pts[k], tube, colour))
    return parts


def _bottle(rng: np.random.Generator, g: Lattice) -> list[Part]:
    glass = rng.choice(['green', 'brown', 'blue', 'clear', 'plastic'])
    colour = {
        'green': _colour(rng, (0.28, 0.4), (0.5, 0.9), (0.25, 0.6)),
        'brown': _colour(rng, (0.05, 0.1), (0.6, 0.95), (0.25, 0.55)),
        'blue': _colour(rng, (0.55, 0.65), (0.4, 0.9), (0.4, 0.85)),
        'clear': _colour(rng, (0.45, 0.55), (0.05, 0.2), (0.75, 0.95)),
        'plastic': _any_colour(rng),
    }[glass]
    height = 1.0
    radius = rng.uniform(0.12, 0.22) * height
    body_h = rng.uniform(0.45, 0.68) * height
    neck_r = radius * rng.uniform(0.25, 0.45)
    shoulder_h = rng.uniform(0.06, 0.2) * height
    cap_h = rng.uniform(0.04, 0.08) * height
    square = rng.random() < 0.2
    # Body, shoulder, neck and cap share one axis and meet on voxel faces.
    body_ys = g.span(0.0, body_h, 'y')
    shoulder_top = g.plane(body_h + shoulder_h, 'y')
    cap_ys = g.span(height - cap_h, height, 'y')
    axis = (g.column(0.0, 2 * radius, 'x'), g.column(0.0, 2 * radius, 'z'))
    x0, z0 = 0.5 * sum(axis[0]), 0.5 * sum(axis[1])
    body_w = axis[0][1] - axis[0][0]
    body_zs = g.around(body_w * 0.8, axis[1]) if square else axis[1]
    parts: list[Part] = [_round(g, 1, (axis[0], body_ys, body_zs), colour, square=square)]
    neck = (g.around(2 * neck_r, axis[0]), g.around(2 * neck_r, axis[1]))
    neck_w = neck[0][1] - neck[0][0]
    if rng.random() >= 0.5 and not square:  # a dome over the body, up to the shoulder's top
        parts.append(_ellipsoid((x0, body_ys[1], z0),
                                (body_w / 2, 1.05 * (shoulder_top - body_ys[1]), body_w / 2),
                                colour))
    else:
        w = 0.85 * body_w if square else body_w
        shoulder = (g.around(w, axis[0]), g.around(w, axis[1]))
        parts.append(_round(g, 1, (shoulder[0], (body_ys[1], shoulder_top), shoulder[1]),
                            colour, taper=neck_w / (shoulder[0][1] - shoulder[0][0])))
    parts.append(_round(g, 1, (neck[0], (shoulder_top, cap_ys[0]), neck[1]), colour))
    cap_colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.6, 0.9)
    cap_w = neck_w * rng.uniform(1.05, 1.3)
    parts.append(_round(g, 1, (g.around(cap_w, neck[0]), cap_ys,
                               g.around(cap_w, neck[1])), cap_colour))
    if rng.random() < 0.7 and not square:  # label band, a decal round the body
        label_h = body_h * rng.uniform(0.3, 0.6)
        label_y = body_h * rng.uniform(0.4, 0.55)
        r = body_w / 2 + _SLIVER * g.voxel
        parts.append(_decal(_frustum((x0, label_y, z0), r, r, label_h, _any_colour(rng))))
    return parts


def _sofa(rng: np.random.Generator, g: Lattice) -> list[Part]:
    fabric = _any_colour(rng)
    cushion = fabric if rng.random() < 0.5 else _any_colour(rng)
    width = rng.uniform(1.3, 2.4)
    depth = rng.uniform(0.75, 1.0)
    leg_h = rng.uniform(0.0, 0.12)
    seat_h = rng.uniform(0.38, 0.48)
    back_h = rng.uniform(0.7, 0.95)
    back_t = rng.uniform(0.12, 0.25)
    arm_w = rng.uniform(0.08, 0.25) if rng.random() < 0.85 else 0.0
    arm_h = rng.uniform(0.5, 0.7)
    cushion_t = rng.uniform(0.06, 0.12)
    floor = g.plane(0.0, 'y')
    legs = leg_h > 0.02
    bottom = g.span(floor, leg_h, 'y')[1] if legs else floor
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    base_top = g.plane(seat_h - cushion_t, 'y')
    seat_top = g.span(base_top, seat_h, 'y')[1]
    back_zs = (zs[0], g.plane(zs[0] + back_t, 'z'))
    parts: list[Part] = [
        _block(g, xs, (bottom, base_top), zs, fabric),
        _block(g, xs, (bottom, g.plane(back_h, 'y')), back_zs, fabric),
    ]
    inner = xs
    if arm_w > 0:
        aw = g.length(arm_w)
        inner = (xs[0] + aw, xs[1] - aw)
        arm_ys = (bottom, g.plane(arm_h, 'y'))
        parts.append(_block(g, (xs[0], inner[0]), arm_ys, zs, fabric))
        parts.append(_block(g, (inner[1], xs[1]), arm_ys, zs, fabric))
    # Seat cushions, a one-voxel seam between neighbours.
    n_cushions = int(rng.integers(1, 4))
    seam = g.voxel
    cw = (inner[1] - inner[0] - seam * (n_cushions - 1)) / n_cushions
    cushion_xs = []
    for k in range(n_cushions):
        x0 = inner[0] if k == 0 else g.plane(inner[0] + k * (cw + seam), 'x')
        x1 = inner[1] if k == n_cushions - 1 else g.plane(inner[0] + k * (cw + seam) + cw, 'x')
        cushion_xs.append((x0, x1))
        parts.append(_block(g, (x0, x1), (base_top, seat_top), (back_zs[1], zs[1]), cushion))
        if rng.random() < 0.5:  # back cushion leaning back (about x), two voxels thick at least
            c = (0.5 * (x0 + x1), seat_h + (back_h - seat_h) * 0.45, back_zs[1] + back_t * 0.3)
            parts.append(_box(c, (x1 - x0, (back_h - seat_h) * 0.75,
                                  max(back_t * 0.8, 2 * g.voxel)), cushion, _rot('x', -0.12)))
    if legs:
        leg_c = _grey(rng, 0.05, 0.5) if rng.random() < 0.5 else _wood(rng)
        leg_d = 2 * rng.uniform(0.02, 0.04)
        for sx in (-1, 1):
            for sz in (-1, 1):
                centre = (sx * (width / 2 - 0.06), 0.0, sz * (depth / 2 - 0.06))
                parts.append(_round(g, 1, _column(g, 1, centre, (floor, bottom), leg_d), leg_c))
    if rng.random() < 0.15 and arm_w > 0:  # chaise: one seat extends forward
        sx = int(rng.choice([-1, 1]))
        ext = g.plane(zs[1] + rng.uniform(0.4, 0.7), 'z')
        cxs = cushion_xs[-1] if sx > 0 else cushion_xs[0]
        parts.append(_block(g, cxs, (bottom, base_top), (zs[1], ext), fabric))
        parts.append(_block(g, cxs, (base_top, seat_top), (zs[1], ext), cushion))
    return parts


#: The categories, by name. Taxonomy ids are made up (ShapeNet's real ids start with 0).
CATEGORIES: dict[str, Category] = {c.name: c for c in (
    Category('table', '90000001', _table),
    Category('chair', '90000002', _chair),
    Category('lamp', '90000003', _lamp),
    Category('airplane', '90000004', _airplane),
    Category('car', '90000005', _car),
    Category('mug', '90000006', _mug),
    Category('bottle', '90000007', _bottle),
    Category('sofa', '90000008', _sofa),
)}


def category(name_or_id: str) -> Category:
    """Look a category up by name (``'chair'``) or taxonomy id (``'90000002'``).

    :raises UnknownCategoryError: no such category.
    """
    if name_or_id in CATEGORIES:
        return CATEGORIES[name_or_id]
    for cat in CATEGORIES.values():
        if cat.taxonomy_id == name_or_id:
            return cat
    raise UnknownCategoryError(f'unknown category {name_or_id!r}; known: '
                               f'{", ".join(CATEGORIES)}')


def _union_bounds(parts: Sequence[Part]) -> tuple[np.ndarray, np.ndarray]:
    lows, highs = zip(*(p.bounds() for p in parts if not p.decal))
    return np.min(lows, axis=0), np.max(highs, axis=0)


def make_object(name: str, *, seed: int, resolution: int = RESOLUTION,
                variety: str = 'classic') -> SyntheticObject:
    """Build one object of a category, centred and scaled so its largest extent is 1.

    The category builds the object twice from the same draws: a sizing pass gives its bounds,
    hence the :class:`~.lattice.Lattice` that fits it into the grid, and the second pass snaps
    its parts to that lattice (see :mod:`.lattice`). The bounds of the result lie on voxel
    faces, centred to within half a voxel.

    :param name: category name or taxonomy id.
    :param seed: non-negative seed; the object is a pure function of
        ``(category, seed, resolution)``.
    :param resolution: the grid the object is built faithful to (32, ShapeNetVox32's; or 128
        for the 128³ network): the same draws, its parts snapped to that grid's voxel faces, so
        a 128³ object has thinner legs and finer steps than the 32³ one of the same seed.
    :param variety: one of :data:`VARIETIES`. A ``wide`` object draws from its own generator,
        so it is no ``classic`` object of the same seed even when it takes a classic style.
    :raises UnknownCategoryError: unknown category.
    :raises ValueError: negative seed, a resolution below 1 or an unknown variety.
    """
    cat = category(name)
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    if resolution < 1:
        raise ValueError(f'resolution must be at least 1, got {resolution}')
    if variety not in VARIETIES:
        raise ValueError(f'unknown variety {variety!r}; known: {", ".join(VARIETIES)}')
    draws = [int(seed), int(cat.taxonomy_id)]
    build = cat.build
    if variety == 'wide':
        # Imported here: the wide builders are made of this module's part helpers.
        from .wide import WIDE_BUILDERS
        draws.append(1)
        build = WIDE_BUILDERS[cat.name]
    lattice = Lattice()
    for attempt in range(_FITS):
        parts = build(np.random.default_rng(draws), lattice)
        lo, hi = _union_bounds(parts)
        if lattice.active and (np.abs(lattice.to_grid([lo, hi])) <= 0.5 + 1e-9).all():
            break
        # After the sizing pass, or when snapping moved a part that is not snapped itself (a
        # tilted back) out of the grid: fit the grid to what was built, with a margin of half a
        # voxel per refit, and build again.
        pad = 0.5 * attempt * lattice.voxel
        lattice = Lattice.fit(lo - pad, hi + pad, resolution=resolution)
    else:
        raise RuntimeError(f'{cat.name} {seed} does not fit its grid after {_FITS} builds')
    offset = np.asarray(lattice.offset)
    return SyntheticObject(cat.name, int(seed),
                           tuple(p.transformed(lattice.scale, offset) for p in parts),
                           variety)


#: Builds of one object at most: the sizing pass, the snapped build and refits.
_FITS = 5
