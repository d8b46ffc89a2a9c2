"""The ``wide`` variety of the procedural categories: styles and proportions of real objects.

The classic builders of :mod:`.shapes` make a few styles per category; real furniture, vehicles
and containers come in many more. Each builder here draws a style and builds it: tables (coffee,
bar and side tables taller than wide, trestles, pedestals on star bases, desks), chairs (office
chairs on five-arm bases, cube-like armchairs, stools, sled frames, high backs), lamps (hollow
shades, arc lamps with curved arms, jointed desk lamps, tripods), airplanes (fat and slim
fuselages, straight, swept and delta wings, low, mid and high, engines under the wings, at the
tail or with propellers, T and twin tails), cars (cabins with sloping windscreens and rear
windows under a roof: sedans, hatchbacks, SUVs, sports cars, vans, pickups, lorries), hollow
mugs and cups, bottles (wine, jugs, flasks, jars) and sofas (sectionals, loveseats, rolled arms,
legs). Sometimes it takes a classic style from its own generator, so the variety holds those
too.

The rules of :mod:`.shapes` hold here: parts are built from the lattice's snapped spans, thin
parts are whole voxels thick (one at least, and stay that thin, however wide the object), and
parts turned off the grid's axes are two voxels thick at least or turn only about the axis
across which they are thin. Hollow shapes (mugs, cups, lamp shades) are rings of such turned
panels, so the grid holds their cavity as ShapeNet's filled grids hold an open cavity: empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .lattice import Lattice
from .primitives import Part
from .shapes import (_SLIVER, Colour, Span, _Fuselage, _Wings, _airplane, _any_colour, _block,
                     _bottle, _box, _car, _chair, _colour, _column, _decal, _engines, _frame_y,
                     _frustum, _fuselage, _grey, _inside, _lamp, _mug, _rod, _rot, _round, _sofa,
                     _sphere, _spoiler, _swept, _table, _tail_planes, _wheels, _wood)

Builder = Callable[[np.random.Generator, Lattice], list[Part]]


def _style(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """Pick a style with one uniform draw, by cumulative weight in the dict's order."""
    total = sum(weights.values())
    u = float(rng.random()) * total
    for name, weight in weights.items():
        u -= weight
        if u < 0.0:
            return name
    return name


def _ring(g: Lattice, centre: tuple[float, float], ys: Span, r_bottom: float, r_top: float,
          wall: float, colour: Colour, *, sides: int = 12) -> list[Part]:
    """Make a hollow round wall, open at both ends: ``sides`` panels around the y axis.

    The panels are ``wall`` thick (two voxels at least: they are turned about y) and lean in by
    the slope from ``r_bottom`` to ``r_top`` (the outer radii, which the polygon's corners
    reach). Their angles avoid the grid's axes. Upright panels keep ``ys`` on voxel faces.
    """
    wall = g.length(wall, least=2)
    # The panels' outer faces at the apothems, so that the polygon's corners lie on the circles.
    r_bottom, r_top = (r * math.cos(math.pi / sides) for r in (r_bottom, r_top))
    height = ys[1] - ys[0]
    lean = math.atan2(r_bottom - r_top, height)  # positive: narrower at the top
    r_out = max(r_bottom, r_top)
    width = 2.0 * r_out * math.tan(math.pi / sides)
    # Leaning panels end a little short of ys, so that their corners stay inside it.
    length = (height - wall * abs(math.sin(lean))) / math.cos(lean)
    r_mid = 0.5 * (r_bottom + r_top) - 0.5 * wall * math.cos(lean)
    parts: list[Part] = []
    for k in range(sides):
        a = 2.0 * math.pi * (k + 0.5) / sides
        outward = np.array([math.cos(a), 0.0, math.sin(a)])
        tangent = np.array([-math.sin(a), 0.0, math.cos(a)])
        up = np.array([0.0, math.cos(lean), 0.0]) - math.sin(lean) * outward
        normal = np.cross(tangent, up)
        rotation = np.stack([tangent, up, normal], axis=1)
        mid = np.array([centre[0], 0.5 * (ys[0] + ys[1]), centre[1]]) + r_mid * outward
        parts.append(_box(mid, (width, length, wall), colour, rotation))
    return parts


def _star(g: Lattice, centre: tuple[float, float], ys: Span, reach: float, arm_w: float,
          arms: int, phase: float, colour: Colour, foot: Colour | None = None,
          foot_ys: Span | None = None) -> list[Part]:
    """Make a star base: ``arms`` flat arms in the layer ``ys`` from a hub, feet at the tips.

    The arms turn about y only (their thickness stays on voxel faces) and are two voxels wide
    at least; each foot is an upright block under a tip, in ``foot_ys``. Snapped, the arms are
    a voxel shorter: the hub may have moved by half a voxel, and the tips stay inside the
    bounds the grid was fitted to.
    """
    arm_w = max(arm_w, 2 * g.voxel)
    reach -= g.voxel
    parts: list[Part] = []
    for k in range(arms):
        a = phase + 2.0 * math.pi * k / arms
        rot = _rot('y', a)
        direction = rot @ np.array([1.0, 0.0, 0.0])
        mid = np.array([centre[0], 0.5 * (ys[0] + ys[1]), centre[1]]) + 0.5 * reach * direction
        parts.append(_box(mid, (reach, ys[1] - ys[0], arm_w), colour, rot))
        if foot is not None and foot_ys is not None:
            tip = np.array([centre[0], 0.0, centre[1]]) + 0.9 * reach * direction
            parts.append(_block(g, g.column(tip[0], arm_w, 'x'), foot_ys,
                                g.column(tip[2], arm_w, 'z'), foot))
    return parts


def _inner(g: Lattice, d: float) -> float:
    """Return a width that, snapped about a column, stays within ``d`` centred on the origin.

    A snapped width rounds to whole voxels and its column's centre moves by up to half a
    voxel: two voxels less keeps a part that bounds the object inside the fitted grid.
    """
    return d - 2 * g.voxel


def _hub(g: Lattice, d: float) -> tuple[Span, Span]:
    """Return the x and z spans of an upright column of diameter ``d`` on the y axis."""
    return g.column(0.0, d, 'x'), g.column(0.0, d, 'z')


# ---------------------------------------------------------------------------------------------
# Tables

def _wide_table(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.15, 'coffee': 0.2, 'tall': 0.15, 'trestle': 0.15,
                         'pedestal': 0.15, 'desk': 0.2})
    if style == 'classic':
        return _table(rng, g)
    top_c = _wood(rng) if rng.random() < 0.6 else _any_colour(rng)
    leg_c = top_c if rng.random() < 0.5 else _grey(rng, 0.1, 0.6)
    floor = g.plane(0.0, 'y')
    if style == 'coffee':
        return _coffee_table(rng, g, floor, top_c, leg_c)
    if style == 'tall':
        return _tall_table(rng, g, floor, top_c, leg_c)
    if style == 'trestle':
        return _trestle_table(rng, g, floor, top_c, leg_c)
    if style == 'pedestal':
        return _pedestal_table(rng, g, floor, top_c, leg_c)
    return _desk(rng, g, floor, top_c, leg_c)


def _four_legs(g: Lattice, xs: Span, zs: Span, ys: Span, inset: float, lw: float,
               colour: Colour, *, square: bool = True) -> list[Part]:
    """Make four upright legs ``lw`` wide, ``inset`` in from the corners of ``xs`` × ``zs``."""
    return [_round(g, 1, (_inside(xs, inset, lw, sx), ys, _inside(zs, inset, lw, sz)), colour,
                   square=square)
            for sx in (-1, 1) for sz in (-1, 1)]


def _foot_ring(g: Lattice, xs: Span, zs: Span, ys: Span, lw: float, colour: Colour
               ) -> list[Part]:
    """Make four stretchers in the layer ``ys`` between legs ``lw`` wide at the corners."""
    parts: list[Part] = []
    for side in (-1, 1):
        parts.append(_block(g, (xs[0] + lw, xs[1] - lw), ys, _inside(zs, 0.0, lw, side), colour))
        parts.append(_block(g, _inside(xs, 0.0, lw, side), ys, (zs[0] + lw, zs[1] - lw), colour))
    return parts


