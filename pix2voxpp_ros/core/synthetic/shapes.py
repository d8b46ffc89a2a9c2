"""Procedural object categories and the :class:`SyntheticObject` they build.

Every category is a function of a numpy Generator that returns primitives in a rough metric scale,
in ShapeNet's canonical orientation: **y up, front towards +z** (a chair's sitter, a car's bonnet,
an airplane's nose look along +z; a mug's handle is on +x). :func:`make_object` then centres the
parts' bounding box on the origin and scales its largest extent to 1, the edge of the 32³ grid, as
ShapeNetVox32 grids fit their models. Instances differ in proportions, part counts, part types and
colours, all drawn from one Generator seeded per object, so an object is a pure function of
``(category, seed)``.

Structural parts (legs, rods, plates, wings) are at least :data:`MIN_THICKNESS` (about half a
voxel) thick after normalisation, so each shows up both in the renderings and in the 32³ grid;
only decals lying on bigger parts (headlights, hub caps, a drink's surface) are thinner.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .primitives import Box, Ellipsoid, Frustum, Part

#: Smallest part thickness after normalisation, in grid edges (0.56 voxel at 32³).
MIN_THICKNESS = 0.0175

Colour = tuple[float, float, float]


class UnknownCategoryError(KeyError):
    """A category name or taxonomy id is not one of :data:`CATEGORIES`."""

    def __str__(self) -> str:
        """Show the message without KeyError's quotes."""
        return str(self.args[0]) if self.args else ''


@dataclass(frozen=True)
class Category:
    """A procedural category with a made-up ShapeNet-style taxonomy id."""

    name: str
    taxonomy_id: str
    build: Callable[[np.random.Generator], list[Part]]


@dataclass(frozen=True, eq=False)
class SyntheticObject:
    """One object: its parts in the canonical frame, scaled to fill the unit grid cube.

    :ivar category: category name, a key of :data:`CATEGORIES`.
    :ivar seed: the seed the object was built from.
    :ivar parts: the primitives; their union is the solid.
    """

    category: str
    seed: int
    parts: tuple[Part, ...]

    @property
    def taxonomy_id(self) -> str:
        """The category's 8-digit taxonomy id."""
        return CATEGORIES[self.category].taxonomy_id

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the axis-aligned bounds ``(lo (3,), hi (3,))`` of all parts."""
        return _union_bounds(self.parts)


# ---------------------------------------------------------------------------------------------
# Part helpers (sizes are full sizes, not half sizes)

def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == 'x':
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == 'y':
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


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


def _cylinder(centre: Sequence[float], radius: float, height: float, colour: Colour,
              rotation: np.ndarray | None = None) -> Frustum:
    return _frustum(centre, radius, radius, height, colour, rotation)


def _rod(p0: Sequence[float], p1: Sequence[float], radius: float, colour: Colour) -> Frustum:
    """Make a cylinder from point ``p0`` to point ``p1``."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    axis = p1 - p0
    return _cylinder(0.5 * (p0 + p1), radius, float(np.linalg.norm(axis)), colour,
                     _frame_y(axis))


