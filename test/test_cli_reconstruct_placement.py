"""``pix2voxpp-reconstruct --calibration``: images placed in the robot's world, bad files refused.

A tabletop scene (a chair among distractors) is rendered by three cameras of known intrinsics,
posed in ``world`` around the chair placed at a known position, heading and size; the test
writes the images, the true masks and one calibration file per image (three formats: ``K`` and
a quaternion in YAML, ``fx fy cx cy`` and a 4x4 matrix in JSON, a ``camera_calibration`` style
YAML). The tool runs in-process with the shipped weights. Bad calibration files are run with
weights that do not exist: a refusal must come before the network is even loaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple

import cv2
import numpy as np
import pytest
import yaml

from pix2voxpp_ros.cli.reconstruct import main
from pix2voxpp_ros.core.calibration_file import (MAX_CALIBRATION_FILE_BYTES, CalibrationFileError,
                                                 parse_calibration, read_calibration_file)
from pix2voxpp_ros.core.geometry import matrix_to_quaternion
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.synthetic import dataset_object
from pix2voxpp_ros.core.synthetic.scenes import make_tabletop_scene, render_scene_view, \
    tabletop_cameras
from pix2voxpp_ros.core.synthetic.voxelize import voxelize
from pix2voxpp_ros.core.synthetic.world import camera_to_fixed
from pix2voxpp_ros.core.voxels import read_ply

from placement_helpers import share_on_object

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'
TRUTH = ObjectPose((0.62, -0.35, 0.41), 2.2, 0.9)  # a chair 0.9 m across, turned 126 degrees
SEED = 20261125


class Scene(NamedTuple):
    truth: np.ndarray  # (32, 32, 32) bool, ShapeNet axes
    images: list[Path]
    masks: list[Path]
    calibrations: list[Path]
    documents: list[dict[str, Any]]


def _calibration_documents(cameras: list[Any]) -> list[dict[str, Any]]:
    """One calibration per camera, each in another of the accepted forms."""
    documents = []
    for index, camera in enumerate(cameras):
        k, pose = np.asarray(camera.intrinsics, dtype=float), camera_to_fixed(camera, TRUTH)
        position = [float(v) for v in pose[:3, 3]]
        quaternion = list(matrix_to_quaternion(pose[:3, :3]))
        if index == 0:
            document = {'K': k.reshape(-1).tolist(), 'width': camera.width,
                        'height': camera.height, 'position': position,
                        'orientation': quaternion}
        elif index == 1:
            document = {'fx': k[0, 0], 'fy': k[1, 1], 'cx': k[0, 2], 'cy': k[1, 2],
                        'width': camera.width, 'height': camera.height,
                        'camera_to_fixed': pose.tolist()}
        else:  # as camera_calibration writes it, plus the pose as geometry_msgs/Pose fields
            document = {'image_width': camera.width, 'image_height': camera.height,
                        'camera_name': 'camera_2', 'distortion_model': 'plumb_bob',
                        'camera_matrix': {'rows': 3, 'cols': 3, 'data': k.reshape(-1).tolist()},
                        'distortion_coefficients': {'rows': 1, 'cols': 5, 'data': [0.0] * 5},
                        'position': dict(zip('xyz', position)),
                        'orientation': dict(zip('xyzw', quaternion))}
        documents.append({'fixed_frame': 'world', **document})
    return documents


def _write_calibration(path: Path, document: dict[str, Any]) -> Path:
    text = json.dumps(document) if path.suffix == '.json' else yaml.safe_dump(document)
    path.write_text(text)
    return path


@pytest.fixture(scope='module')
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    folder = tmp_path_factory.mktemp('placed_scene')
    obj = dataset_object('chair', 0, seed=SEED)
    cameras = tabletop_cameras(3, seed=SEED)
    layout = make_tabletop_scene(obj, seed=SEED, occluder_azimuth_deg=None)
    images, masks, calibrations = [], [], []
    documents = _calibration_documents(cameras)
    for index, (camera, document) in enumerate(zip(cameras, documents)):
        view = render_scene_view(layout, camera)
        images.append(folder / f'view{index}.png')
        cv2.imwrite(str(images[-1]), cv2.cvtColor(view.image, cv2.COLOR_RGB2BGR))
        masks.append(folder / f'view{index}_mask.png')
        cv2.imwrite(str(masks[-1]), np.where(view.mask, 255, 0).astype(np.uint8))
        suffix = '.json' if index == 1 else '.yaml'
        calibrations.append(_write_calibration(folder / f'view{index}{suffix}', document))
    return Scene(voxelize(obj), images, masks, calibrations, documents)


def _args(scene: Scene, out: Path, calibrations: list[Path] | None = None,
          weights: Path = WEIGHTS) -> list[str]:
    args = ['--weights', str(weights), '--out', str(out), '--device', 'cpu', '--backend',
            'torch']
    for image, mask, calibration in zip(scene.images, scene.masks,
                                        calibrations or scene.calibrations):
        args += [str(image), '--mask', str(mask), '--calibration', str(calibration)]
    return args


class Run(NamedTuple):
    code: int
    out: str
    err: str
    folder: Path


@pytest.fixture(scope='module')
def placed(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One placed run, shared: it costs the network and the placement (a few seconds)."""
    folder = tmp_path_factory.mktemp('placed_out')
    out, err = io.StringIO(), io.StringIO()  # capsys is per test: captured by hand
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(_args(scene, folder / 'chair.ply') + ['--png', str(folder / 'chair.png')])
    return Run(code, out.getvalue(), err.getvalue(), folder)