def _coffee_table(rng: np.random.Generator, g: Lattice, floor: float, top_c: Colour,
                  leg_c: Colour) -> list[Part]:
    """Make a low, wide table on thin legs, often with a shelf; sometimes round."""
    height = rng.uniform(0.3, 0.48)
    width = rng.uniform(0.8, 1.5)
    depth = width * rng.uniform(0.4, 0.8)
    top_t = rng.uniform(0.02, 0.06)
    leg_w = rng.uniform(0.025, 0.05)
    round_top = rng.random() < 0.3
    shelf = rng.random() < 0.5
    shelf_y = height * rng.uniform(0.15, 0.35)
    inset = rng.uniform(0.0, 0.08)
    top_ys = g.span(height - top_t, height, 'y')
    parts: list[Part] = []
    if round_top:
        top = _column(g, 1, (0.0, 0.0, 0.0), top_ys, width)
        parts.append(_round(g, 1, top, top_c))
        half = 0.5 * (top[0][1] - top[0][0]) / math.sqrt(2.0)
        xs, zs = g.span(-half, half, 'x'), g.span(-half, half, 'z')
    else:
        xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
        parts.append(_block(g, xs, top_ys, zs, top_c))
    inset = g.length(inset, least=0)
    lw = g.length(leg_w)
    parts += _four_legs(g, xs, zs, (floor, top_ys[0]), inset, lw, leg_c)
    if shelf:
        shelf_ys = g.span(shelf_y - top_t / 2, shelf_y + top_t / 2, 'y')
        parts.append(_block(g, (xs[0] + inset, xs[1] - inset), shelf_ys,
                            (zs[0] + inset, zs[1] - inset), top_c))
    return parts


def _tall_table(rng: np.random.Generator, g: Lattice, floor: float, top_c: Colour,
                leg_c: Colour) -> list[Part]:
    """Make a bar or side table taller than it is wide, on legs with a foot ring or a column."""
    height = rng.uniform(0.75, 1.1)
    side = rng.uniform(0.35, 0.65)
    top_t = rng.uniform(0.025, 0.05)
    round_top = rng.random() < 0.5
    column = rng.random() < 0.4
    leg_w = rng.uniform(0.025, 0.045)
    ring_y = height * rng.uniform(0.2, 0.35)
    base_d = side * rng.uniform(0.6, 0.9)
    col_d = rng.uniform(0.05, 0.1)
    top_ys = g.span(height - top_t, height, 'y')
    top = _column(g, 1, (0.0, 0.0, 0.0), top_ys, side)
    parts: list[Part] = [_round(g, 1, top, top_c, square=not round_top)]
    if column:
        base_ys = g.span(floor, floor + 0.03, 'y')
        parts.append(_round(g, 1, (g.around(base_d, top[0]), base_ys, g.around(base_d, top[2])),
                            leg_c))
        parts.append(_round(g, 1, (g.around(col_d, top[0]), (base_ys[1], top_ys[0]),
                                   g.around(col_d, top[2])), leg_c))
        return parts
    half = 0.5 * (top[0][1] - top[0][0]) * (0.7 if round_top else 0.9)
    xs, zs = g.span(-half, half, 'x'), g.span(-half, half, 'z')
    lw = g.length(leg_w)
    parts += _four_legs(g, xs, zs, (floor, top_ys[0]), 0.0, lw, leg_c)
    return parts + _foot_ring(g, xs, zs, g.span(ring_y, ring_y + leg_w, 'y'), lw, leg_c)


def _trestle_table(rng: np.random.Generator, g: Lattice, floor: float, top_c: Colour,
                   leg_c: Colour) -> list[Part]:
    """Make a long table on two trestles (foot, upright, bearer) joined by a stretcher."""
    height = rng.uniform(0.68, 0.8)
    width = rng.uniform(1.3, 2.2)
    depth = rng.uniform(0.6, 1.0)
    top_t = rng.uniform(0.03, 0.07)
    post_t = rng.uniform(0.05, 0.1)
    post_w = rng.uniform(0.08, 0.25)
    foot_h = rng.uniform(0.04, 0.08)
    inset = width * rng.uniform(0.08, 0.18)
    stretcher_y = height * rng.uniform(0.2, 0.55)
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    top_ys = g.span(height - top_t, height, 'y')
    parts: list[Part] = [_block(g, xs, top_ys, zs, top_c)]
    foot_zs = g.span(-0.42 * depth, 0.42 * depth, 'z')
    foot_ys = g.span(floor, floor + foot_h, 'y')
    bearer_ys = (g.plane(top_ys[0] - foot_h, 'y'), top_ys[0])
    post_zs = g.span(-post_w / 2, post_w / 2, 'z')
    pt = g.length(post_t)
    posts = []
    for sx in (-1, 1):
        post_xs = _inside(xs, g.length(inset), pt, sx)
        posts.append(post_xs)
        parts.append(_block(g, post_xs, foot_ys, foot_zs, leg_c))
        parts.append(_block(g, post_xs, (foot_ys[1], bearer_ys[0]), post_zs, leg_c))
        parts.append(_block(g, post_xs, bearer_ys, foot_zs, leg_c))
    parts.append(_block(g, (posts[0][1], posts[1][0]),
                        g.span(stretcher_y - 0.03, stretcher_y + 0.03, 'y'),
                        g.around(0.04, post_zs), leg_c))
    return parts


def _pedestal_table(rng: np.random.Generator, g: Lattice, floor: float, top_c: Colour,
                    leg_c: Colour) -> list[Part]:
    """Make a round or square top on one column over a star base of four or five arms."""
    height = rng.uniform(0.5, 0.8)
    size = rng.uniform(0.6, 1.1)
    round_top = rng.random() < 0.6
    top_t = rng.uniform(0.025, 0.06)
    col_d = rng.uniform(0.05, 0.12)
    arms = int(rng.choice([3, 4, 5]))
    reach = 0.5 * size * rng.uniform(0.55, 0.85)
    arm_w = rng.uniform(0.04, 0.08)
    arm_h = rng.uniform(0.03, 0.06)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    top_ys = g.span(height - top_t, height, 'y')
    top = _column(g, 1, (0.0, 0.0, 0.0), top_ys, size)
    parts: list[Part] = [_round(g, 1, top, top_c, square=not round_top)]
    arm_ys = g.span(floor, floor + arm_h, 'y')
    col = _hub(g, col_d)
    parts.append(_round(g, 1, (col[0], (arm_ys[1], top_ys[0]), col[1]), leg_c))
    centre = (0.5 * sum(col[0]), 0.5 * sum(col[1]))
    parts += _star(g, centre, arm_ys, reach, arm_w, arms, phase, leg_c)
    return parts


def _desk(rng: np.random.Generator, g: Lattice, floor: float, top_c: Colour, leg_c: Colour
          ) -> list[Part]:
    """Make a desk: a drawer pedestal at one end, a panel or two legs at the other."""
    height = rng.uniform(0.7, 0.78)
    width = rng.uniform(1.0, 1.7)
    depth = rng.uniform(0.5, 0.8)
    top_t = rng.uniform(0.025, 0.05)
    ped_w = rng.uniform(0.3, 0.45)
    side = int(rng.choice([-1, 1]))
    other = rng.choice(['panel', 'legs'])
    leg_w = rng.uniform(0.03, 0.06)
    drawers = int(rng.integers(2, 5))
    modesty = rng.random() < 0.5
    handle_c = _grey(rng, 0.2, 0.9)
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    top_ys = g.span(height - top_t, height, 'y')
    body_ys = (floor, top_ys[0])
    parts: list[Part] = [_block(g, xs, top_ys, zs, top_c)]
    ped_xs = _inside(xs, 0.0, g.length(ped_w), side)
    ped_zs = (zs[0], g.plane(zs[1] - 0.02, 'z'))
    parts.append(_block(g, ped_xs, body_ys, ped_zs, leg_c))
    step = (body_ys[1] - body_ys[0]) / drawers
    for k in range(drawers):  # drawer handles, decals on the pedestal's front
        y = body_ys[0] + (k + 0.5) * step
        parts.append(_decal(_box((0.5 * sum(ped_xs), y,
                                  ped_zs[1] - 0.002 + _SLIVER * g.voxel / 2),
                                 (0.4 * (ped_xs[1] - ped_xs[0]), 0.12 * step,
                                  0.004 + _SLIVER * g.voxel), handle_c)))
    lw = g.length(leg_w)
    if other == 'panel':
        parts.append(_block(g, _inside(xs, 0.0, lw, -side), body_ys, ped_zs, leg_c))
    else:
        for sz in (-1, 1):
            parts.append(_block(g, _inside(xs, 0.0, lw, -side), body_ys,
                                _inside(zs, 0.0, lw, sz), leg_c))
    if modesty:  # a panel across the back, between pedestal and the other end
        inner = (xs[0] + lw, ped_xs[0]) if side > 0 else (ped_xs[1], xs[1] - lw)
        parts.append(_block(g, inner, (g.plane(height * 0.35, 'y'), top_ys[0]),
                            _inside(zs, g.length(0.04, least=0), g.length(0.02), -1), leg_c))
    return parts


# ---------------------------------------------------------------------------------------------
# Chairs