def _bar(p0: Sequence[float], p1: Sequence[float], width: float, depth: float,
         colour: Colour) -> Box:
    """Make a bar from ``p0`` to ``p1`` (width along local x, depth along local z)."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    axis = p1 - p0
    return _box(0.5 * (p0 + p1), (width, float(np.linalg.norm(axis)), depth), colour,
                _frame_y(axis))


def _ellipsoid(centre: Sequence[float], radii: Sequence[float], colour: Colour,
               rotation: np.ndarray | None = None) -> Ellipsoid:
    return Ellipsoid(centre=np.asarray(centre, dtype=np.float64),
                     rotation=np.eye(3) if rotation is None else rotation, colour=colour,
                     radii=np.asarray(radii, dtype=np.float64))


def _sphere(centre: Sequence[float], radius: float, colour: Colour) -> Ellipsoid:
    return _ellipsoid(centre, (radius, radius, radius), colour)


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


def _thick(rng: np.random.Generator, lo: float, hi: float, extent: float) -> float:
    """Draw a thickness, at least :data:`MIN_THICKNESS` once ``extent`` is scaled to 1."""
    return max(float(rng.uniform(lo, hi)), 1.1 * MIN_THICKNESS * extent)


# ---------------------------------------------------------------------------------------------
# Categories. Rough metres; y up, front +z.

def _table(rng: np.random.Generator) -> list[Part]:
    colour_top = _wood(rng) if rng.random() < 0.6 else _any_colour(rng)
    colour_legs = colour_top if rng.random() < 0.6 else _grey(rng, 0.1, 0.6)
    height = rng.uniform(0.45, 0.8)
    round_top = rng.random() < 0.3
    radius = rng.uniform(0.35, 0.7)
    width = rng.uniform(0.8, 1.9)
    depth = rng.uniform(0.45, 1.0)
    extent = max(height, 2 * radius) if round_top else max(height, width, depth)
    top_t = _thick(rng, 0.025, 0.07, extent)
    top_y = height - top_t / 2
    parts: list[Part] = []
    leg_w = _thick(rng, 0.03, 0.08, extent)
    if round_top:
        parts.append(_cylinder((0, top_y, 0), radius, top_t, colour_top))
        if rng.random() < 0.5:  # pedestal
            col_r = _thick(rng, 0.03, 0.09, extent)
            base_r = rng.uniform(0.35, 0.7) * radius
            base_t = rng.uniform(0.02, 0.05)
            parts.append(_cylinder((0, (height - top_t) / 2, 0), col_r, height - top_t,
                                   colour_legs))
            parts.append(_frustum((0, base_t / 2, 0), base_r, 0.6 * base_r, base_t,
                                  colour_legs))
        else:
            n_legs = int(rng.integers(3, 5))
            spread = rng.uniform(0.55, 0.8) * radius
            phase = rng.uniform(0, 2 * math.pi)
            for k in range(n_legs):
                a = phase + 2 * math.pi * k / n_legs
                x, z = spread * math.cos(a), spread * math.sin(a)
                splay = rng.uniform(1.0, 1.25)
                parts.append(_rod((x * splay, 0, z * splay), (x, height - top_t, z),
                                  leg_w / 2, colour_legs))
        return parts
    parts.append(_box((0, top_y, 0), (width, top_t, depth), colour_top))
    inset = rng.uniform(0.02, 0.12)
    lx, lz = width / 2 - inset - leg_w / 2, depth / 2 - inset - leg_w / 2
    leg_h = height - top_t
    round_legs = rng.random() < 0.4
    corners = [(sx * lx, sz * lz) for sx in (-1, 1) for sz in (-1, 1)]
    if rng.random() < 0.2:  # trestle: two panels at the ends
        for sx in (-1, 1):
            parts.append(_box((sx * lx, leg_h / 2, 0), (leg_w, leg_h, 2 * lz), colour_legs))
    else:
        for x, z in corners:
            if round_legs:
                parts.append(_cylinder((x, leg_h / 2, z), leg_w / 2, leg_h, colour_legs))
            else:
                parts.append(_box((x, leg_h / 2, z), (leg_w, leg_h, leg_w), colour_legs))
    if rng.random() < 0.5:  # apron under the top
        apron_h = rng.uniform(0.05, 0.12)
        y = leg_h - apron_h / 2
        t = MIN_THICKNESS * 1.2 * extent
        parts.append(_box((0, y, lz), (2 * lx, apron_h, t), colour_top))
        parts.append(_box((0, y, -lz), (2 * lx, apron_h, t), colour_top))
        parts.append(_box((lx, y, 0), (t, apron_h, 2 * lz), colour_top))
        parts.append(_box((-lx, y, 0), (t, apron_h, 2 * lz), colour_top))
    if rng.random() < 0.3:  # lower shelf
        shelf_y = rng.uniform(0.1, 0.3) * height
        shelf_t = max(top_t * 0.7, 1.1 * MIN_THICKNESS * extent)
        parts.append(_box((0, shelf_y, 0), (2 * lx, shelf_t, 2 * lz), colour_top))
    return parts


def _chair(rng: np.random.Generator) -> list[Part]:
    colour_seat = _any_colour(rng) if rng.random() < 0.5 else _wood(rng)
    colour_frame = colour_seat if rng.random() < 0.5 else _wood(rng)
    seat_w = rng.uniform(0.4, 0.6)
    seat_d = rng.uniform(0.38, 0.58)
    seat_h = rng.uniform(0.38, 0.5)
    seat_t = rng.uniform(0.03, 0.09)
    back_h = rng.uniform(0.3, 0.6)
    extent = max(seat_w, seat_d, seat_h + back_h)
    parts: list[Part] = [_box((0, seat_h - seat_t / 2, 0), (seat_w, seat_t, seat_d), colour_seat)]
    leg_top = seat_h - seat_t
    leg_w = _thick(rng, 0.025, 0.05, extent)
    if rng.random() < 0.2:  # swivel chair: column and a star base
        col_r = rng.uniform(0.025, 0.045)
        parts.append(_cylinder((0, leg_top / 2 + 0.04, 0), col_r, leg_top - 0.08, colour_frame))
        n_arms = int(rng.integers(4, 6))
        reach = rng.uniform(0.25, 0.33)
        phase = rng.uniform(0, 2 * math.pi)
        for k in range(n_arms):
            a = phase + 2 * math.pi * k / n_arms
            end = (reach * math.cos(a), 0.03, reach * math.sin(a))
            parts.append(_bar((0, 0.06, 0), end, 0.035, 0.035, colour_frame))
            parts.append(_sphere((end[0], 0.025, end[2]), 0.025, _grey(rng, 0.05, 0.3)))
    else:
        splay = rng.uniform(0.0, 0.06)
        inset = rng.uniform(0.0, 0.04)
        lx, lz = seat_w / 2 - inset - leg_w / 2, seat_d / 2 - inset - leg_w / 2
        round_legs = rng.random() < 0.5
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = (sx * lx, leg_top, sz * lz)
                foot = (sx * (lx + splay), 0, sz * (lz + splay))
                if round_legs:
                    parts.append(_rod(foot, top, leg_w / 2, colour_frame))
                else:
                    parts.append(_bar(foot, top, leg_w, leg_w, colour_frame))
        if rng.random() < 0.35:  # stretchers between the legs
            y = rng.uniform(0.1, 0.25)
            out = splay * (1.0 - y / leg_top)  # the splayed legs' offset at that height
            for sx in (-1, 1):
                x = sx * (lx + out)
                parts.append(_rod((x, y, -(lz + out)), (x, y, lz + out),
                                  MIN_THICKNESS * 0.6 * extent, colour_frame))
    back_t = _thick(rng, 0.025, 0.06, extent)
    tilt = math.radians(rng.uniform(0.0, 15.0))
    z0 = -seat_d / 2 + back_t / 2
    y0 = seat_h
    # The back leans backwards (towards -z) by the tilt angle about the seat's rear edge.
    up = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    lean = _rot('x', -tilt)
    style = rng.choice(['solid', 'solid', 'slats', 'frame'])
    if style == 'solid':
        centre = np.array([0.0, y0, z0]) + up * back_h / 2
        width = seat_w * rng.uniform(0.85, 1.0)
        parts.append(_box(centre, (width, back_h, back_t), colour_seat, lean))
    else:
        post_w = max(leg_w, MIN_THICKNESS * 1.2 * extent)
        for sx in (-1, 1):
            base = np.array([sx * (seat_w / 2 - post_w / 2), y0 - seat_t, z0])
            parts.append(_bar(base, base + up * (back_h + seat_t), post_w, post_w,
                              colour_frame))
        rail_h = rng.uniform(0.05, 0.12)
        rail_c = np.array([0.0, y0, z0]) + up * (back_h - rail_h / 2)
        parts.append(_box(rail_c, (seat_w, rail_h, back_t), colour_frame, lean))
        if style == 'slats':
            n = int(rng.integers(2, 6))
            slat_w = _thick(rng, 0.02, 0.05, extent)
            for k in range(n):
                x = (k + 1) / (n + 1) * (seat_w - post_w) - (seat_w - post_w) / 2
                c = np.array([x, y0, z0]) + up * (back_h - rail_h) / 2
                size = (slat_w, back_h - rail_h, max(back_t * 0.6, slat_w))
                parts.append(_box(c, size, colour_frame, lean))
        else:
            mid_c = np.array([0.0, y0, z0]) + up * back_h * rng.uniform(0.3, 0.55)
            parts.append(_box(mid_c, (seat_w, rail_h * 0.7, back_t * 0.8), colour_frame, lean))
    if rng.random() < 0.35:  # armrests
        arm_y = seat_h + rng.uniform(0.16, 0.26)
        arm_w = rng.uniform(0.03, 0.07)
        for sx in (-1, 1):
            x = sx * (seat_w / 2 - arm_w / 2)
            parts.append(_box((x, arm_y, -0.05 * seat_d), (arm_w, 0.03, seat_d * 0.85),
                              colour_frame))
            parts.append(_box((x, (seat_h + arm_y) / 2, seat_d * 0.3),
                              (arm_w * 0.7, arm_y - seat_h, arm_w * 0.7), colour_frame))
    return parts


def _lamp(rng: np.random.Generator) -> list[Part]:
    metal = _grey(rng, 0.2, 0.8) if rng.random() < 0.6 else _any_colour(rng)
    shade_colour = _colour(rng, (0.05, 0.16), (0.1, 0.5), (0.75, 1.0)) \
        if rng.random() < 0.6 else _any_colour(rng)
    floor = rng.random() < 0.45
    height = rng.uniform(1.2, 1.7) if floor else rng.uniform(0.35, 0.6)
    base_r = rng.uniform(0.12, 0.2) if floor else rng.uniform(0.07, 0.12)
    base_t = _thick(rng, 0.02, 0.05, height)
    parts: list[Part] = []
    if rng.random() < 0.7:
        parts.append(_frustum((0, base_t / 2, 0), base_r, base_r * rng.uniform(0.5, 1.0),
                              base_t, metal))
    else:
        parts.append(_box((0, base_t / 2, 0), (2 * base_r, base_t, 2 * base_r * 0.8), metal))
    pole_r = 0.5 * _thick(rng, 0.016, 0.04, height) * (1.5 if floor else 1.0)
    shade_h = rng.uniform(0.15, 0.3) if floor else rng.uniform(0.1, 0.18)
    shade_rb = shade_h * rng.uniform(0.7, 1.4)
    shade_rt = shade_rb * rng.uniform(0.35, 0.9)
    if floor or rng.random() < 0.4:  # straight pole, shade on top
        top = height - shade_h * 0.6
        parts.append(_rod((0, base_t, 0), (0, top, 0), pole_r, metal))
        parts.append(_frustum((0, height - shade_h / 2, 0), shade_rb, shade_rt, shade_h,
                              shade_colour))
        if rng.random() < 0.5:
            parts.append(_sphere((0, height - shade_h * 0.85, 0), shade_rt * 0.8, (1, 1, 0.85)))
    else:  # desk lamp: two arm segments and a shade tilted forward and down
        elbow = np.array([0.0, height * rng.uniform(0.45, 0.7), -height * rng.uniform(0.0, 0.3)])
        head = np.array([0.0, height, height * rng.uniform(0.25, 0.55)])
        parts.append(_rod((0, base_t, 0), elbow, pole_r, metal))
        parts.append(_rod(elbow, head, pole_r, metal))
        parts.append(_sphere(elbow, pole_r * 1.8, metal))
        aim = np.array([0.0, -1.0, rng.uniform(0.2, 0.8)])  # shade opening direction
        aim /= np.linalg.norm(aim)
        # A frustum's wide end is its bottom (-y), so its local y points against the aim.
        parts.append(_frustum(head + aim * shade_h * 0.3, shade_rb * 0.8, shade_rt * 0.6,
                              shade_h, shade_colour, _frame_y(-aim)))
    return parts


def _airplane(rng: np.random.Generator) -> list[Part]:
    body = _grey(rng, 0.6, 0.95) if rng.random() < 0.6 else _any_colour(rng)
    accent = _any_colour(rng) if rng.random() < 0.5 else body
    length = 1.0
    radius = rng.uniform(0.035, 0.075)
    along_z = _rot('x', math.pi / 2)  # local y -> +z (nose)
    nose_len = rng.uniform(0.06, 0.15)
    tail_len = rng.uniform(0.15, 0.3)
    mid_len = length - nose_len - tail_len
    z_mid = (tail_len - nose_len) / 2  # centre of the cylinder section
    parts: list[Part] = [
        _cylinder((0, 0, z_mid), radius, mid_len, body, along_z),
        _ellipsoid((0, 0, z_mid + mid_len / 2), (radius, radius, nose_len), body),
    ]
    tail_r = radius * rng.uniform(0.25, 0.5)
    tail_up = radius - tail_r  # tail cone rises to the top line of the fuselage
    tail_start = np.array([0.0, 0.0, z_mid - mid_len / 2])
    tail_end = np.array([0.0, tail_up, z_mid - mid_len / 2 - tail_len])
    parts.append(_frustum(0.5 * (tail_start + tail_end), tail_r, radius, tail_len, body,
                          _frame_y(tail_start - tail_end)))
    # Main wings: a swept, thin box per side, hinged at the fuselage.
    span = rng.uniform(0.7, 1.15) * length
    chord = rng.uniform(0.1, 0.22) * length
    wing_t = _thick(rng, 0.015, 0.03, max(length, span))
    sweep = math.radians(rng.uniform(0.0, 35.0))
    dihedral = math.radians(rng.uniform(-2.0, 7.0))
    wing_y = rng.choice([-0.6, 0.0, 0.6]) * radius
    wing_z = z_mid + rng.uniform(-0.1, 0.12) * length
    semi = span / 2
    for side in (-1, 1):
        rot = _rot('y', side * sweep) @ _rot('z', side * dihedral)
        # Local x along the span; the box's inner end sits on the fuselage axis.
        centre = np.array([0.0, wing_y, wing_z]) + rot @ np.array([side * semi / 2, 0.0, 0.0])
        parts.append(_box(centre, (semi, wing_t, chord), accent, rot))
    # Engines under the wings.
    n_eng = int(rng.choice([0, 2, 2, 4]))
    eng_r = rng.uniform(0.025, 0.045)
    eng_len = rng.uniform(0.1, 0.18)
    for k in range(n_eng // 2):
        frac = (0.35, 0.65)[k] if n_eng == 4 else rng.uniform(0.3, 0.45)
        for side in (-1, 1):
            rot = _rot('y', side * sweep) @ _rot('z', side * dihedral)
            spot = np.array([0.0, wing_y, wing_z]) + rot @ np.array([side * semi * frac, 0, 0])
            spot = spot + np.array([0.0, -(eng_r + wing_t / 2), chord * 0.35])
            parts.append(_cylinder(spot, eng_r, eng_len, _grey(rng, 0.3, 0.7), along_z))
    # Tail: horizontal stabilisers and a vertical fin.
    stab_span = rng.uniform(0.25, 0.45) * span
    stab_chord = rng.uniform(0.45, 0.8) * chord
    stab_t = max(wing_t * 0.8, 1.1 * MIN_THICKNESS * max(length, span))
    tail_z = tail_end[2] + stab_chord * 0.6
    t_tail = rng.random() < 0.25
    fin_h = rng.uniform(0.1, 0.2) * length
    fin_chord = rng.uniform(0.12, 0.22) * length
    fin_sweep = math.radians(rng.uniform(15.0, 45.0))
    fin_rot = _rot('x', -fin_sweep)  # lean the fin's top backwards (towards -z)
    fin_base = np.array([0.0, tail_up + tail_r * 0.5, tail_end[2] + fin_chord * 0.55])
    fin_centre = fin_base + fin_rot @ np.array([0.0, fin_h / 2, 0.0])
    parts.append(_box(fin_centre, (stab_t, fin_h, fin_chord), accent, fin_rot))
    stab_y = (fin_base + fin_rot @ np.array([0.0, fin_h, 0.0]))[1] if t_tail else tail_up
    stab_z = (fin_base + fin_rot @ np.array([0.0, fin_h, 0.0]))[2] if t_tail else tail_z
    for side in (-1, 1):
        rot = _rot('y', side * sweep * 0.8)
        centre = np.array([0.0, stab_y, stab_z]) + rot @ np.array([side * stab_span / 4, 0, 0])
        parts.append(_box(centre, (stab_span / 2, stab_t, stab_chord), accent, rot))
    return parts


def _car(rng: np.random.Generator) -> list[Part]:
    paint = _any_colour(rng)
    glass = _colour(rng, (0.55, 0.65), (0.2, 0.5), (0.12, 0.3))
    tyre = _grey(rng, 0.05, 0.15)
    length = 1.0
    width = rng.uniform(0.38, 0.48) * length
    body_h = rng.uniform(0.14, 0.24) * length
    wheel_r = rng.uniform(0.07, 0.11) * length
    clearance = wheel_r * rng.uniform(0.5, 0.9)
    kind = rng.choice(['sedan', 'sedan', 'hatch', 'pickup', 'van'])
    parts: list[Part] = [_box((0, clearance + body_h / 2, 0), (width, body_h, length), paint)]
    body_top = clearance + body_h
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
    roof_t = max(cab_h * 0.2, MIN_THICKNESS * 1.2)
    # Glass band with a body-coloured roof slab on top; slightly narrower at the windscreen.
    parts.append(_box((0, body_top + (cab_h - roof_t) / 2, cab_z),
                      (cab_w, cab_h - roof_t, cab_len), glass))
    parts.append(_box((0, body_top + cab_h - roof_t / 2, cab_z),
                      (cab_w * 1.01, roof_t, cab_len * rng.uniform(0.8, 1.0)), paint))
    if kind == 'pickup':  # bed walls behind the cab
        bed_z0, bed_z1 = cab_z - cab_len / 2, -length / 2
        wall = max(0.02, MIN_THICKNESS * 1.2)
        wall_h = body_h * 0.35
        for sx in (-1, 1):
            parts.append(_box((sx * (width / 2 - wall / 2), body_top + wall_h / 2,
                               (bed_z0 + bed_z1) / 2), (wall, wall_h, bed_z0 - bed_z1), paint))
        parts.append(_box((0, body_top + wall_h / 2, bed_z1 + wall / 2), (width, wall_h, wall),
                          paint))
    if kind == 'sedan' and rng.random() < 0.25:  # rear spoiler
        parts.append(_box((0, body_top + 0.04, -length / 2 + 0.04), (width * 0.9, 0.02, 0.06),
                          paint))
        for sx in (-1, 1):
            parts.append(_box((sx * width * 0.3, body_top + 0.02, -length / 2 + 0.04),
                              (0.02, 0.04, 0.02), paint))
    wheel_w = rng.uniform(0.05, 0.09) * length
    axle = length * rng.uniform(0.28, 0.36)
    along_x = _rot('z', math.pi / 2)  # local y -> -x; a cylinder does not care about the sign
    hub = _grey(rng, 0.55, 0.9)
    for sz in (-1, 1):
        for sx in (-1, 1):
            x = sx * (width / 2 - wheel_w * 0.35)
            parts.append(_cylinder((x, wheel_r, sz * axle), wheel_r, wheel_w, tyre, along_x))
            parts.append(_cylinder((x + sx * wheel_w * 0.52, wheel_r, sz * axle), wheel_r * 0.5,
                                   MIN_THICKNESS * 0.3, hub, along_x))
    lamp = (1.0, 0.95, 0.7)
    for sx in (-1, 1):  # headlights on the front face
        parts.append(_box((sx * width * 0.32, clearance + body_h * 0.7, length / 2 + 0.001),
                          (width * 0.18, body_h * 0.18, 0.008), lamp))
    return parts


def _mug(rng: np.random.Generator) -> list[Part]:
    colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.7, 0.95)
    height = 1.0
    r_bottom = rng.uniform(0.32, 0.47) * height
    r_top = r_bottom * rng.uniform(0.95, 1.2)
    parts: list[Part] = [_frustum((0, height / 2, 0), r_bottom, r_top, height, colour)]
    # Drink surface slightly below the rim colour: a flat dark disc on top.
    drink = _colour(rng, (0.03, 0.08), (0.5, 0.9), (0.12, 0.35)) \
        if rng.random() < 0.6 else _grey(rng, 0.2, 0.5)
    wall = max(r_top * 0.08, MIN_THICKNESS)
    parts.append(_cylinder((0, height - 0.002, 0), r_top - wall, 0.008, drink))
    # Handle: a chain of rods along half an ellipse on the +x side, spheres at the joints.
    tube = rng.uniform(0.035, 0.06) * height
    reach = rng.uniform(0.18, 0.3) * height
    half_h = rng.uniform(0.22, 0.32) * height
    centre_y = height * rng.uniform(0.45, 0.55)
    x_wall = (r_bottom + r_top) / 2 - tube
    n = 6
    pts = []
    for k in range(n + 1):
        a = -math.pi / 2 + math.pi * k / n
        pts.append(np.array([x_wall + reach * math.cos(a), centre_y + half_h * math.sin(a), 0]))
    for k in range(n):
        parts.append(_rod(pts[k], pts[k + 1], tube, colour))
        if 0 < k:
            parts.append(_sphere(pts[k], tube, colour))
    return parts


def _bottle(rng: np.random.Generator) -> list[Part]:
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
    neck_h = height - body_h - shoulder_h - cap_h
    parts: list[Part] = []
    square = rng.random() < 0.2
    if square:
        parts.append(_box((0, body_h / 2, 0), (2 * radius, body_h, 2 * radius * 0.8), colour))
    else:
        parts.append(_cylinder((0, body_h / 2, 0), radius, body_h, colour))
    if rng.random() < 0.5 or square:
        parts.append(_frustum((0, body_h + shoulder_h / 2, 0), radius * (0.85 if square else 1),
                              neck_r, shoulder_h, colour))
    else:  # rounded shoulder
        parts.append(_ellipsoid((0, body_h, 0), (radius, shoulder_h * 1.05, radius), colour))
    parts.append(_cylinder((0, body_h + shoulder_h + neck_h / 2 - 0.01, 0), neck_r,
                           neck_h + 0.02, colour))
    cap_colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.6, 0.9)
    parts.append(_cylinder((0, height - cap_h / 2, 0), neck_r * rng.uniform(1.05, 1.3), cap_h,
                           cap_colour))
    if rng.random() < 0.7 and not square:  # label band
        label_h = body_h * rng.uniform(0.3, 0.6)
        parts.append(_cylinder((0, body_h * rng.uniform(0.4, 0.55), 0), radius * 1.012,
                               label_h, _any_colour(rng)))
    return parts


def _sofa(rng: np.random.Generator) -> list[Part]:
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
    base_top = seat_h - cushion_t
    parts: list[Part] = [
        _box((0, (leg_h + base_top) / 2, 0), (width, base_top - leg_h, depth), fabric),
        _box((0, (leg_h + back_h) / 2, -depth / 2 + back_t / 2), (width, back_h - leg_h, back_t),
             fabric),
    ]
    if arm_w > 0:
        for sx in (-1, 1):
            parts.append(_box((sx * (width / 2 - arm_w / 2), (leg_h + arm_h) / 2, 0),
                              (arm_w, arm_h - leg_h, depth), fabric))
    n_cushions = int(rng.integers(1, 4))
    inner = width - 2 * arm_w
    gap = 0.012
    cw = (inner - gap * (n_cushions + 1)) / n_cushions
    for k in range(n_cushions):
        x = -inner / 2 + gap + cw / 2 + k * (cw + gap)
        parts.append(_box((x, base_top + cushion_t / 2, back_t / 2),
                          (cw, cushion_t, depth - back_t), cushion))
        if rng.random() < 0.5:  # back cushion
            parts.append(_box((x, seat_h + (back_h - seat_h) * 0.45, -depth / 2 + back_t * 1.4),
                              (cw, (back_h - seat_h) * 0.75, back_t * 0.8), cushion,
                              _rot('x', -0.12)))
    if leg_h > 0.02:
        leg_c = _grey(rng, 0.05, 0.5) if rng.random() < 0.5 else _wood(rng)
        leg_r = rng.uniform(0.02, 0.04)
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(_cylinder((sx * (width / 2 - 0.06), leg_h / 2,
                                        sz * (depth / 2 - 0.06)), leg_r, leg_h, leg_c))
    if rng.random() < 0.15 and arm_w > 0:  # chaise: one side extends forward
        sx = rng.choice([-1, 1])
        ext = rng.uniform(0.4, 0.7)
        cw2 = inner / n_cushions
        parts.append(_box((sx * (width / 2 - arm_w - cw2 / 2), (leg_h + base_top) / 2,
                           depth / 2 + ext / 2), (cw2, base_top - leg_h, ext), fabric))
        parts.append(_box((sx * (width / 2 - arm_w - cw2 / 2), base_top + cushion_t / 2,
                           depth / 2 + ext / 2), (cw2 - gap, cushion_t, ext - gap), cushion))
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
    lows, highs = zip(*(p.bounds() for p in parts))
    return np.min(lows, axis=0), np.max(highs, axis=0)


def make_object(name: str, *, seed: int) -> SyntheticObject:
    """Build one object of a category, centred and scaled so its largest extent is 1.

    :param name: category name or taxonomy id.
    :param seed: non-negative seed; the object is a pure function of ``(category, seed)``.
    :raises UnknownCategoryError: unknown category.
    :raises ValueError: negative seed.
    """
    cat = category(name)
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    rng = np.random.default_rng([int(seed), int(cat.taxonomy_id)])
    parts = cat.build(rng)
    lo, hi = _union_bounds(parts)
    scale = 1.0 / float((hi - lo).max())
    offset = -0.5 * (lo + hi) * scale
    return SyntheticObject(cat.name, int(seed),
                           tuple(p.transformed(scale, offset) for p in parts))
