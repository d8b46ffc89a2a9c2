"""The robot recipe of the synthetic generator: its cameras, the wide variety, the CLI.

The r2n2 recipe's output is pinned by test_synthetic_golden.py and test_synthetic.py; here the
robot recipe's views frame the object as the renderings the network trains on, its metadata
rebuilds each camera exactly, and the same seed and recipe give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pix2voxpp_ros.cli import synth
from pix2voxpp_ros.core.synthetic import (CATEGORIES, Camera, CameraError, dataset_object,
                                          make_object, render_view, sample_r2n2_cameras,
                                          voxelize, write_dataset)
from pix2voxpp_ros.core.synthetic.camera import (ROBOT_DISTANCE_RANGE, ROBOT_FILL_RANGE,
                                                 R2N2_MAX_DISTANCE, sample_robot_cameras)
from pix2voxpp_ros.core.synthetic.dataset import DatasetError
from pix2voxpp_ros.core.synthetic.recipes import RECIPES, RecipeError, recipe
from pix2voxpp_ros.core.synthetic.sheet import voxel_view
from pix2voxpp_ros.core.synthetic.voxelize import surface_corners
from pix2voxpp_ros.core.voxels import read_binvox

from test_synthetic import _check_voxel_faithful, _connected


def _alpha_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    rows, columns = np.nonzero(alpha)
    return int(columns.min()), int(rows.min()), int(columns.max()), int(rows.max())


# ---------------------------------------------------------------------------------------------
# Cameras

def test_surface_corners_bound_the_voxels() -> None:
    grid = np.zeros((32, 32, 32), bool)
    grid[4:10, 10:20, 0:6] = True
    corners = surface_corners(grid)
    np.testing.assert_allclose(corners.min(axis=0), np.array([4, 10, 0]) / 32 - 0.5)
    np.testing.assert_allclose(corners.max(axis=0), np.array([10, 20, 6]) / 32 - 0.5)
    assert len(corners) == len(np.unique(corners, axis=0))
    # A corner that only inner voxels share is left out: only the surface's are there.
    assert not any(np.allclose(c, np.array([7, 15, 3]) / 32 - 0.5) for c in corners)
    with pytest.raises(ValueError, match='no occupied voxel'):
        surface_corners(np.zeros((4, 4, 4), bool))


def test_robot_cameras_cover_the_ranges_and_their_metadata_rebuilds_them() -> None:
    points = surface_corners(voxelize(make_object('chair', seed=3)))
    cams = sample_robot_cameras(np.random.default_rng(5), points, 400)
    el = np.array([c.elevation_deg for c in cams])
    distance = np.array([c.distance for c in cams])
    fov = np.array([c.fov_deg for c in cams])
    assert 0 <= el.min() < 5 and 70 < el.max() < 75
    assert ROBOT_DISTANCE_RANGE[0] - 1e-5 <= distance.min() < 2.0
    assert 5.5 < distance.max() <= ROBOT_DISTANCE_RANGE[1] + 1e-5
    # Beyond R2N2's one field of view and its distances (3.6 to 5.2 grid edges), both ways.
    assert fov.min() < 20 and fov.max() > 45
    assert np.corrcoef(distance, fov)[0, 1] < -0.7  # the closer, the wider
    for cam in cams:
        assert cam.inplane_deg == 0 and cam.width == cam.height == 137
        assert cam.max_distance == R2N2_MAX_DISTANCE and cam.look_at == (0.0, 0.0, 0.0)
        again = Camera.from_metadata_line(cam.metadata_line())
        assert again == cam  # the recorded line is the camera, to the bit
    # The draws do not depend on the object (only the fields of view do).
    other = sample_robot_cameras(np.random.default_rng(5), points * 0.5, 400)
    assert [(c.azimuth_deg, c.elevation_deg, c.distance_ratio) for c in other] == \
        [(c.azimuth_deg, c.elevation_deg, c.distance_ratio) for c in cams]
    assert [c.fov_deg for c in other] != [c.fov_deg for c in cams]


@pytest.mark.parametrize('name', sorted(CATEGORIES))
def test_robot_views_frame_the_object_inside_the_crop(name: str) -> None:
    # The longer side of the object's box fills the drawn share of the 128-pixel centre crop
    # (a pixel or two less: voxel corners bound the silhouette), and nothing leaves that crop.
    for variety in ('classic', 'wide'):
        obj = make_object(name, seed=2, variety=variety)
        points = surface_corners(voxelize(obj))
        fills = []
        for cam in sample_robot_cameras(np.random.default_rng(1), points, 6):
            alpha = render_view(obj, cam)[..., 3]
            x0, y0, x1, y1 = _alpha_box(alpha)
            assert x0 >= 4 and y0 >= 4 and x1 <= 131 and y1 <= 131, (variety, cam)
            fills.append(max(x1 - x0, y1 - y0) / 128)
        assert ROBOT_FILL_RANGE[0] - 0.06 <= min(fills)
        assert max(fills) <= ROBOT_FILL_RANGE[1] + 0.01


def test_robot_camera_arguments_are_checked() -> None:
    rng = np.random.default_rng(0)
    points = np.array([[0.5, 0.5, 0.5], [-0.5, -0.5, -0.5]])
    for kwargs, needle in (({'elevation_range': (10.0, 90.0)}, 'elevation range'),
                           ({'elevation_range': (40.0, 30.0)}, 'elevation range'),
                           ({'distance_range': (3.0, 2.0)}, 'distance range'),
                           ({'distance_range': (0.5, 2.0)}, 'does not clear the object'),
                           ({'fill_range': (0.5, 1.5)}, 'fill range')):
        with pytest.raises(CameraError, match=needle):
            sample_robot_cameras(rng, points, 2, **kwargs)
    with pytest.raises(CameraError, match='no object points'):
        sample_robot_cameras(rng, np.zeros((0, 3)), 2)


def test_r2n2_sampler_takes_another_elevation_range_with_the_same_draws() -> None:
    base = sample_r2n2_cameras(np.random.default_rng(9), 50)
    high = sample_r2n2_cameras(np.random.default_rng(9), 50, elevation_range=(45.0, 75.0))
    assert all(45 <= c.elevation_deg < 75 for c in high)
    assert [(c.azimuth_deg, c.distance_ratio) for c in high] == \
        [(c.azimuth_deg, c.distance_ratio) for c in base]
    with pytest.raises(CameraError, match='elevation range'):
        sample_r2n2_cameras(np.random.default_rng(9), 2, elevation_range=(-5.0, 10.0))


# ---------------------------------------------------------------------------------------------
# The wide variety

def _enclosed_voids(grid: np.ndarray) -> int:
    """Count the empty voxels that no 6-connected path of empty voxels links to the outside."""
    empty = np.pad(~grid, 1, constant_values=True)
    reached = np.zeros_like(empty)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = True, True, True, True
    reached[:, :, 0], reached[:, :, -1] = True, True
    while True:
        grown = reached.copy()
        for axis in range(3):
            grown |= np.roll(reached, 1, axis=axis) | np.roll(reached, -1, axis=axis)
        grown &= empty
        if (grown == reached).all():
            return int((empty & ~reached).sum())
        reached = grown


@pytest.mark.parametrize('name', sorted(CATEGORIES))
def test_wide_objects_are_valid_solid_grids_unlike_the_classic_ones(name: str) -> None:
    for seed in range(6):
        obj = make_object(name, seed=seed, variety='wide')
        assert obj.variety == 'wide' and obj.category == name
        lo, hi = obj.bounds()
        assert (lo >= -0.5 - 1e-9).all() and (hi <= 0.5 + 1e-9).all(), (seed, lo, hi)
        # The largest extent the grid's edge, or up to two voxels less where a part that bounds
        # the object is snapped inside the bounds the grid was fitted to (a lamp's shade and
        # base), and centred to within two voxels.
        assert 1.0 - 2.0 / 32 - 1e-9 <= (hi - lo).max() <= 1.0 + 1e-9, (seed, lo, hi)
        assert (np.abs(lo + hi) <= 2.0 / 32 + 1e-9).all(), (seed, lo, hi)
        for index, part in enumerate(obj.parts):
            if not part.decal:
                _check_voxel_faithful(part, f'{name} seed {seed} part {index}')
        grid = voxelize(obj)
        assert grid.sum() > 100, seed
        assert _connected(grid), seed  # nothing floats
        assert _enclosed_voids(grid) == 0, seed  # cavities are open, as in ShapeNet's grids
        assert not np.array_equal(grid, voxelize(make_object(name, seed=seed))), seed


def test_wide_variety_is_deterministic_and_classic_is_the_default() -> None:
    for name in ('chair', 'car'):
        a, b = (make_object(name, seed=9, variety='wide') for _ in range(2))
        assert len(a.parts) == len(b.parts)
        for p, q in zip(a.parts, b.parts):
            assert type(p) is type(q) and p.colour == q.colour
            np.testing.assert_array_equal(p.centre, q.centre)
            np.testing.assert_array_equal(p.rotation, q.rotation)
        classic = make_object(name, seed=9)
        assert classic.variety == 'classic'
        assert np.array_equal(voxelize(classic), voxelize(make_object(name, seed=9,
                                                                      variety='classic')))
    with pytest.raises(ValueError, match="unknown variety 'fancy'"):
        make_object('mug', seed=0, variety='fancy')


def _wide(name: str, seeds: int = 24):
    return [make_object(name, seed=seed, variety='wide') for seed in range(seeds)]


def test_wide_variety_has_the_structures_real_objects_have() -> None:
    # Hollow mugs and lamp shades: an empty column on the axis over a bottom or a spider.
    def hollow(obj) -> bool:
        grid = voxelize(obj)
        occupied = np.argwhere(grid)
        top = occupied[:, 1].max()
        rows = grid[:, top - 2:top + 1].any(axis=1)  # the top three layers seen from above
        x, z = np.argwhere(rows).mean(axis=0).round().astype(int)
        return bool(rows[x, z] == 0 and grid[x, :, z].any())
    assert sum(hollow(obj) for obj in _wide('mug')) >= 8
    assert sum(hollow(obj) for obj in _wide('lamp')) >= 3
    # Tables taller than wide, and low ones (coffee tables) wider than twice their height.
    extents = [np.subtract(*obj.bounds()[::-1]) for obj in _wide('table')]
    assert any(e[1] > max(e[0], e[2]) for e in extents)
    assert any(max(e[0], e[2]) > 2 * e[1] for e in extents)
    # Star bases: five arms turned about y (office chairs); one-voxel legs stay one voxel thin.
    chairs = _wide('chair')
    turned = [sum(1 for p in c.parts if abs(p.rotation[1, 1]) == 1.0
                  and abs(p.rotation[0, 0]) < 1.0 - 1e-9) for c in chairs]
    assert 5 in turned
    thin = [min(p.thickness() for p in obj.parts if not p.decal) * 32
            for obj in chairs + _wide('table')]
    assert sum(t < 1.01 for t in thin) >= 10
    # High wings: the wing's lower face above the fuselage's axis (parts 0-2 are the
    # fuselage, 3 the first wing plate).
    assert any(obj.parts[3].bounds()[0][1] > obj.parts[0].centre[1] for obj in _wide('airplane'))


# ---------------------------------------------------------------------------------------------
# Recipes and the dataset writer

def _tree_digest(root: Path) -> str:
    """Digest of every file's path and content, PNGs by their pixels (zlib builds differ)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(cv2.imread(str(path), cv2.IMREAD_UNCHANGED).tobytes()
                      if path.suffix == '.png' else path.read_bytes())
    return digest.hexdigest()[:16]