def _wide_chair(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.2, 'office': 0.2, 'armchair': 0.15, 'stool': 0.12,
                         'sled': 0.15, 'high_back': 0.18})
    if style == 'classic':
        return _chair(rng, g)
    fabric = _any_colour(rng)
    frame = _grey(rng, 0.05, 0.7) if rng.random() < 0.5 else _wood(rng)
    floor = g.plane(0.0, 'y')
    if style == 'office':
        return _office_chair(rng, g, floor, fabric, frame)
    if style == 'armchair':
        return _armchair(rng, g, floor, fabric, frame)
    if style == 'stool':
        return _stool(rng, g, floor, fabric, frame)
    return _framed_chair(rng, g, floor, fabric, frame, sled=style == 'sled')


def _office_chair(rng: np.random.Generator, g: Lattice, floor: float, fabric: Colour,
                  frame: Colour) -> list[Part]:
    """Make a seat on a gas column over a five-arm star base, a tall back, often arms."""
    seat_w = rng.uniform(0.45, 0.6)
    seat_d = rng.uniform(0.42, 0.55)
    seat_h = rng.uniform(0.42, 0.55)
    seat_t = rng.uniform(0.06, 0.1)
    back_h = rng.uniform(0.4, 0.75)
    back_t = rng.uniform(0.04, 0.08)
    gap = rng.uniform(0.05, 0.15)
    reach = rng.uniform(0.28, 0.36)
    arm_w = rng.uniform(0.035, 0.06)
    arm_h = rng.uniform(0.03, 0.05)
    col_d = rng.uniform(0.04, 0.07)
    castor_h = rng.uniform(0.04, 0.07)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    armrests = rng.random() < 0.6
    wheel = _grey(rng, 0.05, 0.3)
    xs, zs = g.span(-seat_w / 2, seat_w / 2, 'x'), g.span(-seat_d / 2, seat_d / 2, 'z')
    seat_ys = g.span(seat_h - seat_t, seat_h, 'y')
    parts: list[Part] = [_block(g, xs, seat_ys, zs, fabric)]
    castor_ys = g.span(floor, floor + castor_h, 'y')
    arm_ys = g.span(castor_ys[1], castor_ys[1] + arm_h, 'y')
    col = _hub(g, col_d)
    parts.append(_round(g, 1, (col[0], (arm_ys[1], seat_ys[0]), col[1]), frame))
    parts += _star(g, (0.5 * sum(col[0]), 0.5 * sum(col[1])), arm_ys, reach, arm_w, 5, phase,
                   frame, wheel, castor_ys)
    # The back floats above the seat on a spine behind it.
    bt = g.length(back_t)
    back_ys = (g.plane(seat_ys[1] + gap, 'y'), g.plane(seat_ys[1] + gap + back_h, 'y'))
    back_zs = (zs[0], zs[0] + bt)
    parts.append(_block(g, g.span(-0.45 * seat_w, 0.45 * seat_w, 'x'), back_ys, back_zs,
                        fabric))
    spine_xs = g.column(0.0, 0.06, 'x')
    parts.append(_block(g, spine_xs, (seat_ys[0], g.plane(back_ys[0] + 0.1, 'y')),
                        (zs[0] - bt, zs[0]), frame))
    if armrests:
        pad_ys = g.span(seat_h + 0.2, seat_h + 0.23, 'y')
        pad_zs = g.span(-0.35 * seat_d, 0.3 * seat_d, 'z')
        post_zs = g.around(0.04, pad_zs)
        for sx in (-1, 1):
            pad_xs = _inside(xs, 0.0, g.length(0.05), sx)
            parts.append(_block(g, pad_xs, pad_ys, pad_zs, frame))
            parts.append(_block(g, g.around(0.025, pad_xs), (seat_ys[1], pad_ys[0]), post_zs,
                                frame))
    return parts


def _armchair(rng: np.random.Generator, g: Lattice, floor: float, fabric: Colour,
              frame: Colour) -> list[Part]:
    """Make a cube-like upholstered armchair: block base, thick arms and back, a cushion."""
    width = rng.uniform(0.7, 1.0)
    depth = rng.uniform(0.7, 0.95)
    seat_h = rng.uniform(0.38, 0.48)
    back_h = rng.uniform(0.7, 1.05)
    arm_h = rng.uniform(0.5, 0.7)
    arm_w = rng.uniform(0.1, 0.22)
    back_t = rng.uniform(0.12, 0.22)
    leg_h = rng.uniform(0.0, 0.15) if rng.random() < 0.6 else 0.0
    cushion_t = rng.uniform(0.06, 0.12)
    rolled = rng.random() < 0.35
    cushion = fabric if rng.random() < 0.5 else _any_colour(rng)
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    legs = leg_h > 0.03
    bottom = g.span(floor, leg_h, 'y')[1] if legs else floor
    base_top = g.plane(seat_h - cushion_t, 'y')
    back_zs = (zs[0], g.plane(zs[0] + back_t, 'z'))
    aw = g.length(arm_w)
    inner = (xs[0] + aw, xs[1] - aw)
    parts: list[Part] = [
        _block(g, xs, (bottom, base_top), zs, fabric),
        _block(g, xs, (bottom, g.plane(back_h, 'y')), back_zs, fabric),
        _block(g, inner, (base_top, g.span(base_top, seat_h, 'y')[1]), (back_zs[1], zs[1]),
               cushion),
    ]
    arm_top = g.plane(arm_h, 'y')
    for arm_xs in ((xs[0], inner[0]), (inner[1], xs[1])):
        parts.append(_block(g, arm_xs, (bottom, arm_top), zs, fabric))
        if rolled:
            parts.append(_arm_roll(g, arm_xs, arm_top, zs, fabric))
    if legs:
        parts += _four_legs(g, xs, zs, (floor, bottom), g.length(0.04, least=0),
                            g.length(0.04), frame)
    return parts


def _arm_roll(g: Lattice, xs: Span, top: float, zs: Span, colour: Colour) -> Part:
    """Make a roll along the top of an arm ``xs`` wide: round about z, half above the arm."""
    width = xs[1] - xs[0]
    low = g.plane(top - width / 2, 'y')
    return _round(g, 2, (xs, (low, low + width), zs), colour)


def _stool(rng: np.random.Generator, g: Lattice, floor: float, fabric: Colour, frame: Colour
           ) -> list[Part]:
    """Make a stool, low or bar height, on four legs with a foot ring; sometimes a low back."""
    seat_h = rng.uniform(0.45, 0.8)
    size = rng.uniform(0.3, 0.45)
    seat_t = rng.uniform(0.03, 0.07)
    round_seat = rng.random() < 0.6
    leg_w = rng.uniform(0.02, 0.04)
    ring_y = seat_h * rng.uniform(0.25, 0.4)
    back = rng.random() < 0.4
    back_h = rng.uniform(0.12, 0.25)
    seat_ys = g.span(seat_h - seat_t, seat_h, 'y')
    top = _column(g, 1, (0.0, 0.0, 0.0), seat_ys, size)
    parts: list[Part] = [_round(g, 1, top, fabric, square=not round_seat)]
    half = 0.5 * (top[0][1] - top[0][0]) * (0.7 if round_seat else 0.9)
    xs, zs = g.span(-half, half, 'x'), g.span(-half, half, 'z')
    lw = g.length(leg_w)
    parts += _four_legs(g, xs, zs, (floor, seat_ys[0]), 0.0, lw, frame)
    parts += _foot_ring(g, xs, zs, g.span(ring_y, ring_y + leg_w, 'y'), lw, frame)
    if back:  # two posts over the rear legs and a rail
        top_y = g.plane(seat_ys[1] + back_h, 'y')
        for sx in (-1, 1):
            parts.append(_block(g, _inside(xs, 0.0, lw, sx), (seat_ys[1], top_y),
                                _inside(zs, 0.0, lw, -1), frame))
        parts.append(_block(g, xs, (g.plane(top_y - 0.06, 'y'), top_y),
                            _inside(zs, 0.0, lw, -1), frame))
    return parts


