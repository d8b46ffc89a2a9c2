"""Synthetic objects in ShapeNet's layout: camera, renderer, voxels, writer and CLI agree.

Files are read back with independent minimal readers (OpenCV for PNGs, a few lines of binvox
decoding beside the project's reader, plain ``json``) so a bug shared by writer and reader in the
project cannot hide. The central check projects the ground-truth voxels with the camera parsed
from ``rendering_metadata.txt`` and compares them with the rendered alpha mask.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from pix2voxpp_ros.core.synthetic import (
    CATEGORIES, Camera, CameraError, SyntheticObject, UnknownCategoryError, dataset_object,
    generate_model, make_object, model_id, render_depth, render_view, sample_r2n2_cameras,
    voxelize, write_dataset)
from pix2voxpp_ros.core.synthetic.dataset import DatasetError
from pix2voxpp_ros.core.synthetic.lattice import Lattice
from pix2voxpp_ros.core.synthetic.primitives import Box, Ellipsoid, Frustum, Part
from pix2voxpp_ros.core.synthetic.shapes import ROUND_MIN_VOXELS
from pix2voxpp_ros.core.voxels import read_binvox

from model_helpers import REPO_ROOT

SEED = 11
# Lowest mean silhouette IoU (projected voxel cubes against alpha >= 128) per category; 0.9 where
# the 32³ grid can match the rendering that closely. Airplanes, lamps and bottles are thin or round
# throughout: a round part's voxels stand out of its silhouette in oblique views (by 8 to 14 % of
# its width), and cv2.fillConvexPoly, which draws the projected cubes, takes in every pixel their
# outline touches, which costs thin shapes most: the voxel cubes of the airplanes, rendered as
# boxes, themselves reach only about 0.93 against their own projection.
IOU_FLOOR = {'airplane': 0.82, 'bottle': 0.86, 'lamp': 0.87}


# ---------------------------------------------------------------------------------------------
# Independent minimal readers

def _read_binvox_minimal(path: Path) -> tuple[np.ndarray, list[str]]:
    raw = path.read_bytes()
    header, _, data = raw.partition(b'data\n')
    lines = header.decode('ascii').splitlines()
    dims = [int(v) for v in lines[1].split()[1:]]
    pairs = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2)
    flat = np.repeat(pairs[:, 0], pairs[:, 1]).astype(bool)
    # binvox order: x slowest, then z, y fastest.
    return flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1), lines


def _read_model(root: Path, taxonomy_id: str, model_id: str) -> dict:
    folder = root / 'ShapeNetRendering' / taxonomy_id / model_id / 'rendering'
    names = (folder / 'renderings.txt').read_text().split()
    lines = (folder / 'rendering_metadata.txt').read_text().splitlines()
    images = [cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED) for name in names]
    grid, header = _read_binvox_minimal(root / 'ShapeNetVox32' / taxonomy_id / model_id
                                        / 'model.binvox')
    return {'names': names, 'lines': lines, 'images': images, 'grid': grid, 'header': header}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Projection of voxel cubes

def _voxel_silhouette(grid: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixels covered by the projected cubes of the occupied voxels (surface voxels suffice)."""
    n = grid.shape[0]
    pad = np.pad(grid, 1)
    interior = pad[1:-1, 1:-1, 1:-1].copy()
    for axis in range(3):
        for shift in (1, -1):
            interior &= np.roll(pad, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    surface = np.argwhere(grid & ~interior)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    points = ((surface[:, None, :] + corners[None]) / n - 0.5).reshape(-1, 3)
    uv = camera.project(points).reshape(len(surface), 8, 2)
    mask = np.zeros((camera.height, camera.width), np.uint8)
    for poly in np.round(uv * 16).astype(np.int32):  # 4 fractional bits for fillConvexPoly
        cv2.fillConvexPoly(mask, cv2.convexHull(poly), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _connected(grid: np.ndarray) -> bool:
    """Whether the occupied voxels form one 26-connected component."""
    reached = np.zeros_like(grid)
    reached[tuple(np.argwhere(grid)[0])] = True
    while True:
        pad = np.pad(reached, 1)
        grown = np.zeros_like(grid)
        for dx in range(3):
            for dy in range(3):
                for dz in range(3):
                    grown |= pad[dx:dx + 32, dy:dy + 32, dz:dz + 32]
        grown &= grid
        if (grown == reached).all():
            return bool((reached == grid).all())
        reached = grown


def _compare(alpha: np.ndarray, grid: np.ndarray, camera: Camera) -> dict[str, float]:
    """IoU, coverage (rendered pixels inside the voxels' projection) and tightness."""
    rendered = alpha >= 128  # pixels at least half covered (edges are anti-aliased)
    voxels = _voxel_silhouette(grid, camera)
    # Tightness: voxel pixels within one projected voxel edge of the rendered silhouette.
    voxel_px = camera.focal_px / grid.shape[0] / (camera.distance - math.sqrt(3) / 2)
    radius = int(math.ceil(voxel_px))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    near = cv2.dilate(rendered.astype(np.uint8), kernel).astype(bool)
    return {'iou': (rendered & voxels).sum() / (rendered | voxels).sum(),
            'coverage': (rendered & voxels).sum() / rendered.sum(),
            'tightness': (voxels & near).sum() / voxels.sum()}


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    """Two models of every category, written by two worker processes."""
    root = tmp_path_factory.mktemp('synth')
    write_dataset(root, per_category=2, seed=SEED, workers=2, progress=False)
    return root


# ---------------------------------------------------------------------------------------------
# Camera

def test_camera_intrinsics_and_pose() -> None:
    cam = Camera(30.0, 25.0, 0.0, 0.8, 25.0)
    k = cam.intrinsics
    f = 68.5 / math.tan(math.radians(12.5))
    np.testing.assert_allclose(k, [[f, 0, 68], [0, f, 68], [0, 0, 1]])
    assert cam.distance == pytest.approx(0.8 * cam.max_distance)
    pose = cam.world_to_camera
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    np.testing.assert_allclose(pose @ np.append(cam.centre, 1.0), [0, 0, 0, 1], atol=1e-12)
    # The origin is in front of the camera at its distance, on the principal point.
    np.testing.assert_allclose(pose[:3, 3], [0, 0, cam.distance], atol=1e-12)
    np.testing.assert_allclose(cam.project(np.zeros((1, 3))), [[68.0, 68.0]], atol=1e-9)
    # y (up) goes up in the image; the projection is K [R | t].
    points = np.array([[0.0, 0.3, 0.0], [0.2, -0.1, 0.3]])
    assert cam.project(points)[0, 1] < 68.0
    homogeneous = (k @ pose[:3] @ np.c_[points, np.ones(2)].T).T
    np.testing.assert_allclose(cam.project(points), homogeneous[:, :2] / homogeneous[:, 2:])


def test_camera_azimuth_elevation_inplane_conventions() -> None:
    np.testing.assert_allclose(Camera(0.0, 0.0, distance_ratio=1.0, max_distance=2.0).centre,
                               [2, 0, 0], atol=1e-12)
    np.testing.assert_allclose(Camera(90.0, 0.0, distance_ratio=1.0, max_distance=2.0).centre,
                               [0, 0, 2], atol=1e-12)
    np.testing.assert_allclose(Camera.from_distance(90.0, 0.0, 3.0).centre, [0, 0, 3],
                               atol=1e-12)
    cam = Camera(0.0, 30.0, distance_ratio=1.0, max_distance=2.0)
    np.testing.assert_allclose(cam.centre, [2 * math.cos(math.pi / 6), 1.0, 0.0], atol=1e-12)
    # Seen from the front (+z), +x is on the right of the image.
    front = Camera(90.0, 0.0)
    assert front.project(np.array([[0.2, 0.0, 0.0]]))[0, 0] > 68.0
    # A positive in-plane angle turns the image content counter-clockwise: right becomes up.
    rolled = Camera(90.0, 0.0, inplane_deg=90.0)
    u, v = rolled.project(np.array([[0.2, 0.0, 0.0]]))[0]
    assert u == pytest.approx(68.0) and v < 68.0


def test_camera_non_square_and_rays() -> None:
    cam = Camera(45.0, 20.0, 0.0, 0.5, 60.0, 640, 480)
    k = cam.intrinsics
    assert k[0, 0] == pytest.approx(320.0 / math.tan(math.radians(30.0)))
    assert (k[0, 2], k[1, 2]) == (319.5, 239.5)
    dirs = cam.ray_directions()
    assert dirs.shape == (480, 640, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=2), 1.0)
    # A point along the ray of pixel (u, v) projects back onto (u, v).
    points = cam.centre + 2.0 * dirs[[0, 100, 479], [0, 320, 639]]
    np.testing.assert_allclose(cam.project(points), [[0, 0], [320, 100], [639, 479]],
                               atol=1e-9)
    behind = 2.0 * cam.centre  # on the far side of the camera from the object
    assert not np.isfinite(cam.project(behind[None])).any()


def test_camera_metadata_round_trip_and_errors() -> None:
    cam = sample_r2n2_cameras(np.random.default_rng(0), 1)[0]
    assert Camera.from_metadata_line(cam.metadata_line()) == cam
    assert Camera(12.5, 26.0, 0.0, 0.7, 25.0).metadata_line() == '12.5 26 0 0.7 25'
    for line in ('1 2 3 4', '1 2 3 4 x', ''):
        with pytest.raises(CameraError, match='metadata line'):
            Camera.from_metadata_line(line)
    with pytest.raises(CameraError, match='elevation_deg'):
        Camera(0.0, 90.0)
    with pytest.raises(CameraError, match='fov_deg'):
        Camera(0.0, 10.0, fov_deg=0.0)
    with pytest.raises(CameraError, match='distance_ratio'):
        Camera(0.0, 10.0, distance_ratio=-1.0)
    with pytest.raises(CameraError, match='image size'):
        Camera(0.0, 10.0, width=0)


def test_r2n2_view_sampling() -> None:
    cams = sample_r2n2_cameras(np.random.default_rng(5), 500)
    az = np.array([c.azimuth_deg for c in cams])
    el = np.array([c.elevation_deg for c in cams])
    ratio = np.array([c.distance_ratio for c in cams])
    assert 0 <= az.min() and az.max() < 360 and az.max() - az.min() > 300
    assert 25 <= el.min() and el.max() < 30
    assert 0.65 <= ratio.min() and ratio.max() < 0.95
    assert all(c.inplane_deg == 0 and c.fov_deg == 25 and c.width == c.height == 137
               for c in cams)


# ---------------------------------------------------------------------------------------------
# Objects and voxels

def test_objects_fill_the_grid_and_are_pure_functions_of_the_seed() -> None:
    assert len(CATEGORIES) >= 8
    assert len({c.taxonomy_id for c in CATEGORIES.values()}) == len(CATEGORIES)
    assert all(len(c.taxonomy_id) == 8 and c.taxonomy_id.isdigit() for c in CATEGORIES.values())
    for name in CATEGORIES:
        a, b, c = (make_object(name, seed=s) for s in (4, 4, 5))
        for obj in (a, c):
            # Inside the grid, centred to within a voxel, the largest extent the grid's edge (or
            # a voxel less, where snapping moved an end).
            lo, hi = obj.bounds()
            assert (lo >= -0.5 - 1e-9).all() and (hi <= 0.5 + 1e-9).all(), (name, lo, hi)
            assert 1.0 - 1.0 / 32 - 1e-9 <= (hi - lo).max() <= 1.0 + 1e-9
            assert (np.abs(lo + hi) <= 1.0 / 32 + 1e-9).all()
        assert len(a.parts) == len(b.parts)
        for p, q in zip(a.parts, b.parts):
            np.testing.assert_array_equal(p.centre, q.centre)
            assert p.colour == q.colour
        assert len(a.parts) != len(c.parts) or any(
            not np.array_equal(p.centre, q.centre) for p, q in zip(a.parts, c.parts))
    with pytest.raises(UnknownCategoryError, match='spaceship'):
        make_object('spaceship', seed=0)
    assert make_object('90000002', seed=1).category == 'chair'


def test_lattice_snaps_spans_columns_and_mirrors() -> None:
    # Metric units of 2 m per grid edge, origin at the grid centre: a voxel is 1/16 m.
    g = Lattice.fit(np.array([-1.0, -1.0, -0.5]), np.array([1.0, 1.0, 0.5]))
    v = g.voxel
    assert v == pytest.approx(1.0 / 16)
    assert Lattice().span(0.013, 0.29, 'x') == (0.013, 0.29)  # the sizing pass changes nothing
    # Thick spans round each face; thin ones keep a whole width of one voxel or more.
    assert g.span(0.2, 0.9, 'x') == pytest.approx((3 * v, 14 * v))
    assert g.span(0.31, 0.33, 'x') == pytest.approx((5 * v, 6 * v))
    assert g.span(0.3, 0.38, 'y') == pytest.approx((5 * v, 6 * v))
    assert g.span(0.3, 0.405, 'y') == pytest.approx((5 * v, 7 * v))
    # Idempotent, and mirrored spans stay mirrored.
    for lo, hi in ((0.2, 0.9), (0.31, 0.33), (0.107, 0.2)):
        snapped = g.span(lo, hi, 'x')
        assert g.span(*snapped, 'x') == pytest.approx(snapped)
        assert g.span(-hi, -lo, 'x') == pytest.approx((-snapped[1], -snapped[0]))
    # Columns: a whole width, the same across both axes; parity on request; around() keeps it.
    assert g.column(0.0, 0.2, 'x') == pytest.approx((-2 * v, v))  # 3 voxels, half-even
    assert g.column(0.0, 0.2, 'x', parity=0) == pytest.approx((-2 * v, 2 * v))
    assert g.around(0.5, (-2 * v, 2 * v)) == pytest.approx((-4 * v, 4 * v))
    assert g.around(0.5, (0.0, v)) == pytest.approx((-3 * v, 4 * v))  # 7, not 8 or 9
    assert g.plane(0.34, 'z') == pytest.approx(5 * v)
    assert g.length(0.01) == pytest.approx(v) and g.length(0.01, least=0) == 0.0
    # z is half as deep as x and y: centred, its voxel faces still lie on multiples of v.
    assert g.span(-0.5, 0.5, 'z') == pytest.approx((-8 * v, 8 * v))


def _on_faces(values: np.ndarray) -> bool:
    voxels = (np.asarray(values) + 0.5) * 32
    return bool(np.allclose(voxels, np.round(voxels), atol=1e-6))


def _check_voxel_faithful(part: Part, where: str) -> None:
    """Assert that the grid holds a part: faces on voxel faces or at least two voxels thick."""
    rot = np.abs(part.rotation)
    aligned = [i for i in range(3) if abs(rot[:, i].max() - 1.0) <= 1e-9]
    if isinstance(part, Box):
        for i in range(3):
            size = 2 * part.half[i] * 32
            if i in aligned:  # faces across an axis-aligned extent lie on voxel faces
                axis = int(rot[:, i].argmax())
                assert _on_faces([part.centre[axis] - part.half[i],
                                  part.centre[axis] + part.half[i]]), where
                assert size >= 1 - 1e-6, where
            else:  # an extent turned off the grid axes is thick
                assert size >= 2 - 1e-6, where
    elif isinstance(part, Frustum) and 1 in aligned:
        lo, hi = part.bounds()
        axis = int(rot[:, 1].argmax())
        assert _on_faces([lo[axis], hi[axis]]), where  # caps on voxel faces
        width = 2 * max(part.radius_bottom, part.radius_top) * 32
        assert width >= ROUND_MIN_VOXELS - 1e-6, where  # round parts are wide ...
        assert _on_faces(np.delete(np.stack([lo, hi]), axis, axis=1)), where  # ... and centred
    else:  # tilted frustums (a handle's rods, a tail cone) and ellipsoids are thick
        assert part.thickness() * 32 >= 2 - 1e-6, where


def test_parts_are_voxel_faithful() -> None:
    """Every part is one that a 32³ grid holds without a voxel of slack on either side."""
    kinds = set()
    for name in CATEGORIES:
        for seed in range(12):
            for index, part in enumerate(make_object(name, seed=seed).parts):
                if part.decal:
                    continue
                kinds.add(type(part))
                _check_voxel_faithful(part, f'{name} seed {seed} part {index}')
    assert kinds == {Box, Frustum, Ellipsoid}
    # Joints are built from snapped faces: nothing floats a voxel away from the rest.
    for name in CATEGORIES:
        assert _connected(voxelize(make_object(name, seed=1))), name


def test_decals_are_paint_on_the_solid() -> None:
    # Headlights, hub caps, labels and drinks stand out of their part by a sliver: voxelized as
    # parts of the solid they would change no voxel, and they leave the bounds alone.
    for name in ('car', 'mug', 'bottle'):
        obj = next(obj for obj in (make_object(name, seed=seed) for seed in range(6))
                   if any(p.decal for p in obj.parts))
        solid = SyntheticObject(name, obj.seed, tuple(replace(p, decal=False) for p in obj.parts))
        np.testing.assert_array_equal(voxelize(solid), voxelize(obj))
        np.testing.assert_allclose(np.stack(solid.bounds()), np.stack(obj.bounds()),
                                   atol=0.1 / 32)


def test_voxel_axes_and_centres() -> None:
    # A box filling x in [0, 0.5), y in [0.25, 0.5), z in [-0.5, -0.25): exactly those voxels.
    box = Box(centre=np.array([0.25, 0.375, -0.375]), half=np.array([0.25, 0.125, 0.125]))
    grid = voxelize(SyntheticObject('table', 0, (box,)))
    expected = np.zeros((32, 32, 32), bool)
    expected[16:32, 24:32, 0:8] = True
    np.testing.assert_array_equal(grid, expected)


def test_thin_parts_occupy_every_voxel_they_pass_through() -> None:
    # A rod a fifth of a voxel thick, diagonal across the grid.
    p0, p1 = np.array([-0.45, -0.4, -0.3]), np.array([0.4, 0.45, 0.35])
    axis = p1 - p0
    y = axis / np.linalg.norm(axis)
    x = np.cross(y, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    rod = Frustum(centre=(p0 + p1) / 2, rotation=np.stack([x, y, np.cross(x, y)], axis=1),
                  radius_bottom=0.2 / 32, radius_top=0.2 / 32,
                  half_height=float(np.linalg.norm(axis)) / 2)
    grid = voxelize(SyntheticObject('lamp', 0, (rod,)))
    # Voxels whose centre is near the axis (it crosses them well inside) are all occupied ...
    centres = (np.argwhere(np.ones_like(grid)) + 0.5) / 32 - 0.5
    s = np.clip((centres - p0) @ axis / (axis @ axis), 0.0, 1.0)
    gap = np.linalg.norm(centres - (p0 + s[:, None] * axis), axis=1) * 32  # in voxels
    assert grid.reshape(-1)[gap < 0.4].all()
    # ... and the occupied ones hug the axis and form one connected chain.
    assert gap[grid.reshape(-1)].max() < 0.5 * math.sqrt(3) + 0.2
    assert _connected(grid)
    samples = p0 + np.linspace(0.0, 1.0, 2000)[:, None] * axis
    cells = np.unique(np.floor((samples + 0.5) * 32).astype(int), axis=0)
    assert len(cells) * 0.8 <= grid.sum() <= 1.6 * len(cells)


def test_plates_in_voxel_layers_are_drawn_not_dilated() -> None:
    # A swept plate one voxel thick between voxel faces, turned 30 degrees about y: its voxels
    # are its outline drawn in that one layer (the half rule), not every voxel it touches.
    rot = np.array([[math.cos(0.5), 0.0, math.sin(0.5)], [0.0, 1.0, 0.0],
                    [-math.sin(0.5), 0.0, math.cos(0.5)]])
    half = np.array([8.0, 0.5, 3.0]) / 32
    plate = Box(centre=np.array([0.0, 3.5 / 32, 0.0]), rotation=rot, half=half)
    grid = voxelize(SyntheticObject('airplane', 0, (plate,)))
    assert set(np.argwhere(grid)[:, 1]) == {19}  # the layer from y = 3/32 to 4/32
    assert abs(grid.sum() - 16 * 6) <= 8
    # Off the lattice by a third of a voxel it is voxelized conservatively, in two layers.
    shifted = replace(plate, centre=plate.centre + (0.0, 1 / 96, 0.0))
    grid = voxelize(SyntheticObject('airplane', 0, (shifted,)))
    assert set(np.argwhere(grid)[:, 1]) == {19, 20}
    assert grid[:, 19].sum() > 16 * 6 + 8


def test_render_rgba_and_depth() -> None:
    obj = make_object('chair', seed=2)
    cam = Camera(40.0, 27.0, 0.0, 0.8, 25.0)
    rgba = render_view(obj, cam)
    assert rgba.shape == (137, 137, 4) and rgba.dtype == np.uint8
    assert set(np.unique(rgba[..., 3])) == {0, 255}
    assert (rgba[rgba[..., 3] == 0][:, :3] == 0).all()
    smooth = render_view(obj, cam, supersample=2)[..., 3]
    assert ((smooth > 0) & (smooth < 255)).any()  # anti-aliased edges
    hard = rgba[..., 3] > 0
    assert abs(smooth.sum() / 255.0 / hard.sum() - 1.0) < 0.05  # same area, softer edges
    assert (hard <= (smooth > 0)).mean() > 0.999
    # A 640×480 robot camera (its speed: benchmarks/bench_synthetic.py).
    image = render_view(obj, Camera(200.0, 35.0, 10.0, 0.5, 60.0, 640, 480))
    assert image.shape == (480, 640, 4) and image[..., 3].any()
    # Depth: a cube face straight ahead at distance d - 0.25.
    cube = SyntheticObject('sofa', 0, (Box(centre=np.zeros(3), half=np.full(3, 0.25)),))
    front = Camera(90.0, 0.0, 0.0, 0.6, 25.0, 64, 48)
    depth = render_depth(cube, front)
    assert depth[24, 32] == pytest.approx(front.distance - 0.25)
    assert depth[0, 0] == np.inf
    np.testing.assert_allclose(depth[np.isfinite(depth)], front.distance - 0.25)


def test_objects_stay_inside_the_preprocessing_crop() -> None:
    # At the nearest R2N2 distance every category stays within rows and columns 4:132.
    for name in CATEGORIES:
        for seed in range(3):
            obj = make_object(name, seed=seed)
            for azimuth in (0.0, 45.0, 90.0, 135.0):
                alpha = render_view(obj, Camera(azimuth, 25.0, 0.0, 0.65, 25.0))[..., 3]
                assert not alpha[:4].any() and not alpha[132:].any(), (name, seed, azimuth)
                assert not alpha[:, :4].any() and not alpha[:, 132:].any(), (name, seed, azimuth)


# ---------------------------------------------------------------------------------------------
# The dataset on disk

def test_layout_and_files_read_back(dataset: Path) -> None:
    taxonomy = json.loads((dataset / 'ShapeNet.json').read_text())
    assert [t['taxonomy_name'] for t in taxonomy] == list(CATEGORIES)
    for entry in taxonomy:
        assert set(entry) == {'taxonomy_id', 'taxonomy_name', 'baseline', 'train', 'val', 'test'}
        assert set(entry['baseline']) >= {'1-view'}
        folders = {p.name for p in (dataset / 'ShapeNetRendering' / entry['taxonomy_id'])
                   .iterdir()}
        splits = [set(entry[s]) for s in ('train', 'val', 'test')]
        assert sum(map(len, splits)) == len(folders) == 2
        assert set.union(*splits) == folders
        for mid in folders:
            assert len(mid) == 32 and int(mid, 16) >= 0
            model = _read_model(dataset, entry['taxonomy_id'], mid)
            assert model['names'] == [f'{k:02d}.png' for k in range(24)]
            assert len(model['lines']) == 24
            for image in model['images']:
                assert image.shape == (137, 137, 4) and image.dtype == np.uint8
                assert image[..., 3].min() == 0 and image[..., 3].max() == 255
            for line in model['lines']:
                az, el, inplane, ratio, fov = map(float, line.split())
                assert 0 <= az < 360 and 25 <= el < 30 and 0.65 <= ratio < 0.95
                assert inplane == 0 and fov == 25
            assert model['header'][:2] == ['#binvox 1', 'dim 32 32 32']
            grid, translate, scale = read_binvox(dataset / 'ShapeNetVox32' /
                                                 entry['taxonomy_id'] / mid / 'model.binvox')
            np.testing.assert_array_equal(grid, model['grid'])
            np.testing.assert_allclose(translate, -0.5)
            assert scale == 1.0
            index = [model_id(SEED, entry['taxonomy_id'], k) for k in range(2)].index(mid)
            expected = voxelize(dataset_object(entry['taxonomy_name'], index, seed=SEED))
            np.testing.assert_array_equal(grid, expected)


def test_voxels_match_renderings_through_recorded_cameras(dataset: Path) -> None:
    taxonomy = json.loads((dataset / 'ShapeNet.json').read_text())
    ious: dict[str, list[float]] = {}
    for entry in taxonomy:
        for mid in entry['train'] + entry['val'] + entry['test']:
            model = _read_model(dataset, entry['taxonomy_id'], mid)
            for view in range(0, 24, 3):
                camera = Camera.from_metadata_line(model['lines'][view])
                scores = _compare(model['images'][view][..., 3], model['grid'], camera)
                # The voxels hold the object as this camera sees it (thick parts fill voxels at
                # least half, so their surface may stick out of the grid by under half a voxel),
                # and hardly more.
                assert scores['coverage'] >= 0.95, (entry['taxonomy_name'], view, scores)
                assert scores['tightness'] >= 0.98, (entry['taxonomy_name'], view, scores)
                ious.setdefault(entry['taxonomy_name'], []).append(scores['iou'])
    means = {name: float(np.mean(values)) for name, values in ious.items()}
    assert np.mean([iou for values in ious.values() for iou in values]) >= 0.9, means
    for name, mean in means.items():
        assert mean >= IOU_FLOOR.get(name, 0.9), means
    # A wrong camera or wrong axes are caught: the car seen 90° off or with its grid's x and z
    # swapped, the chair upside down.
    for name, wrong in (('car', 'azimuth'), ('car', 'xz'), ('chair', 'y')):
        entry = next(e for e in taxonomy if e['taxonomy_name'] == name)
        model = _read_model(dataset, entry['taxonomy_id'], model_id(SEED, entry['taxonomy_id'], 0))
        camera = Camera.from_metadata_line(model['lines'][0])
        grid = model['grid']
        if wrong == 'azimuth':
            camera = Camera((camera.azimuth_deg + 90.0) % 360.0, camera.elevation_deg,
                            distance_ratio=camera.distance_ratio)
        grid = {'azimuth': grid, 'xz': grid.transpose(2, 1, 0), 'y': grid[:, ::-1]}[wrong]
        assert _compare(model['images'][0][..., 3], grid, camera)['iou'] < 0.7, (name, wrong)


def test_same_seed_same_bytes_whatever_the_workers(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / 'again'
    write_dataset(again, per_category=2, seed=SEED, workers=1, progress=False,
                  categories=['mug', 'airplane'])
    first = _tree_bytes(dataset)
    second = _tree_bytes(again)
    shared = [p for p in second if p != 'ShapeNet.json']
    assert len(shared) == 2 * 2 * 27
    assert all(first[p] == second[p] for p in shared)
    other = tmp_path / 'other'
    summary = write_dataset(other, per_category=2, seed=SEED + 1, workers=1, progress=False,
                            categories=['mug', 'airplane'])
    assert summary.count == 4
    third = _tree_bytes(other)
    assert not set(third) & set(shared)  # new model ids
    pngs = {data for path, data in third.items() if path.endswith('.png')}
    assert not pngs & {data for path, data in second.items() if path.endswith('.png')}


def test_counts_weight_categories_and_only_add_objects(dataset: Path, tmp_path: Path) -> None:
    weighted = tmp_path / 'weighted'
    summary = write_dataset(weighted, per_category=1, seed=SEED, workers=1, progress=False,
                            categories=['mug', 'airplane'], counts={'90000006': 3})
    assert {tid: len(ids) for tid, ids in summary.models.items()} == {'90000006': 3,
                                                                      '90000004': 1}
    taxonomy = {t['taxonomy_name']: t
                for t in json.loads((weighted / 'ShapeNet.json').read_text())}
    mugs = taxonomy['mug']['train'] + taxonomy['mug']['val'] + taxonomy['mug']['test']
    assert sorted(mugs) == sorted(summary.models['90000006'])
    # The first objects of a category are those of an unweighted dataset of the same seed.
    unweighted, written = _tree_bytes(dataset), _tree_bytes(weighted)
    for mid in summary.models['90000006'][:2] + summary.models['90000004']:
        files = {p: b for p, b in written.items() if mid in p}
        assert len(files) == 27 and all(unweighted[p] == b for p, b in files.items())
    assert not any(summary.models['90000006'][2] in p for p in unweighted)


def test_generate_model_writes_one_object_as_the_dataset_rebuilds_it(tmp_path: Path) -> None:
    mid = generate_model(tmp_path, 'car', 1, seed=SEED, views=2)
    assert mid == model_id(SEED, '90000005', 1)
    render_dir = tmp_path / 'ShapeNetRendering' / '90000005' / mid / 'rendering'
    assert sorted(p.name for p in render_dir.iterdir()) == [
        '00.png', '01.png', 'rendering_metadata.txt', 'renderings.txt']
    grid, _, _ = read_binvox(tmp_path / 'ShapeNetVox32' / '90000005' / mid / 'model.binvox')
    assert np.array_equal(grid, voxelize(dataset_object('car', 1, seed=SEED)))


def test_write_dataset_rejects_bad_arguments(tmp_path: Path) -> None:
    out = tmp_path / 'out'
    with pytest.raises(DatasetError, match='per_category'):
        write_dataset(out, per_category=0, seed=0)
    with pytest.raises(DatasetError, match='split'):
        write_dataset(out, per_category=1, seed=0, split=(0.5, 0.5, 0.5))
    with pytest.raises(UnknownCategoryError, match='spaceship'):
        write_dataset(out, per_category=1, seed=0, categories=['spaceship'])
    with pytest.raises(DatasetError, match='count of mug'):
        write_dataset(out, per_category=1, seed=0, counts={'mug': 0})
    with pytest.raises(DatasetError, match='sofa, which is not among'):
        write_dataset(out, per_category=1, seed=0, categories=['mug'], counts={'sofa': 2})
    with pytest.raises(UnknownCategoryError, match='spaceship'):
        write_dataset(out, per_category=1, seed=0, counts={'spaceship': 2})
    with pytest.raises(DatasetError, match="two counts for chair: 'chair' and '90000002'"):
        write_dataset(out, per_category=1, seed=0, counts={'chair': 2, '90000002': 3})
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# Command line and imports

def _synth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'pix2voxpp_ros.cli.synth', *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / 'data'
    result = _synth('--out', str(out), '--per-category', '1', '--seed', '3', '--categories',
                    'mug', '90000002', '--count', 'chair=2', '--workers', '1', '--quiet')
    assert result.returncode == 0, result.stderr
    assert 'wrote 3 models in 2 categories' in result.stdout
    taxonomy = json.loads((out / 'ShapeNet.json').read_text())
    assert [t['taxonomy_name'] for t in taxonomy] == ['mug', 'chair']
    assert [len(t['train'] + t['val'] + t['test']) for t in taxonomy] == [1, 2]
    assert len(list(out.glob('ShapeNetRendering/*/*/rendering/*.png'))) == 72
    assert len(list(out.glob('ShapeNetVox32/*/*/model.binvox'))) == 3


@pytest.mark.parametrize('args, needle', [
    (['--categories', 'spaceship'], 'spaceship'),
    (['--per-category', '0'], '--per-category 0'),
    (['--workers', '-2'], '--workers -2'),
    (['--seed', 'abc'], 'abc'),
    (['--count', 'mug=x'], '--count mug=x'),
    (['--count', 'mug'], '--count mug: expected NAME=N'),
    (['--count', 'mug=0'], '--count mug=0'),
    (['--count', 'chair=2', '--count', '90000002=3'], '--count 90000002=3: chair has a count'),
    (['--count', 'spaceship=2'], 'spaceship'),
    (['--categories', 'mug', '--count', 'sofa=2'], 'sofa is not among --categories'),
])
def test_cli_rejects_bad_arguments(tmp_path: Path, args: list[str], needle: str) -> None:
    # A repeated option overrides the base's value; --count accumulates.
    result = _synth('--out', str(tmp_path / 'x'), '--per-category', '1', '--seed', '0', *args,
                    '--quiet')
    assert result.returncode != 0
    assert needle in result.stderr
    assert not (tmp_path / 'x').exists()


def test_synthetic_core_imports_no_ros_or_torch() -> None:
    code = ('import sys, pix2voxpp_ros.core.synthetic, pix2voxpp_ros.cli.synth; '
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'rclpy', 'cv_bridge', 'sensor_msgs')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