def _small(out: Path, **kwargs) -> None:
    write_dataset(out, per_category=1, seed=7, categories=['mug', 'chair'], views=2,
                  progress=False, **kwargs)


def test_r2n2_recipe_writes_what_the_generator_always_wrote(tmp_path: Path) -> None:
    # The digest of this dataset as the generator wrote it before recipes existed (11 files,
    # no recipe.json); with the r2n2 recipe named or not, the files are the same.
    _small(tmp_path / 'plain')
    _small(tmp_path / 'named', recipe=RECIPES['r2n2'])
    assert _tree_digest(tmp_path / 'plain') == _tree_digest(tmp_path / 'named') == \
        '4c6750b201e8dd82'
    assert not (tmp_path / 'plain' / 'recipe.json').exists()
    assert recipe('r2n2').is_default and not recipe('r2n2', variety='wide').is_default


def test_robot_recipe_dataset_records_its_recipe_and_true_cameras(tmp_path: Path) -> None:
    out = tmp_path / 'robot'
    robot = recipe('robot')
    write_dataset(out, per_category=1, seed=3, categories=['lamp', 'car'], views=3,
                  recipe=robot, progress=False)
    record = json.loads((out / 'recipe.json').read_text())
    assert record == {'recipe': 'robot', 'cameras': 'robot', 'variety': 'wide',
                      'elevation_deg': [0.0, 75.0], 'distance_grid_edges': [1.5, 6.0],
                      'fill': [0.45, 0.75]}
    taxonomy = json.loads((out / 'ShapeNet.json').read_text())
    for entry in taxonomy:
        mid = (entry['train'] + entry['val'] + entry['test'])[0]
        obj = dataset_object(entry['taxonomy_name'], 0, seed=3, variety='wide')
        folder = out / 'ShapeNetRendering' / entry['taxonomy_id'] / mid / 'rendering'
        lines = (folder / 'rendering_metadata.txt').read_text().splitlines()
        assert len(lines) == 3
        for view, line in enumerate(lines):
            camera = Camera.from_metadata_line(line)
            assert 0 <= camera.elevation_deg < 75 and camera.fov_deg != 25
            # The recorded camera renders the stored image exactly: the metadata is the truth.
            stored = cv2.imread(str(folder / f'{view:02d}.png'), cv2.IMREAD_UNCHANGED)
            rendered = render_view(obj, camera, supersample=2)
            np.testing.assert_array_equal(stored, cv2.cvtColor(rendered, cv2.COLOR_RGBA2BGRA))
        grid, _, _ = read_binvox(out / 'ShapeNetVox32' / entry['taxonomy_id'] / mid /
                                 'model.binvox')
        np.testing.assert_array_equal(grid, voxelize(obj))
    # The same seed and recipe write the same bytes; another recipe other objects and views.
    again = tmp_path / 'again'
    write_dataset(again, per_category=1, seed=3, categories=['lamp', 'car'], views=3,
                  recipe=robot, progress=False)
    files = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file())
    assert files == sorted(str(p.relative_to(again)) for p in again.rglob('*') if p.is_file())
    assert all((out / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_recipes_are_not_mixed_in_one_folder(tmp_path: Path) -> None:
    _small(tmp_path / 'r2n2')
    with pytest.raises(DatasetError, match='renderings of the r2n2 recipe'):
        _small(tmp_path / 'r2n2', recipe=recipe('robot'))
    _small(tmp_path / 'robot', recipe=recipe('robot'))
    with pytest.raises(DatasetError, match="another recipe \\('robot'"):
        _small(tmp_path / 'robot')
    with pytest.raises(DatasetError, match='another recipe'):
        _small(tmp_path / 'robot', recipe=recipe('robot', elevation_deg=(45.0, 75.0)))
    for kwargs, needle in (({'name': 'fancy'}, "unknown recipe 'fancy'"),
                           ({'name': 'robot', 'variety': 'odd'}, "unknown variety 'odd'"),
                           ({'name': 'robot', 'elevation_deg': (30, 95)}, 'elevation range')):
        with pytest.raises(RecipeError, match=needle):
            recipe(**kwargs)


# ---------------------------------------------------------------------------------------------
# Command line and contact sheet

def test_cli_writes_a_robot_dataset(tmp_path: Path, capsys) -> None:
    out = tmp_path / 'data'
    assert synth.main(['--out', str(out), '--per-category', '1', '--seed', '2',
                       '--categories', 'bottle', '--recipe', 'robot', '--elevation', '45', '75',
                       '--workers', '1', '--quiet']) == 0
    assert 'recipe robot, wide objects, elevations 45-75 degrees' in capsys.readouterr().out
    assert json.loads((out / 'recipe.json').read_text())['elevation_deg'] == [45.0, 75.0]
    lines = next(out.glob('ShapeNetRendering/*/*/rendering/rendering_metadata.txt'))
    assert all(45 <= float(line.split()[1]) < 75 for line in lines.read_text().splitlines())


@pytest.mark.parametrize('args, needle', [
    (['--recipe', 'fancy'], '--recipe fancy: unknown; known: r2n2, robot'),
    (['--variety', 'odd'], '--variety odd: unknown'),
    (['--elevation', '10', '95'], '--elevation: elevation range 10 95'),
    (['--recipe', 'robot', '--elevation', '60', '30'], '--elevation: elevation range 60 30'),
    (['--contact-sheet', 'x.jpg'], '--contact-sheet x.jpg: must name a .png file'),
    (['--contact-sheet', 'x.png', '--variety', 'odd'], '--variety odd: unknown'),
    (['--contact-sheet', 'x.png', '--sheet-objects', '0'], '--sheet-objects 0'),
    (['--contact-sheet', 'x.png', '--categories', 'spaceship'], 'spaceship'),
])
def test_cli_names_the_bad_value(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    base = [] if '--contact-sheet' in args else [
        '--out', str(tmp_path / 'x'), '--per-category', '1', '--seed', '0']
    assert synth.main([*base, *args, '--quiet']) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_cli_needs_out_per_category_and_seed_for_a_dataset(capsys) -> None:
    assert synth.main(['--per-category', '1', '--seed', '0']) == 2
    assert '--out is required to write a dataset' in capsys.readouterr().err


def test_contact_sheet_shows_each_variety_rendered_and_as_voxels(tmp_path: Path) -> None:
    sheet = tmp_path / 'sheet.png'
    assert synth.main(['--contact-sheet', str(sheet), '--sheet-objects', '2',
                       '--categories', 'mug', 'table']) == 0
    image = cv2.imread(str(sheet))
    # Two varieties of two objects, 137 pixels each, beside the labels; two rows a category.
    assert image.shape == (18 + 2 * 2 * 137, 80 + 4 * 137 + 6, 3)
    # One voxel, seen from the sheet's direction, is a small shaded patch in the middle.
    grid = np.zeros((32, 32, 32), bool)
    grid[16, 16, 16] = True
    view = voxel_view(grid)
    drawn = np.argwhere((view != 240).any(axis=2))
    assert 0 < len(drawn) < 60 and np.abs(drawn.mean(axis=0) - 68).max() < 5
    assert (voxel_view(np.zeros((32, 32, 32), bool)) == 240).all()