def _framed_chair(rng: np.random.Generator, g: Lattice, floor: float, fabric: Colour,
                  frame: Colour, *, sled: bool) -> list[Part]:
    """Make a chair on a sled frame (runners on the floor) or with a high back and headrest."""
    seat_w = rng.uniform(0.4, 0.58)
    seat_d = rng.uniform(0.4, 0.55)
    seat_h = rng.uniform(0.4, 0.5)
    seat_t = rng.uniform(0.02, 0.06)
    back_h = rng.uniform(0.3, 0.5) if sled else rng.uniform(0.6, 0.95)
    back_t = rng.uniform(0.02, 0.05)
    leg_w = rng.uniform(0.02, 0.04)
    tilt = math.radians(rng.uniform(3.0, 15.0))
    arms = rng.random() < 0.3
    headrest = rng.random() < 0.5
    xs, zs = g.span(-seat_w / 2, seat_w / 2, 'x'), g.span(-seat_d / 2, seat_d / 2, 'z')
    seat_ys = g.span(seat_h - seat_t, seat_h, 'y')
    lw = g.length(leg_w)
    parts: list[Part] = [_block(g, xs, seat_ys, zs, fabric)]
    if sled:  # each side: a runner on the floor, two uprights, a rail under the seat
        runner_ys = g.span(floor, floor + leg_w, 'y')
        for sx in (-1, 1):
            side_xs = _inside(xs, 0.0, lw, sx)
            parts.append(_block(g, side_xs, runner_ys, (zs[0], zs[1]), frame))
            for sz in (-1, 1):
                parts.append(_block(g, side_xs, (runner_ys[1], seat_ys[0]),
                                    _inside(zs, 0.0, lw, sz), frame))
            if arms:
                arm_ys = g.span(seat_h + 0.2, seat_h + 0.2 + leg_w, 'y')
                parts.append(_block(g, side_xs, arm_ys, zs, frame))
                parts.append(_block(g, side_xs, (seat_ys[1], arm_ys[0]),
                                    _inside(zs, 0.0, lw, 1), frame))
    else:
        parts += _four_legs(g, xs, zs, (floor, seat_ys[0]), 0.0, lw, frame, square=False)
    # The back leans back about x, two voxels thick at least, its lower front edge on the
    # seat's rear edge (as the classic tilted back).
    t = g.length(back_t, least=2)
    top = g.plane(seat_h + back_h, 'y')
    up = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    # Its top front edge, the highest, on the voxel face ``top``.
    length = (top - seat_ys[0] - 0.5 * t * math.sin(tilt)) / math.cos(tilt)
    back_xs = xs if sled else g.span(0.95 * xs[0], 0.95 * xs[1], 'x')
    mid_x = 0.5 * sum(back_xs)
    centre = np.array([mid_x, seat_ys[0], zs[0] + t / 2]) + up * length / 2
    parts.append(_box(centre, (back_xs[1] - back_xs[0], length, t), fabric, _rot('x', -tilt)))
    if headrest and not sled:
        head_xs = g.span(0.6 * back_xs[0], 0.6 * back_xs[1], 'x')
        head = np.array([0.0, seat_ys[0], zs[0] + t]) + up * length
        head[0] = 0.5 * sum(head_xs)
        parts.append(_box(head + np.array([0.0, -0.08, 0.04 * math.cos(tilt)]),
                          (head_xs[1] - head_xs[0], 0.12, max(0.06, 2 * g.voxel)), fabric,
                          _rot('x', -tilt)))
    return parts


# ---------------------------------------------------------------------------------------------
# Lamps

def _wide_lamp(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.2, 'hollow': 0.3, 'arc': 0.15, 'desk': 0.2,
                         'tripod': 0.15})
    if style == 'classic':
        return _lamp(rng, g)
    metal = _grey(rng, 0.15, 0.85) if rng.random() < 0.6 else _any_colour(rng)
    shade_c = _colour(rng, (0.05, 0.16), (0.1, 0.5), (0.75, 1.0)) \
        if rng.random() < 0.6 else _any_colour(rng)
    floor = g.plane(0.0, 'y')
    if style == 'hollow':
        return _hollow_shade_lamp(rng, g, floor, metal, shade_c)
    if style == 'arc':
        return _arc_lamp(rng, g, floor, metal, shade_c)
    if style == 'desk':
        return _desk_arm_lamp(rng, g, floor, metal, shade_c)
    return _tripod_lamp(rng, g, floor, metal, shade_c)


def _pole(g: Lattice, d: float) -> tuple[Span, Span]:
    """Return the x and z spans of a square pole two voxels wide at least, on the y axis."""
    return _hub(g, max(d, 2 * g.voxel))


def _bulb(g: Lattice, pole: tuple[Span, Span], y: float, r: float) -> Part:
    return _sphere((0.5 * sum(pole[0]), y, 0.5 * sum(pole[1])), max(r, g.voxel),
                   (1.0, 0.97, 0.85))


def _spider(g: Lattice, centre: tuple[float, float], y: float, radius: float, colour: Colour
            ) -> list[Part]:
    """Make the cross of two thin bars that holds a hollow shade of ``radius`` at height y."""
    ys = g.span(y - 0.5 * g.voxel, y + 0.5 * g.voxel, 'y')
    x0, z0 = centre
    return [_block(g, g.span(x0 - radius, x0 + radius, 'x'), ys, g.column(z0, g.voxel, 'z'),
                   colour),
            _block(g, g.column(x0, g.voxel, 'x'), ys, g.span(z0 - radius, z0 + radius, 'z'),
                   colour)]


def _wall(g: Lattice, xs: Span, zs: Span, ys: Span, taper: float, wall: float,
          colour: Colour, *, sides: int = 12) -> tuple[list[Part], bool]:
    """Make a hollow round wall (:func:`_ring`) filling the snapped spans, and say if hollow.

    ``taper`` is the top's radius over the bottom's; the wider end fills ``xs`` × ``zs``. Where
    the grid is too coarse for a cavity as wide as two walls, the part is solid instead.
    """
    r_out = 0.5 * (xs[1] - xs[0])
    r_bottom, r_top = (r_out, r_out * taper) if taper <= 1.0 else (r_out / taper, r_out)
    if min(r_bottom, r_top) < 2 * g.length(wall, least=2):
        return [_round(g, 1, (xs, ys, zs), colour, taper=taper)], False
    centre = (0.5 * sum(xs), 0.5 * sum(zs))
    return _ring(g, centre, ys, r_bottom, r_top, wall, colour, sides=sides), True


def _shade(g: Lattice, xs: Span, zs: Span, ys: Span, taper: float, wall: float,
           colour: Colour, holder_y: float, holder: Colour) -> list[Part]:
    """Make a lamp shade (:func:`_wall`), held by a spider at ``holder_y`` when hollow."""
    parts, hollow = _wall(g, xs, zs, ys, taper, wall, colour)
    if hollow:
        r_out = 0.5 * (xs[1] - xs[0])
        r_bottom = r_out if taper <= 1.0 else r_out / taper
        r = r_bottom * (1.0 + (taper - 1.0) * (holder_y - ys[0]) / (ys[1] - ys[0]))
        parts += _spider(g, (0.5 * sum(xs), 0.5 * sum(zs)), holder_y, r - g.voxel, holder)
    return parts


def _hollow_shade_lamp(rng: np.random.Generator, g: Lattice, floor: float, metal: Colour,
                       shade_c: Colour) -> list[Part]:
    """Make a table or floor lamp whose shade is a hollow drum or cone, a bulb inside."""
    floor_lamp = rng.random() < 0.45
    height = rng.uniform(1.2, 1.7) if floor_lamp else rng.uniform(0.35, 0.65)
    shade_h = height * (rng.uniform(0.12, 0.22) if floor_lamp else rng.uniform(0.3, 0.45))
    shade_rb = shade_h * rng.uniform(0.6, 1.3)
    shade_rt = shade_rb * rng.uniform(0.55, 1.0)
    wall = rng.uniform(0.005, 0.02)
    base_r = rng.uniform(0.12, 0.2) if floor_lamp else rng.uniform(0.07, 0.14)
    pole_d = rng.uniform(0.02, 0.04)
    body = rng.random() < 0.4 and not floor_lamp  # a vase-like body instead of a pole
    body_r = base_r * rng.uniform(0.8, 1.3)
    pole = _pole(g, pole_d)
    base_ys = g.span(floor, floor + 0.03, 'y')
    parts: list[Part] = [_round(g, 1, (g.around(2 * base_r, pole[0]), base_ys,
                                       g.around(2 * base_r, pole[1])), metal)]
    shade_ys = g.span(height - shade_h, height, 'y')
    bulb_y = shade_ys[0] + 0.35 * shade_h
    if body:
        body_ys = (base_ys[1], g.plane(shade_ys[0] - 0.1 * height, 'y'))
        parts.append(_round(g, 1, (g.around(2 * body_r, pole[0]), body_ys,
                                   g.around(2 * body_r, pole[1])), metal, taper=0.6))
        parts.append(_block(g, pole[0], (body_ys[1], g.plane(bulb_y, 'y')), pole[1], metal))
    else:
        parts.append(_block(g, pole[0], (base_ys[1], g.plane(bulb_y, 'y')), pole[1], metal))
    parts.append(_bulb(g, pole, bulb_y, 0.25 * shade_rt))
    d = _inner(g, 2 * max(shade_rb, shade_rt))
    parts += _shade(g, g.around(d, pole[0]), g.around(d, pole[1]), shade_ys,
                    shade_rt / shade_rb, wall, shade_c, bulb_y, metal)
    return parts


def _arm_chain(points: list[np.ndarray], radius: float, colour: Colour) -> list[Part]:
    """Make rods from point to point, a sphere at each inner joint (a bent or curved arm)."""
    parts: list[Part] = []
    for k in range(len(points) - 1):
        parts.append(_rod(points[k], points[k + 1], radius, colour))
        if k > 0:
            parts.append(_sphere(points[k], radius, colour))
    return parts


