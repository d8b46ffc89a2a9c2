"""``pix2voxpp-reconstruct`` end to end in a subprocess, on images and weights the test writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.checkpoint import WeightsMetadata, save_checkpoint
from pix2voxpp_ros.core.preprocess import preprocess_frame, preprocess_rendering
from pix2voxpp_ros.core.voxels import grid_to_ros_axes, read_binvox, read_ply

from model_helpers import make_model


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'pix2voxpp_ros.cli.reconstruct', *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def scene(tmp_path):
    """Two 137×137 RGBA renderings of a box, a 640×480 camera frame and an /F checkpoint."""
    paths = []
    for i in range(2):
        rendering = np.zeros((137, 137, 4), np.uint8)
        cv2.rectangle(rendering, (40 + 5 * i, 30), (100, 110), (40, 90, 200, 255), -1)
        path = tmp_path / f'{i:02d}.png'
        cv2.imwrite(str(path), rendering)
        paths.append(path)
    frame = np.full((480, 640, 3), 200, np.uint8)
    cv2.circle(frame, (320, 240), 120, (30, 160, 60), -1)
    frame_path = tmp_path / 'camera.jpg'
    cv2.imwrite(str(frame_path), frame)
    model = make_model('F', seed=8)
    # A low threshold so that an untrained network still marks voxels occupied.
    metadata = WeightsMetadata(threshold=0.05)
    weights = tmp_path / 'weights.pth'
    save_checkpoint(weights, model, metadata=metadata)
    return {'renderings': paths, 'frame': frame_path, 'weights': weights, 'model': model}


def test_reconstruct_writes_grid_and_picture(scene, tmp_path) -> None:
    out = tmp_path / 'result.npy'
    png = tmp_path / 'preview.png'
    result = _run('--weights', str(scene['weights']), *map(str, scene['renderings']),
                  '--out', str(out), '--png', str(png), '--device', 'cpu', '--backend', 'torch')
    assert result.returncode == 0, result.stderr
    assert '2 view(s)' in result.stdout
    grid = np.load(out)
    views = np.stack([preprocess_rendering(cv2.imread(str(p), cv2.IMREAD_UNCHANGED))
                      for p in scene['renderings']])
    with torch.no_grad():
        expected = scene['model'](torch.from_numpy(views)[None])[0].numpy()
    np.testing.assert_allclose(grid, grid_to_ros_axes(expected), atol=1e-6)  # ROS axes
    picture = cv2.imread(str(png))
    assert picture is not None and picture.shape[1] > 3 * 32 * 4
    assert (picture < 250).any()  # something was drawn, not a blank page


def test_reconstruct_binvox_and_ply(scene, tmp_path) -> None:
    binvox = tmp_path / 'result.binvox'
    result = _run('--weights', str(scene['weights']), str(scene['frame']), '--out', str(binvox),
                  '--threshold', '0.5', '--device', 'cpu', '--backend', 'torch')
    assert result.returncode == 0, result.stderr
    frame = cv2.imread(str(scene['frame']))
    with torch.no_grad():
        view = torch.from_numpy(preprocess_frame(frame, encoding='bgr8'))[None, None]
        expected = scene['model'](view)[0].numpy() >= 0.5
    assert np.array_equal(read_binvox(binvox)[0], grid_to_ros_axes(expected))

    ply = tmp_path / 'result.ply'
    result = _run('--weights', str(scene['weights']), str(scene['frame']), '--out', str(ply),
                  '--threshold', '0.5', '--object-size-m', '0.64', '--backend', 'torch')
    assert result.returncode == 0, result.stderr
    cloud = read_ply(ply)
    assert len(cloud['x']) == int(expected.sum())
    assert np.abs(np.stack([cloud['x'], cloud['y'], cloud['z']])).max() <= 0.32


def test_every_output_file_uses_one_axis_convention(scene, tmp_path) -> None:
    def write(suffix: str, *extra: str) -> Path:
        out = tmp_path / f'grid{"".join(extra)}{suffix}'
        result = _run('--weights', str(scene['weights']), str(scene['frame']), '--out', str(out),
                      '--threshold', '0.5', '--object-size-m', '1.0', *extra)
        assert result.returncode == 0, result.stderr
        return out
    grid = np.load(write('.npy'))
    occupied = grid >= 0.5
    assert occupied.any() and not np.array_equal(occupied, occupied.transpose(1, 2, 0))
    assert np.array_equal(read_binvox(write('.binvox'))[0], occupied)
    cloud = read_ply(write('.ply'))
    index = np.rint((np.stack([cloud['x'], cloud['y'], cloud['z']], 1) + 0.5) * 32 - 0.5)
    from_ply = np.zeros_like(occupied)
    from_ply[tuple(index.astype(int).T)] = True
    assert np.array_equal(from_ply, occupied)  # .ply points index the .npy grid
    shapenet = np.load(write('.npy', '--axes', 'shapenet'))
    np.testing.assert_array_equal(grid_to_ros_axes(shapenet), grid)


def test_a_128_checkpoint_writes_128_grids_at_edge_over_128(scene, tmp_path) -> None:
    """The tool rebuilds the 128³ network from the file alone; 10 views are refused (memory)."""
    from pix2voxpp_ros.core.model import ModelConfig, build_model
    torch.manual_seed(5)
    model = build_model(ModelConfig(resolution=128)).eval()
    weights = tmp_path / 'f128.pth'
    save_checkpoint(weights, model, metadata=WeightsMetadata(threshold=0.5))
    out, ply = tmp_path / 'fine.npy', tmp_path / 'fine.ply'
    for path in (out, ply):
        result = _run('--weights', str(weights), *map(str, scene['renderings']), '--out',
                      str(path), '--object-size-m', '0.64', '--device', 'cpu',
                      '--backend', 'torch')
        assert result.returncode == 0, result.stderr
    views = np.stack([preprocess_rendering(cv2.imread(str(p), cv2.IMREAD_UNCHANGED))
                      for p in scene['renderings']])
    with torch.no_grad():
        expected = grid_to_ros_axes(model(torch.from_numpy(views)[None])[0].numpy())
    grid = np.load(out)
    assert grid.shape == (128, 128, 128)
    np.testing.assert_allclose(grid, expected, atol=1e-5)
    cloud = read_ply(ply)
    points = np.stack([cloud['x'], cloud['y'], cloud['z']], 1)
    index = np.rint((points / 0.64 + 0.5) * 128 - 0.5)
    np.testing.assert_allclose(points, ((index + 0.5) / 128 - 0.5) * 0.64, atol=1e-6)
    assert 0 < len(points) and abs(len(points) - int((expected >= 0.5).sum())) <= int(
        (np.abs(expected - 0.5) < 1e-5).sum())
    result = _run('--weights', str(weights), *map(str, scene['renderings'] * 5), '--out',
                  str(tmp_path / 'many.npy'), '--device', 'cpu', '--backend', 'torch')
    assert result.returncode == 1 and not (tmp_path / 'many.npy').exists()
    assert '10 views of one object at 128³ would take about 3.2 GB' in result.stderr


def test_reconstruct_errors_name_the_culprit(scene, tmp_path) -> None:
    missing = tmp_path / 'missing.pth'
    result = _run('--weights', str(missing), str(scene['frame']), '--out',
                  str(tmp_path / 'x.npy'))
    assert result.returncode == 1 and f'{missing}: checkpoint file not found' in result.stderr
    result = _run('--weights', str(scene['weights']), str(scene['frame']), '--out',
                  str(tmp_path / 'x.obj'))
    assert result.returncode == 2 and 'x.obj: suffix must be one of' in result.stderr
    result = _run('--weights', str(scene['weights']), str(tmp_path / 'nope.png'), '--out',
                  str(tmp_path / 'x.npy'))
    assert result.returncode == 2 and 'nope.png: no such image file' in result.stderr
    not_image = tmp_path / 'text.png'
    not_image.write_text('not an image')
    result = _run('--weights', str(scene['weights']), str(not_image), '--out',
                  str(tmp_path / 'x.npy'))
    assert result.returncode == 1 and 'text.png: cannot read image file' in result.stderr


def test_masks_crop_each_view_as_the_core_does(scene, tmp_path) -> None:
    frame = cv2.imread(str(scene['frame']), cv2.IMREAD_UNCHANGED)  # bgr8, decoded as the CLI does
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.rectangle(mask, (250, 170), (390, 310), 255, -1)
    mask_path = tmp_path / 'mask.png'
    cv2.imwrite(str(mask_path), mask)
    out = tmp_path / 'masked.npy'
    result = _run('--weights', str(scene['weights']), str(scene['frame']), str(scene['frame']),
                  '--mask', str(mask_path), '--mask', str(mask_path), '--out', str(out),
                  '--axes', 'shapenet', '--device', 'cpu', '--backend', 'torch')
    assert result.returncode == 0, result.stderr
    view = preprocess_frame(frame, encoding='bgr8', mask=mask, roi_margin=-1.0,
                            metadata=WeightsMetadata(threshold=0.05))
    with torch.no_grad():
        expected = scene['model'](torch.from_numpy(np.stack([view, view]))[None])[0].numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
    unmasked = tmp_path / 'unmasked.npy'
    assert _run('--weights', str(scene['weights']), str(scene['frame']), str(scene['frame']),
                '--out', str(unmasked), '--axes', 'shapenet', '--device', 'cpu',
                '--backend', 'torch').returncode == 0
    assert np.abs(np.load(unmasked) - expected).max() > 1e-3  # the mask changed the input


def test_bad_masks_name_the_file(scene, tmp_path) -> None:
    args = ['--weights', str(scene['weights']), str(scene['frame']), '--out',
            str(tmp_path / 'x.npy'), '--device', 'cpu', '--backend', 'torch']
    result = _run(*args, str(scene['frame']), '--mask', str(scene['frame']))
    assert result.returncode == 2 and '1 --mask for 2 images' in result.stderr
    result = _run(*args, '--mask', str(tmp_path / 'absent.png'))
    assert result.returncode == 2 and 'absent.png: no such mask file' in result.stderr
    small = tmp_path / 'small.png'
    cv2.imwrite(str(small), np.full((10, 10), 255, np.uint8))
    result = _run(*args, '--mask', str(small))
    assert result.returncode == 1 and 'small.png' in result.stderr and 'mask' in result.stderr
    empty = tmp_path / 'empty.png'
    cv2.imwrite(str(empty), np.zeros((480, 640), np.uint8))
    result = _run(*args, '--mask', str(empty))
    assert result.returncode == 1 and 'empty.png' in result.stderr
    colour = tmp_path / 'colour.png'
    cv2.imwrite(str(colour), np.zeros((480, 640, 3), np.uint8))
    result = _run(*args, '--mask', str(colour))
    assert result.returncode == 1 and 'colour.png: a mask must have one channel' in result.stderr


def _refusal(*args: str) -> str:
    """Run the tool expecting a usage refusal: exit 2 and one line, returned."""
    result = _run(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize('value', ['-1', '0', 'nan', 'inf', '1e6'])
def test_bad_object_size_is_refused(scene, tmp_path, value: str) -> None:
    line = _refusal('--weights', str(scene['weights']), str(scene['frame']), '--out',
                    str(tmp_path / 'grid.ply'), f'--object-size-m={value}')
    assert f'--object-size-m {float(value)}: must be above 0 and at most 1000' in line


def test_unwritable_outputs_are_refused_before_the_network_runs(scene, tmp_path) -> None:
    """Checked first: the weights given here do not even exist."""
    common = ('--weights', str(tmp_path / 'no_weights.pth'), str(scene['frame']))
    folder = tmp_path / 'taken.npy'
    folder.mkdir()
    assert _refusal(*common, '--out', str(folder)).endswith(f'--out {folder}: is a directory')
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    below = blocker / 'out.npy'
    assert f'--out {below}: {blocker} is not a folder' in _refusal(*common, '--out', str(below))
    read_only = Path('/proc/self/pix2voxpp/out.npy')  # not writable even by root
    line = _refusal(*common, '--out', str(read_only))
    assert line.endswith(f'--out {read_only}: folder /proc/self is not writable')
    out = str(tmp_path / 'grid.npy')
    line = _refusal(*common, '--out', out, '--png', str(tmp_path / 'picture'))
    assert 'OpenCV cannot write pictures with this suffix' in line
    line = _refusal(*common, '--out', out, '--png', '/proc/self/picture.png')
    assert line.endswith('--png /proc/self/picture.png: folder /proc/self is not writable')
    assert not (tmp_path / 'grid.npy').exists()


def test_read_only_folder_is_refused_for_a_user(scene, tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip('root writes into read-only folders; /proc/self stands in above')
    folder = tmp_path / 'ro'
    folder.mkdir()
    folder.chmod(0o555)
    line = _refusal('--weights', str(scene['weights']), str(scene['frame']),
                    '--out', str(tmp_path / 'grid.npy'), '--png', str(folder / 'p.png'))
    assert line.endswith(f'folder {folder} is not writable')


def test_partial_outputs_a_killed_run_left_are_removed(scene, tmp_path) -> None:
    """A run writes under ``.STEM.partial-PID.SUFFIX``; a killed one's leftovers go next time."""
    child = subprocess.Popen(['true'])
    child.wait()  # a process that no longer runs
    dead = [tmp_path / f'.result.partial-{child.pid}.npy',
            tmp_path / f'.preview.partial-{child.pid}.png']
    kept = [tmp_path / f'.result.partial-{os.getppid()}.npy',  # a run still going
            tmp_path / f'.other.partial-{child.pid}.npy',  # not an output of this run
            tmp_path / f'.result.partial-{child.pid}.ply']  # another suffix: result.ply's
    for path in dead + kept:
        path.write_bytes(b'half')
    result = _run('--weights', str(scene['weights']), *map(str, scene['renderings']),
                  '--out', str(tmp_path / 'result.npy'), '--png', str(tmp_path / 'preview.png'),
                  '--device', 'cpu', '--backend', 'torch')
    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in dead)
    assert all(path.read_bytes() == b'half' for path in kept)
    assert np.load(tmp_path / 'result.npy').shape == (32, 32, 32)
    assert sorted(p.name for p in tmp_path.iterdir() if 'partial' in p.name) == \
        sorted(p.name for p in kept)