def test_the_placed_cloud_lands_on_the_object(scene: Scene, placed: Run) -> None:
    assert placed.code == 0, placed.err
    cloud = read_ply(placed.folder / 'chair.ply')
    points = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1)
    assert len(points) > 50
    assert share_on_object(points, scene.truth, TRUTH) > 0.8
    line = next(line for line in placed.out.splitlines() if line.startswith('placed in world'))
    numbers = [float(v) for v in re.findall(r'-?\d+\.\d+', line)]
    position, heading, size, iou = np.array(numbers[:3]), numbers[3], numbers[4], numbers[5]
    assert np.linalg.norm(position - TRUTH.position) < 0.05 * TRUTH.size_m, line
    assert abs(size / TRUTH.size_m - 1) < 0.1, line
    assert abs((heading - np.degrees(TRUTH.heading_rad) + 180) % 360 - 180) < 15, line
    assert 0.5 <= iou <= 1.0
    record = json.loads((placed.folder / 'chair.placement.json').read_text())
    assert record['fixed_frame'] == 'world' and record['views'] == 3
    np.testing.assert_allclose(record['position_m'], position, atol=1e-3)
    assert record['voxel_size_m'] == pytest.approx(record['size_m'] / 32)
    grid_to_fixed = np.array(record['grid_to_fixed'])
    np.testing.assert_allclose(grid_to_fixed[:3, 3], record['position_m'])
    assert (placed.folder / 'chair.png').is_file()
    assert sorted(p.name for p in placed.folder.iterdir()) == [  # nothing staged left behind
        'chair.placement.json', 'chair.ply', 'chair.png']


def test_the_three_file_forms_read_alike(scene: Scene) -> None:
    calibrations = [read_calibration_file(path) for path in scene.calibrations]
    for calibration, document in zip(calibrations, scene.documents):
        assert calibration.fixed_frame == 'world'
        k = document.get('K') or document.get('camera_matrix', {}).get('data')
        if k is not None:
            np.testing.assert_allclose(calibration.intrinsics.matrix.reshape(-1), k)
    np.testing.assert_allclose(calibrations[1].camera_to_fixed,
                               np.array(scene.documents[1]['camera_to_fixed']), atol=1e-12)
    as_quaternion = dict(scene.documents[1])
    pose = np.array(as_quaternion.pop('camera_to_fixed'))
    as_quaternion.update(position=pose[:3, 3].tolist(),
                         orientation=list(matrix_to_quaternion(pose[:3, :3])))
    np.testing.assert_allclose(parse_calibration(as_quaternion).camera_to_fixed, pose,
                               atol=1e-12)