def _arc_lamp(rng: np.random.Generator, g: Lattice, floor: float, metal: Colour,
              shade_c: Colour) -> list[Part]:
    """Make a floor lamp whose pole curves over forwards, a shade hanging from its end."""
    height = rng.uniform(1.2, 1.8)
    rise = height * rng.uniform(0.45, 0.65)
    radius = height - rise - rng.uniform(0.05, 0.15)
    sweep = math.radians(rng.uniform(110.0, 160.0))
    shade_h = rng.uniform(0.12, 0.25)
    shade_r = shade_h * rng.uniform(0.8, 1.6)
    base = rng.uniform(0.15, 0.25)
    pole_d = rng.uniform(0.025, 0.045)
    hollow = rng.random() < 0.6
    pole = _pole(g, pole_d)
    base_ys = g.span(floor, floor + rng.uniform(0.03, 0.06), 'y')
    parts: list[Part] = [_block(g, g.around(_inner(g, 2 * base), pole[0]), base_ys,
                                g.around(_inner(g, 2 * base), pole[1]), metal)]
    rise_y = g.plane(rise, 'y')
    parts.append(_block(g, pole[0], (base_ys[1], rise_y), pole[1], metal))
    # The arc is not snapped: it starts where the sizing pass had the pole's top, its rods a
    # voxel thick at least whatever the lattice (a thirtieth of more than the lamp's extent),
    # so the snapped lamp keeps the bounds its grid was fitted to.
    r = max(0.5 * pole_d, max(height, 2 * radius + 2 * shade_r + base) / 30.0)
    centre = np.array([0.0, rise, radius])
    arc = [centre + radius * np.array([0.0, math.sin(a), -math.cos(a)])
           for a in np.linspace(0.0, sweep, 7)]
    parts += _arm_chain(arc, r, metal)
    end = arc[-1]
    parts.append(_sphere(end, r, metal))
    # The shade hangs on a cable from the arc's end, both on the shade's snapped axis.
    d = _inner(g, 2 * shade_r)
    xs, zs = g.column(end[0], d, 'x'), g.column(end[2], d, 'z')
    ys = (g.plane(end[1] - 0.06 - shade_h, 'y'), g.plane(end[1] - 0.06, 'y'))
    holder_y = ys[1] - 0.4 * shade_h
    cable = (g.around(2 * r, xs), g.around(2 * r, zs))
    parts.append(_block(g, cable[0], (g.plane(holder_y, 'y'), g.plane(end[1], 'y')), cable[1],
                        metal))
    if hollow:
        parts += _shade(g, xs, zs, ys, 0.6, 0.01, shade_c, holder_y, metal)
        parts.append(_sphere((0.5 * sum(xs), holder_y, 0.5 * sum(zs)),
                             max(0.3 * shade_r, g.voxel), (1.0, 0.97, 0.85)))
    else:
        parts.append(_round(g, 1, (xs, ys, zs), shade_c, taper=0.5))
    return parts


def _desk_arm_lamp(rng: np.random.Generator, g: Lattice, floor: float, metal: Colour,
                   shade_c: Colour) -> list[Part]:
    """Make a jointed desk lamp: two arm segments and a cone head pointing down and forward.

    Arm and head are not snapped: they lie where the sizing pass put them, their rods a
    thirtieth of the lamp's largest extent thick at least, which is a voxel or more whatever
    the lattice, so the snapped lamp keeps the bounds its grid was fitted to.
    """
    lower = rng.uniform(0.3, 0.45)
    upper = lower * rng.uniform(0.8, 1.2)
    a1 = math.radians(rng.uniform(55.0, 85.0))  # the lower arm's angle above the floor
    a2 = math.radians(rng.uniform(-30.0, 25.0))  # the upper arm's, forwards
    head_len = rng.uniform(0.1, 0.18)
    head_r = head_len * rng.uniform(0.5, 0.9)
    aim = math.radians(rng.uniform(40.0, 80.0))  # the head's axis below horizontal
    base_r = rng.uniform(0.08, 0.13)
    rod_r = rng.uniform(0.008, 0.015)
    base_h = rng.uniform(0.02, 0.05)
    p0 = np.array([0.0, base_h, -0.3 * lower])
    p1 = p0 + lower * np.array([0.0, math.sin(a1), math.cos(a1)])
    p2 = p1 + upper * np.array([0.0, math.sin(a2), math.cos(a2)])
    axis = np.array([0.0, -math.sin(aim), math.cos(aim)])
    ends = np.stack([p0, p1, p2, p2 + axis * head_len])
    extent = float(np.ptp(ends, axis=0).max()) + 2 * (head_r + base_r)  # more than the lamp's
    r = max(rod_r, extent / 30.0)
    p0, p1, p2 = (p + (0.0, r, 0.0) for p in (p0, p1, p2))
    base_ys = g.span(floor, floor + base_h, 'y')
    base = (g.column(p0[0], _inner(g, 2 * base_r), 'x'),
            g.column(p0[2], _inner(g, 2 * base_r), 'z'))
    parts: list[Part] = [_round(g, 1, (base[0], base_ys, base[1]), metal)]
    parts += _arm_chain([p0, p1, p2], r, metal)
    parts.append(_sphere(p0, 1.5 * r, metal))
    head_len = max(head_len, 2 * r)
    parts.append(_frustum(p2 + axis * head_len / 2, max(0.3 * head_r, r), head_r, head_len,
                          shade_c, _frame_y(axis)))
    return parts


def _tripod_lamp(rng: np.random.Generator, g: Lattice, floor: float, metal: Colour,
                 shade_c: Colour) -> list[Part]:
    """Make a floor lamp on three splayed legs, a hollow drum shade on a short pole."""
    height = rng.uniform(1.2, 1.7)
    hub_y = height * rng.uniform(0.45, 0.65)
    spread = rng.uniform(0.2, 0.35)
    shade_h = rng.uniform(0.2, 0.35)
    shade_r = shade_h * rng.uniform(0.7, 1.3)
    leg_r = rng.uniform(0.01, 0.02)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    wood = _wood(rng) if rng.random() < 0.6 else metal
    pole = _pole(g, 2 * leg_r)
    x0, z0 = 0.5 * sum(pole[0]), 0.5 * sum(pole[1])
    hub_top = g.plane(hub_y, 'y')
    r = max(leg_r, g.voxel)
    parts: list[Part] = []
    for k in range(3):
        a = phase + 2.0 * math.pi * k / 3
        foot = np.array([x0 + spread * math.cos(a), floor + r, z0 + spread * math.sin(a)])
        parts.append(_rod(foot, (x0, hub_top, z0), r, wood))
    shade_ys = g.span(height - shade_h, height, 'y')
    bulb_y = shade_ys[0] + 0.4 * shade_h
    parts.append(_block(g, pole[0], (g.plane(hub_top - 0.05, 'y'), g.plane(bulb_y, 'y')),
                        pole[1], metal))
    parts.append(_bulb(g, pole, bulb_y, 0.25 * shade_r))
    d = _inner(g, 2 * shade_r)
    parts += _shade(g, g.around(d, pole[0]), g.around(d, pole[1]), shade_ys, 1.0, 0.01,
                    shade_c, bulb_y, metal)
    return parts


# ---------------------------------------------------------------------------------------------
# Airplanes

def _wide_airplane(rng: np.random.Generator, g: Lattice) -> list[Part]:
    if rng.random() < 0.15:
        return _airplane(rng, g)
    body = _grey(rng, 0.6, 0.95) if rng.random() < 0.6 else _any_colour(rng)
    accent = _any_colour(rng) if rng.random() < 0.5 else body
    # A shorter length with the classic radii: fatter fuselages (airliners, cargo planes).
    length = rng.uniform(0.7, 1.15)
    hull = _fuselage(rng, g, length, body)
    wings = _wide_wings(rng, g, hull, length, accent)
    engines = _style(rng, {'wing': 0.45, 'rear': 0.2, 'props': 0.2, 'none': 0.15})
    tail = _style(rng, {'classic': 0.6, 'twin': 0.2, 'tall': 0.2})
    parts = [*hull.parts, *wings.parts]
    if engines == 'wing':
        parts += _engines(rng, g, hull, wings)
    elif engines == 'rear':
        parts += _rear_engines(rng, g, hull, length)
    elif engines == 'props':
        parts += _propellers(rng, g, hull, wings)
    if tail == 'classic':
        parts += _tail_planes(rng, g, hull, wings, length, accent)
    else:
        parts += _fin_tail(rng, g, hull, wings, length, accent, twin=tail == 'twin')
    return parts


def _wide_wings(rng: np.random.Generator, g: Lattice, hull: _Fuselage, length: float,
                accent: Colour) -> _Wings:
    """Make straight, swept or delta wings, low, mid or high on the fuselage."""
    axis, radius = hull.axis, hull.radius
    delta = rng.random() < 0.15
    span = (rng.uniform(0.45, 0.8) if delta else rng.uniform(0.6, 1.5)) * length
    chord = (rng.uniform(0.3, 0.45) if delta else rng.uniform(0.08, 0.26)) * length
    wing_t = rng.uniform(0.015, 0.045)
    sweep = math.radians(rng.uniform(45.0, 62.0) if delta else
                         (rng.uniform(0.0, 8.0) if rng.random() < 0.35 else
                          rng.uniform(15.0, 42.0)))
    height = rng.choice([-0.7, 0.0, 0.85])
    wing_y = axis[1] + height * radius
    if height > 0:  # a high wing lies on top of the fuselage
        wing_y = axis[1] + radius - wing_t / 2
    wing_ys = g.span(wing_y - wing_t / 2, wing_y + wing_t / 2, 'y')
    wing_z = hull.z_mid + rng.uniform(-0.12, 0.1) * length
    semi = span / 2
    parts = []
    # A delta is three plates sharing the leading edge, shorter in chord towards the tip.
    plates = ((1.0, 1.0),) if not delta else ((1.0, 0.35), (0.66, 0.7), (0.33, 1.0))
    for reach, fraction in plates:
        c = max(chord * fraction, 2 * g.voxel)
        z = wing_z + 0.5 * (chord - c)
        for side in (-1, 1):
            parts.append(_swept(axis[0], wing_ys, z, semi * reach, c, side * sweep, side,
                                accent))
    return _Wings(span, chord, wing_t, sweep, wing_ys, wing_z, tuple(parts))


def _rear_engines(rng: np.random.Generator, g: Lattice, hull: _Fuselage, length: float
                  ) -> list[Part]:
    """Hang two engines on pylons beside the rear fuselage, as business jets carry them."""
    eng_d = 2 * rng.uniform(0.03, 0.05) * length
    eng_len = rng.uniform(0.12, 0.2) * length
    grey = _grey(rng, 0.3, 0.7)
    axis, radius = hull.axis, hull.radius
    z = hull.tail_z + 0.45 * (hull.z_mid - hull.tail_z)
    y = axis[1] + 0.35 * radius
    parts: list[Part] = []
    for side in (-1, 1):
        x = axis[0] + side * (radius + 0.5 * eng_d + 0.01)
        eng_xs = g.column(x, eng_d, 'x')
        eng_ys = g.column(y, eng_d, 'y')
        eng_zs = g.span(z - eng_len / 2, z + eng_len / 2, 'z')
        parts.append(_round(g, 2, (eng_xs, eng_ys, eng_zs), grey))
        inner = eng_xs[0] if side > 0 else eng_xs[1]
        pylon_xs = (min(inner, axis[0]), max(inner, axis[0]))
        parts.append(_block(g, pylon_xs, g.span(y - 0.01, y + 0.01, 'y'),
                            g.around(0.5 * eng_len, eng_zs), grey))
    return parts


def _propellers(rng: np.random.Generator, g: Lattice, hull: _Fuselage, wings: _Wings
                ) -> list[Part]:
    """Put two or four nacelles on the wings' leading edge, a propeller disc before each."""
    pairs = int(rng.choice([1, 2]))
    nac_d = 2 * rng.uniform(0.025, 0.045)
    nac_len = rng.uniform(0.1, 0.16)
    prop_r = rng.uniform(0.06, 0.1)
    grey = _grey(rng, 0.2, 0.6)
    blade = _grey(rng, 0.05, 0.3)
    semi = wings.span / 2
    parts: list[Part] = []
    for k in range(pairs):
        frac = (0.3, 0.6)[k] if pairs == 2 else 0.35
        for side in (-1, 1):
            x = hull.axis[0] + side * semi * frac * math.cos(wings.sweep)
            lead = wings.z - semi * frac * math.sin(wings.sweep) + 0.5 * wings.chord
            nac_xs = g.column(x, nac_d, 'x')
            nac_ys = g.column(0.5 * sum(wings.ys), nac_d, 'y')
            nac_zs = g.span(lead - 0.5 * nac_len, lead + 0.5 * nac_len, 'z')
            parts.append(_round(g, 2, (nac_xs, nac_ys, nac_zs), grey))
            disc_zs = (nac_zs[1], nac_zs[1] + g.length(0.01))
            parts.append(_round(g, 2, (g.around(2 * prop_r, nac_xs), g.around(2 * prop_r, nac_ys),
                                       disc_zs), blade))
    return parts


def _fin_tail(rng: np.random.Generator, g: Lattice, hull: _Fuselage, wings: _Wings,
              length: float, accent: Colour, *, twin: bool) -> list[Part]:
    """Make stabilisers with a fin at each tip (twin) or one tall upright fin (no sweep)."""
    axis, tail_z = hull.axis, hull.tail_z
    stab_span = rng.uniform(0.3, 0.5) * wings.span
    stab_chord = max(rng.uniform(0.5, 0.9) * wings.chord, 2 * g.voxel)
    stab_t = wings.thickness * 0.8
    fin_h = rng.uniform(0.12, 0.25) * length
    fin_chord = rng.uniform(0.1, 0.2) * length
    sweep = wings.sweep * 0.8
    stab_z = tail_z + stab_chord * 0.6
    stab_ys = g.span(hull.tail_end[1] - stab_t / 2, hull.tail_end[1] + stab_t / 2, 'y')
    parts: list[Part] = []
    for side in (-1, 1):
        parts.append(_swept(axis[0], stab_ys, stab_z, stab_span / 2, stab_chord, side * sweep,
                            side, accent))
    fin_t = g.length(stab_t)
    if twin:
        for side in (-1, 1):
            tip = np.array([axis[0], 0.0, stab_z]) + _rot('y', side * sweep) @ np.array(
                [side * stab_span / 2, 0.0, 0.0])
            fin_xs = g.column(tip[0] - side * fin_t / 2, fin_t, 'x')
            fin_zs = g.span(tip[2] - fin_chord / 2, tip[2] + fin_chord / 2, 'z')
            parts.append(_block(g, fin_xs, (g.plane(stab_ys[0] - 0.3 * fin_h, 'y'),
                                            g.plane(stab_ys[1] + 0.7 * fin_h, 'y')), fin_zs,
                                accent))
        return parts
    fin_xs = g.column(axis[0], fin_t, 'x')
    fin_zs = g.span(tail_z + 0.02, tail_z + 0.02 + fin_chord, 'z')
    parts.append(_block(g, fin_xs, (stab_ys[1], g.plane(stab_ys[1] + fin_h, 'y')), fin_zs,
                        accent))
    return parts


# ---------------------------------------------------------------------------------------------
# Cars