def test_a_fit_below_the_threshold_writes_nothing(scene: Scene, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    code = main(_args(scene, tmp_path / 'out' / 'chair.ply') + ['--min-placement-iou', '1'])
    err = capsys.readouterr().err
    assert code == 1 and err.count('\n') == 1, err
    assert 'cannot place the reconstruction in world' in err and 'min_placement_iou 1' in err
    assert not (tmp_path / 'out').exists() or not any((tmp_path / 'out').iterdir())


def test_a_placed_grid_file_comes_with_its_placement(scene: Scene, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """``.npy`` keeps the grid's own axes; ``OUT.placement.json`` says where it stands."""
    assert main(_args(scene, tmp_path / 'chair.npy') + ['--carve']) == 0
    grid = np.load(tmp_path / 'chair.npy')
    record = json.loads((tmp_path / 'chair.placement.json').read_text())
    assert grid.shape == (32, 32, 32) and record['carved'] is True
    assert f'{int((grid >= record["threshold"]).sum())} occupied voxels' in capsys.readouterr().out
    # The grid's voxel centres, moved by grid_to_fixed, lie on the object.
    index = np.argwhere(grid >= record['threshold'])  # ROS axes
    local = ((index + 0.5) / 32 - 0.5) * record['size_m']
    pose = np.array(record['grid_to_fixed'])
    assert share_on_object(local @ pose[:3, :3].T + pose[:3, 3], scene.truth, TRUTH) > 0.8


def _changed(key: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        document = dict(document)
        if value is None:
            del document[key]
        else:
            document[key] = value
        return document
    return change


ALIAS_BOMB = ''.join(f'{name}: &{name} [{", ".join([f"*{last}"] * 9)}]\n'
                     for last, name in zip('abcdefg', 'bcdefgh'))
ALIAS_BOMB = 'a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n' + ALIAS_BOMB + 'K: *h\n'  # 9^8 ones

# case: (file suffix, change to camera 0's document or the file's text, words the refusal has)
BAD_FILES: dict[str, tuple[str, Any, str]] = {
    'missing K': ('.yaml', _changed('K', None), 'K: missing'),
    'missing pose': ('.yaml', _changed('orientation', None), 'orientation: missing'),
    'missing frame': ('.json', _changed('fixed_frame', None), 'fixed_frame: missing'),
    'NaN in K': ('.yaml', _changed('K', [float('nan')] + [0.0] * 8), 'K: expected a finite'),
    'NaN position': ('.json', _changed('position', [0.0, float('nan'), 0.0]), 'position: '),
    'zero focal length': ('.yaml', _changed('K', [0.0] * 8 + [1.0]), 'K: K has focal lengths'),
    'zero quaternion': ('.yaml', _changed('orientation', [0, 0, 0, 0]), 'orientation: '),
    'wrong size': ('.yaml', _changed('width', 320), 'width, height: 320x480, but image'),
    'misspelt key': ('.yaml', _changed('orientaton', [0, 0, 0, 1]), 'orientaton: unknown key'),
    'distortion': ('.yaml', _changed('D', [0.1, 0, 0, 0, 0]), 'D: placement takes rectified'),
    'other frame': ('.yaml', _changed('fixed_frame', 'map'), "gives 'map': every pose must"),
    'not a rotation': ('.json', lambda d: {
        **{k: v for k, v in d.items() if k not in ('position', 'orientation')},
        'camera_to_fixed': np.diag([2.0, 2.0, 2.0, 1.0]).tolist()},
        'camera_to_fixed: the upper-left 3x3 is no rotation'),
    'alias bomb': ('.yaml', ALIAS_BOMB, 'YAML aliases (*a) are refused'),
    'huge file': ('.yaml', '#' * (MAX_CALIBRATION_FILE_BYTES + 1),
                  f'more than {MAX_CALIBRATION_FILE_BYTES}'),
    'not JSON': ('.json', '{"K": [1, 2', 'not valid JSON'),
    'deep nesting': ('.yaml', 'K: ' + '[' * 5000, 'brackets nested more than 8 deep'),
    'deep blocks': ('.yaml', 'K:\n  ' + '- ' * 5000 + '1', 'nested too deeply'),
    'not a mapping': ('.yaml', '- 1\n- 2\n', 'expected a mapping'),
    'other suffix': ('.txt', _changed('K', None), 'a calibration file ends in'),
}


@pytest.mark.parametrize('case', BAD_FILES)
def test_bad_calibration_files_are_refused_before_the_network(
        scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    suffix, change, words = BAD_FILES[case]
    bad = tmp_path / f'bad{suffix}'
    if isinstance(change, str):
        bad.write_text(change)
    else:
        document = change(scene.documents[0])
        bad.write_text(json.dumps(document) if suffix == '.json' else yaml.safe_dump(document))
    out = tmp_path / 'out' / 'chair.ply'
    # Weights that do not exist: the refusal has to come before the network is loaded.
    code = main(_args(scene, out, [bad] + scene.calibrations[1:], tmp_path / 'none.pth'))
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1, err
    assert str(bad) in err and words in err, err
    assert not (tmp_path / 'out').exists()


def test_calibration_needs_masks_and_one_file_per_image(scene: Scene, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'chair.ply'
    args = ['--weights', str(tmp_path / 'none.pth'), '--out', str(out)]
    views = [str(p) for p in scene.images]
    cases = {
        '2 --calibration for 3 images': views + ['--calibration', str(scene.calibrations[0]),
                                                 '--calibration', str(scene.calibrations[1])],
        '--calibration needs a --mask per image': [
            arg for image, calibration in zip(views, scene.calibrations)
            for arg in (image, '--calibration', str(calibration))],
        'placement needs two calibrated views': [views[0], '--mask', str(scene.masks[0]),
                                                 '--calibration', str(scene.calibrations[0])],
    }
    for words, argv in cases.items():
        assert main(args + argv) == 2
        assert words in capsys.readouterr().err
    argv = _args(scene, out, weights=tmp_path / 'none.pth')
    assert main(argv + ['--object-size-m', '2']) == 2
    assert '--object-size-m: not with --calibration' in capsys.readouterr().err
    absent = tmp_path / 'absent.yaml'
    assert main(_args(scene, out, [absent] + scene.calibrations[1:], tmp_path / 'none.pth')) == 2
    assert f'--calibration {absent}: no such calibration file' in capsys.readouterr().err
    assert main(argv + ['--axes', 'shapenet']) == 2
    assert 'the .ply is in fixed_frame' in capsys.readouterr().err
    assert not out.exists()


def test_values_are_bounded_and_shown_short() -> None:
    document = {'fixed_frame': 'w' * 300, 'K': [1] * 9, 'width': 1, 'height': 1,
                'position': [0, 0, 0], 'orientation': [0, 0, 0, 1]}
    with pytest.raises(CalibrationFileError, match='fixed_frame: expected a frame name') as info:
        parse_calibration(document)
    assert len(str(info.value)) < 300
    huge = dict(document, fixed_frame='world', width=10 ** 400)
    with pytest.raises(CalibrationFileError, match='width'):
        parse_calibration(huge)
    with pytest.raises(CalibrationFileError, match='width: 100000x100000 is more than'):
        parse_calibration(dict(document, fixed_frame='world', width=100000, height=100000))
    yaml_exponent = dict(document, fixed_frame='world', K=['5e2', 0, 1, 0, '5e2', 1, 0, 0, 1])
    assert parse_calibration(yaml_exponent).intrinsics.matrix[0, 0] == 500.0  # PyYAML's '5e2'