def _wide_car(rng: np.random.Generator, g: Lattice) -> list[Part]:
    kind = _style(rng, {'classic': 0.12, 'sedan': 0.18, 'hatch': 0.14, 'suv': 0.16,
                        'sports': 0.14, 'van': 0.1, 'pickup': 0.08, 'lorry': 0.08})
    if kind == 'classic':
        return _car(rng, g)
    paint = _any_colour(rng)
    glass = _colour(rng, (0.55, 0.65), (0.2, 0.5), (0.12, 0.3))
    tyre = _grey(rng, 0.05, 0.15)
    length = 1.0
    width = rng.uniform(0.36, 0.5)
    body_h = {'suv': rng.uniform(0.2, 0.3), 'sports': rng.uniform(0.1, 0.15),
              'lorry': rng.uniform(0.22, 0.3)}.get(kind, rng.uniform(0.14, 0.22))
    wheel_r = rng.uniform(0.09, 0.13) if kind in ('suv', 'lorry') else rng.uniform(0.07, 0.1)
    clearance = wheel_r * rng.uniform(0.5, 1.0)
    cab_h = {'suv': rng.uniform(0.16, 0.22), 'sports': rng.uniform(0.08, 0.12),
             'van': rng.uniform(0.25, 0.35), 'lorry': rng.uniform(0.22, 0.3)}.get(
        kind, rng.uniform(0.12, 0.18))
    # The cabin's floor and roof lengths along z (front +z): where the windscreen's foot and
    # top and the rear window's top and foot lie.
    if kind == 'sedan':
        foot_f, top_f = rng.uniform(0.1, 0.2), rng.uniform(-0.05, 0.05)
        top_r, foot_r = rng.uniform(-0.25, -0.15), rng.uniform(-0.35, -0.28)
    elif kind == 'hatch':
        foot_f, top_f = rng.uniform(0.1, 0.2), rng.uniform(-0.02, 0.06)
        top_r, foot_r = -0.5 + rng.uniform(0.03, 0.08), -0.5 + rng.uniform(0.0, 0.04)
    elif kind == 'suv':
        foot_f, top_f = rng.uniform(0.15, 0.25), rng.uniform(0.05, 0.13)
        top_r, foot_r = -0.5 + rng.uniform(0.02, 0.06), -0.5
    elif kind == 'sports':
        foot_f, top_f = rng.uniform(0.0, 0.1), rng.uniform(-0.2, -0.1)
        top_r, foot_r = rng.uniform(-0.3, -0.22), rng.uniform(-0.48, -0.4)
    elif kind == 'van':
        foot_f, top_f = rng.uniform(0.3, 0.4), rng.uniform(0.22, 0.3)
        top_r, foot_r = -0.5, -0.5
    elif kind == 'pickup':
        foot_f, top_f = rng.uniform(0.12, 0.2), rng.uniform(0.05, 0.1)
        top_r, foot_r = rng.uniform(-0.12, -0.06), rng.uniform(-0.14, -0.1)
    else:  # lorry: an upright cab at the front, a cargo box behind
        foot_f, top_f = 0.48, rng.uniform(0.4, 0.45)
        top_r = foot_r = rng.uniform(0.12, 0.2)
    floor = g.plane(0.0, 'y')
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-length / 2, length / 2, 'z')
    body_ys = g.span(clearance, clearance + body_h, 'y')
    parts: list[Part] = [_block(g, xs, body_ys, zs, paint)]
    cab_w = width * rng.uniform(0.8, 0.94)
    cab_xs = g.span(-cab_w / 2, cab_w / 2, 'x')
    roof_t = rng.uniform(0.015, 0.03)
    parts += _cabin(g, cab_xs, body_ys[1], cab_h, roof_t, (foot_f, top_f, top_r, foot_r),
                    paint, glass)
    if kind == 'lorry':
        box_ys = (body_ys[1], g.plane(body_ys[1] + cab_h * rng.uniform(1.1, 1.4), 'y'))
        box_zs = (zs[0], g.plane(foot_r - 0.03, 'z'))
        parts.append(_block(g, xs, box_ys, box_zs, _any_colour(rng)))
    if kind == 'pickup':  # bed walls behind the cab
        wall = g.length(0.02)
        wall_ys = g.span(body_ys[1], body_ys[1] + body_h * 0.4, 'y')
        bed_zs = (zs[0], g.plane(foot_r, 'z'))
        for sx in (-1, 1):
            parts.append(_block(g, _inside(xs, 0.0, wall, sx), wall_ys, bed_zs, paint))
        parts.append(_block(g, xs, wall_ys, (zs[0], zs[0] + wall), paint))
    if kind == 'sports' and rng.random() < 0.5:
        parts += _spoiler(g, width, body_ys[1], zs, paint)
    axles = [rng.uniform(0.28, 0.36), -rng.uniform(0.28, 0.36)]
    if kind == 'lorry':
        axles.append(axles[1] + 2.3 * wheel_r)
    wheel_w = rng.uniform(0.05, 0.09)
    parts += _wheels(g, xs, floor, wheel_r, wheel_w, axles, tyre, _grey(rng, 0.55, 0.9))
    return parts


def _cabin(g: Lattice, xs: Span, base: float, height: float, roof_t: float,
           z: tuple[float, float, float, float], paint: Colour, glass: Colour) -> list[Part]:
    """Make a glasshouse: a glass core, sloping windscreen and rear window, a roof on top.

    ``z`` holds the windscreen's foot and top and the rear window's top and foot. Each window
    is a panel turned about x whose outer face runs from its foot on the body to the roof's
    edge; it is thick enough to fill the wedge between that face and the core (two voxels at
    least), and its other faces lie inside the body or the core.
    """
    foot_f, top_f, top_r, foot_r = z
    roof_ys = g.span(base + height - roof_t, base + height, 'y')
    top_zs = g.span(top_r, top_f, 'z')
    parts: list[Part] = [_block(g, xs, (base, roof_ys[0]), top_zs, glass),
                         _block(g, xs, roof_ys, top_zs, paint)]
    top_y = roof_ys[0]
    for foot, top, sign in ((foot_f, top_zs[1], 1.0), (foot_r, top_zs[0], -1.0)):
        run = sign * (foot - top)
        if run <= g.voxel:  # upright: the core is the window
            continue
        rise = top_y - base
        slope = math.hypot(run, rise)
        u = np.array([0.0, rise, -sign * run]) / slope  # up the window, from its foot
        inward = np.array([0.0, -run, -sign * rise]) / slope  # into the cabin
        thick = max(run * rise / slope, 2 * g.voxel)
        p0 = np.array([0.5 * sum(xs), base, foot])
        centre = p0 + 0.5 * slope * u + 0.5 * thick * inward
        rotation = np.stack([np.array([1.0, 0.0, 0.0]), u, np.cross([1.0, 0.0, 0.0], u)], axis=1)
        parts.append(_box(centre, (xs[1] - xs[0], slope, thick), glass, rotation))
    return parts


# ---------------------------------------------------------------------------------------------
# Mugs

def _wide_mug(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.2, 'hollow': 0.35, 'cup': 0.15, 'travel': 0.15,
                         'teacup': 0.15})
    if style == 'classic':
        return _mug(rng, g)
    colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.7, 0.95)
    inside = colour if rng.random() < 0.5 else _grey(rng, 0.85, 0.98)
    height = 1.0
    radius = {'hollow': rng.uniform(0.32, 0.55), 'cup': rng.uniform(0.3, 0.45),
              'travel': rng.uniform(0.18, 0.26), 'teacup': rng.uniform(0.55, 0.8)}[style]
    taper = {'cup': rng.uniform(1.15, 1.4), 'teacup': rng.uniform(1.1, 1.35),
             'travel': rng.uniform(0.85, 1.0)}.get(style, rng.uniform(0.95, 1.1))
    wall = rng.uniform(0.02, 0.05)
    handle = style in ('hollow', 'teacup') or (style == 'travel' and rng.random() < 0.4)
    square_handle = rng.random() < 0.3
    r_top = radius * taper
    r_out = max(radius, r_top)
    body = _column(g, 1, (0.0, 0.0, 0.0), g.span(0.0, height, 'y'), 2 * r_out)
    scale = 0.5 * (body[0][1] - body[0][0]) / r_out  # the snapped radii
    r_bottom, r_top = radius * scale, r_top * scale
    x0, z0 = 0.5 * sum(body[0]), 0.5 * sum(body[2])
    floor, top = body[1]
    base_t = g.length(0.06 * height)
    base_w = 2 * min(r_bottom, r_top) - g.length(wall, least=2)  # into the wall's panels
    parts: list[Part] = [_round(g, 1, (g.around(base_w, body[0]), (floor, floor + base_t),
                                       g.around(base_w, body[2])), inside)]
    if style == 'travel':  # closed by a lid: solid, as a filled grid holds a closed cavity
        lid_ys = g.span(top - 0.08 * height, top, 'y')
        parts.append(_round(g, 1, (body[0], (floor, lid_ys[0]), body[2]), colour,
                            taper=r_top / r_bottom))
        parts.append(_round(g, 1, (body[0], lid_ys, body[2]), _grey(rng, 0.1, 0.4)))
    else:
        parts += _wall(g, body[0], body[2], (floor, top), r_top / r_bottom, wall, colour,
                       sides=16)[0]
    if style == 'teacup':  # a saucer under it
        saucer_d = 2 * r_top * rng.uniform(1.25, 1.5)
        saucer_ys = (floor, floor + g.length(0.05))
        parts.append(_round(g, 1, (g.around(saucer_d, body[0]), saucer_ys,
                                   g.around(saucer_d, body[2])), colour))
    if handle:
        parts += _mug_handle(rng, g, (x0, z0), (floor, top), r_bottom, r_top, colour,
                             square=square_handle, r_design=0.5 * (radius + radius * taper))
    return parts


def _mug_handle(rng: np.random.Generator, g: Lattice, axis: tuple[float, float], ys: Span,
                r_bottom: float, r_top: float, colour: Colour, *, square: bool,
                r_design: float) -> list[Part]:
    """Make a handle on the +x side: a D of rods (two voxels thick) or a square of blocks.

    Its outer end lies on the voxel face nearest to where the unsnapped body (axis at x = 0,
    mean radius ``r_design``) would have it, as the classic mug's does.
    """
    height = ys[1] - ys[0]
    reach = rng.uniform(0.15, 0.3) * height
    span = rng.uniform(0.3, 0.6) * height
    centre_y = ys[0] + height * rng.uniform(0.42, 0.58)
    tube = rng.uniform(0.03, 0.06) * height
    x0, z0 = axis
    r_mid = 0.5 * (r_bottom + r_top)
    outer = g.plane(r_design + reach, 'x')
    if square:
        t = g.length(tube)
        bar_xs = (outer - t, outer)
        zs = g.column(z0, 2 * tube, 'z')
        y_lo, y_hi = g.plane(centre_y - span / 2, 'y'), g.plane(centre_y + span / 2, 'y')
        wall_x = x0 + r_mid - 0.5 * g.voxel
        return [_block(g, bar_xs, (y_lo, y_hi), zs, colour),
                _block(g, (g.plane(wall_x, 'x'), bar_xs[0]), (y_lo, y_lo + t), zs, colour),
                _block(g, (g.plane(wall_x, 'x'), bar_xs[0]), (y_hi - t, y_hi), zs, colour)]
    tube = max(tube, g.voxel)
    x_wall = x0 + r_mid - tube
    reach = outer - tube - x_wall
    points = [np.array([x_wall + reach * math.cos(a), centre_y + 0.5 * span * math.sin(a), z0])
              for a in np.linspace(-math.pi / 2, math.pi / 2, 7)]
    return _arm_chain(points, tube, colour)


# ---------------------------------------------------------------------------------------------
# Bottles

def _wide_bottle(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.3, 'wine': 0.2, 'jug': 0.15, 'flask': 0.15,
                         'jar': 0.2})
    if style == 'classic':
        return _bottle(rng, g)
    colour = _colour(rng, (0.0, 1.0), (0.3, 0.9), (0.25, 0.9))
    cap_colour = _any_colour(rng) if rng.random() < 0.7 else _grey(rng, 0.6, 0.9)
    height = 1.0
    radius, body_h, neck_r, neck_h, cap_h = {
        'wine': (rng.uniform(0.09, 0.13), rng.uniform(0.55, 0.65), rng.uniform(0.03, 0.045),
                 rng.uniform(0.18, 0.25), rng.uniform(0.04, 0.07)),
        'jug': (rng.uniform(0.22, 0.32), rng.uniform(0.5, 0.7), rng.uniform(0.06, 0.1),
                rng.uniform(0.05, 0.12), rng.uniform(0.04, 0.08)),
        'flask': (rng.uniform(0.18, 0.3), rng.uniform(0.55, 0.75), rng.uniform(0.04, 0.07),
                  rng.uniform(0.05, 0.12), rng.uniform(0.05, 0.1)),
        'jar': (rng.uniform(0.3, 0.45), rng.uniform(0.55, 0.75), rng.uniform(0.6, 0.85),
                rng.uniform(0.02, 0.06), rng.uniform(0.08, 0.14)),
    }[style]
    if style == 'jar':  # a wide mouth: its neck a share of the body
        neck_r *= radius
    depth = rng.uniform(0.35, 0.6)  # a flask's body is flat
    floor = g.plane(0.0, 'y')
    axis = (g.column(0.0, 2 * radius, 'x'), g.column(0.0, 2 * radius, 'z'))
    body_ys = (floor, g.plane(body_h, 'y'))
    shoulder_top = g.plane(height - neck_h - cap_h, 'y')
    cap_ys = (g.plane(height - cap_h, 'y'), g.plane(height, 'y'))
    neck = (g.around(2 * neck_r, axis[0]), g.around(2 * neck_r, axis[1]))
    body_w = axis[0][1] - axis[0][0]
    neck_w = neck[0][1] - neck[0][0]
    parts: list[Part] = []
    if style == 'flask':
        body_zs = g.around(body_w * depth, axis[1])
        parts.append(_block(g, axis[0], body_ys, body_zs, colour))
        parts.append(_round(g, 1, (neck[0], (body_ys[1], shoulder_top), neck[1]), colour,
                            square=True))
        shoulder = (g.around(0.7 * body_w, axis[0]), (body_ys[1], g.plane(
            body_ys[1] + 0.3 * (shoulder_top - body_ys[1]), 'y')), g.around(
            body_w * depth * 0.7, axis[1]))
        parts.append(_block(g, *shoulder, colour))
    else:
        parts.append(_round(g, 1, (axis[0], body_ys, axis[1]), colour))
        # The shoulder narrows from the body to the neck (a wine bottle's slowly).
        parts.append(_round(g, 1, (axis[0], (body_ys[1], shoulder_top), axis[1]), colour,
                            taper=neck_w / body_w))
    parts.append(_round(g, 1, (neck[0], (shoulder_top, cap_ys[0]), neck[1]), colour))
    cap_w = neck_w * rng.uniform(1.05, 1.25)
    parts.append(_round(g, 1, (g.around(cap_w, neck[0]), cap_ys, g.around(cap_w, neck[1])),
                        cap_colour))
    if style == 'jug':  # a handle from the shoulder down the +x side
        r = 0.5 * body_w
        parts += _mug_handle(rng, g, (0.5 * sum(axis[0]), 0.5 * sum(axis[1])),
                             (body_ys[0] + 0.2 * body_h, shoulder_top), r, r, colour,
                             square=False, r_design=radius)
    return parts


# ---------------------------------------------------------------------------------------------
# Sofas

def _wide_sofa(rng: np.random.Generator, g: Lattice) -> list[Part]:
    style = _style(rng, {'classic': 0.3, 'sectional': 0.2, 'loveseat': 0.15, 'rolled': 0.15,
                         'legs': 0.2})
    if style == 'classic':
        return _sofa(rng, g)
    fabric = _any_colour(rng)
    cushion = fabric if rng.random() < 0.5 else _any_colour(rng)
    width = rng.uniform(1.1, 1.5) if style == 'loveseat' else rng.uniform(1.6, 2.6)
    depth = rng.uniform(0.8, 1.0)
    seat_h = rng.uniform(0.38, 0.48)
    back_h = rng.uniform(0.6, 0.95) if style != 'legs' else rng.uniform(0.65, 0.8)
    back_t = rng.uniform(0.12, 0.25) if style != 'legs' else rng.uniform(0.06, 0.12)
    arm_w = rng.uniform(0.1, 0.25) if style != 'legs' else rng.uniform(0.05, 0.1)
    arm_h = rng.uniform(0.5, 0.7)
    leg_h = rng.uniform(0.12, 0.22) if style == 'legs' else rng.uniform(0.0, 0.08)
    cushions = int(rng.integers(1, 4))
    ext = rng.uniform(0.5, 0.9)
    corner = int(rng.choice([-1, 1]))
    floor = g.plane(0.0, 'y')
    xs, zs = g.span(-width / 2, width / 2, 'x'), g.span(-depth / 2, depth / 2, 'z')
    legs = leg_h > 0.03
    bottom = g.span(floor, leg_h, 'y')[1] if legs else floor
    cushion_t = 0.1
    base_top = g.plane(seat_h - cushion_t, 'y')
    seat_top = g.span(base_top, seat_h, 'y')[1]
    back_zs = (zs[0], g.plane(zs[0] + back_t, 'z'))
    aw = g.length(arm_w)
    inner = (xs[0] + aw, xs[1] - aw)
    arm_top = g.plane(arm_h, 'y')
    parts: list[Part] = [_block(g, xs, (bottom, base_top), zs, fabric),
                         _block(g, xs, (bottom, g.plane(back_h, 'y')), back_zs, fabric)]
    for arm_xs in ((xs[0], inner[0]), (inner[1], xs[1])):
        parts.append(_block(g, arm_xs, (bottom, arm_top), zs, fabric))
        if style == 'rolled':
            parts.append(_arm_roll(g, arm_xs, arm_top, zs, fabric))
    seam = g.voxel
    cw = (inner[1] - inner[0] - seam * (cushions - 1)) / cushions
    for k in range(cushions):
        x0 = inner[0] if k == 0 else g.plane(inner[0] + k * (cw + seam), 'x')
        x1 = inner[1] if k == cushions - 1 else g.plane(inner[0] + k * (cw + seam) + cw, 'x')
        parts.append(_block(g, (x0, x1), (base_top, seat_top), (back_zs[1], zs[1]), cushion))
    if style == 'sectional':  # an L: a seat section forward at one end, its arm outside it
        sect_xs = (inner[1] - (inner[1] - inner[0]) * 0.4, xs[1]) if corner > 0 \
            else (xs[0], inner[0] + (inner[1] - inner[0]) * 0.4)
        front = g.plane(zs[1] + ext, 'z')
        parts.append(_block(g, sect_xs, (bottom, base_top), (zs[1], front), fabric))
        seat_xs = (sect_xs[0], inner[1]) if corner > 0 else (inner[0], sect_xs[1])
        parts.append(_block(g, seat_xs, (base_top, seat_top), (zs[1], front), cushion))
    if legs:
        leg_c = _grey(rng, 0.05, 0.5) if rng.random() < 0.5 else _wood(rng)
        lw = g.length(0.04)
        parts += _four_legs(g, xs, zs, (floor, bottom), g.length(0.05, least=0), lw, leg_c,
                            square=False)
    return parts


#: The wide variety's builder of each category.
WIDE_BUILDERS: dict[str, Builder] = {
    'table': _wide_table,
    'chair': _wide_chair,
    'lamp': _wide_lamp,
    'airplane': _wide_airplane,
    'car': _wide_car,
    'mug': _wide_mug,
    'bottle': _wide_bottle,
    'sofa': _wide_sofa,
}
