"""binvox round trips, grid -> points, PLY and the ShapeNet -> ROS axis convention."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pix2voxpp_ros.core.voxels import (SHAPENET_TO_ROS, VoxelFileError, grid_to_points,
                                       pool_grid, read_binvox, read_ply, upsample_grid,
                                       voxel_centres, write_binvox, write_ply)

from bounded import within


def test_binvox_round_trip_is_exact(tmp_path) -> None:
    rng = np.random.default_rng(0)
    grid = rng.random((32, 32, 32)) > 0.7
    grid[:, :, :5] = True  # long runs: more than 255 equal voxels in a row
    path = tmp_path / 'model.binvox'
    write_binvox(path, grid, translate=(-0.5, -0.25, 0.125), scale=1.5)
    back, translate, scale = read_binvox(path)
    assert back.dtype == bool and back.shape == (32, 32, 32)
    assert np.array_equal(back, grid)
    assert translate.tolist() == [-0.5, -0.25, 0.125] and scale == 1.5


def test_binvox_data_order_is_x_z_y() -> None:
    """A hand-written file: only voxel (x=0, y=1, z=0) set, which is position 1 in x-z-y order."""
    header = b'#binvox 1\ndim 2 2 2\ntranslate 0 0 0\nscale 1\ndata\n'
    data = bytes([0, 1, 1, 1, 0, 6])
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.binvox') as handle:
        handle.write(header + data)
        handle.flush()
        grid, _, _ = read_binvox(handle.name)
    expected = np.zeros((2, 2, 2), bool)
    expected[0, 1, 0] = True
    assert np.array_equal(grid, expected)


def test_binvox_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(VoxelFileError, match='missing.binvox: cannot read'):
        read_binvox(tmp_path / 'missing.binvox')
    bad = tmp_path / 'bad.binvox'
    bad.write_bytes(b'#binvox 1\ndim 32 32 32\ndata\n' + bytes([1, 255]))
    with pytest.raises(VoxelFileError, match='bad.binvox: binvox data truncated'):
        read_binvox(bad)
    bad.write_bytes(b'PLY\n')
    with pytest.raises(VoxelFileError, match='bad.binvox'):
        read_binvox(bad)


def test_axis_convention_on_an_asymmetric_grid() -> None:
    """An L of voxels plus a marker: ShapeNet +y (up) -> ROS +z, +x -> ROS +y, +z -> ROS +x."""
    grid = np.zeros((32, 32, 32), np.float32)
    grid[0, :, 0] = 0.6  # column along ShapeNet y (up) at x = 0, z = 0
    grid[:, 0, 0] = 0.6  # foot along ShapeNet x at y = 0
    grid[0, 31, 0] = 0.9  # top of the column
    grid[31, 0, 0] = 0.8  # tip of the foot
    grid[0, 0, 31] = 0.7  # a single voxel far along ShapeNet z
    points, probs = grid_to_points(grid, threshold=0.5, object_size_m=3.2)
    assert len(points) == 32 + 31 + 1
    near, far = -1.55, 1.55  # centres of the first and last voxel of a 3.2 m grid
    assert points[probs == 0.9][0] == pytest.approx([near, near, far])  # up stays up (ROS z)
    assert points[probs == 0.8][0] == pytest.approx([near, far, near])  # ShapeNet x -> ROS y
    assert points[probs == 0.7][0] == pytest.approx([far, near, near])  # ShapeNet z -> ROS x
    assert np.linalg.det(SHAPENET_TO_ROS) == pytest.approx(1.0)  # a rotation, no mirror


def test_grid_to_points_threshold_and_shapenet_axes() -> None:
    grid = np.zeros((4, 4, 4), np.float32)
    grid[3, 2, 1] = 0.5
    grid[1, 1, 1] = 0.49
    points, probs = grid_to_points(grid, threshold=0.5, object_size_m=4.0, ros_axes=False)
    assert points.tolist() == [[1.5, 0.5, -0.5]] and probs.tolist() == [0.5]
    centres = voxel_centres(4, edge_length=4.0)
    assert centres[3, 2, 1].tolist() == [1.5, 0.5, -0.5]


def test_ply_round_trip(tmp_path) -> None:
    points = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, 3.0]], np.float32)
    values = np.array([0.5, 0.75], np.float32)
    path = tmp_path / 'cloud.ply'
    write_ply(path, points, values)
    assert path.read_bytes().startswith(b'ply\nformat binary_little_endian 1.0\n')
    back = read_ply(path)
    assert np.array_equal(np.stack([back['x'], back['y'], back['z']], 1), points)
    assert np.array_equal(back['occupancy'], values)


def _runs_file(path, dims: str, data_bytes: int) -> None:
    """Write a binvox file declaring ``dims`` whose data is ``data_bytes`` of (1, 255) runs."""
    header = f'#binvox 1\ndim {dims}\ntranslate 0 0 0\nscale 1\ndata\n'.encode()
    path.write_bytes(header + bytes([1, 255]) * (data_bytes // 2))


def test_huge_declared_grid_is_refused_before_expanding(tmp_path) -> None:
    """32 MB of runs declaring 1600³ (4 G voxels): refused from the header, at once."""
    path = tmp_path / 'huge.binvox'
    _runs_file(path, '1600 1600 1600', 32 << 20)
    with within(seconds=20.0, grown_mib=100), pytest.raises(
            VoxelFileError, match=r'huge.binvox: binvox grid 1600x1600x1600 exceeds the 512 '
                                  r'voxels per edge'):
        read_binvox(path)


def test_runs_beyond_the_grid_are_never_expanded(tmp_path) -> None:
    """A 32³ grid followed by 32 MB of runs (4 G voxels): the grid, in bounded memory."""
    path = tmp_path / 'long.binvox'
    _runs_file(path, '32 32 32', 32 << 20)
    with within(seconds=20.0, grown_mib=150):
        grid, _, _ = read_binvox(path)
    assert grid.shape == (32, 32, 32) and grid.all()


def test_fuzzed_binvox_files_are_refused_or_read(tmp_path) -> None:
    """300 random mutations of a small file: a VoxelFileError or a grid, fast, nothing else."""
    rng = np.random.default_rng(16)
    source = tmp_path / 'source.binvox'
    write_binvox(source, rng.random((16, 16, 16)) > 0.6)
    original = source.read_bytes()
    path = tmp_path / 'fuzz.binvox'
    outcomes = {'refused': 0, 'read': 0}
    deadline = time.monotonic() + 60
    for _ in range(300):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 4))):
            where = int(rng.integers(len(data)))
            if rng.random() < 0.5:
                data[where] = int(rng.integers(256))
            elif rng.random() < 0.5:
                del data[where:where + int(rng.integers(1, 16))]
            else:
                digits = str(int(rng.integers(0, 10 ** int(rng.integers(1, 7))))).encode()
                data[where:where] = digits  # grow a header number
        path.write_bytes(bytes(data))
        try:
            grid, translate, scale = read_binvox(path)
        except VoxelFileError as exc:
            assert '\n' not in str(exc) and str(exc).startswith(f'{path}: ')
            outcomes['refused'] += 1
        else:
            assert grid.dtype == bool and grid.ndim == 3 and max(grid.shape) <= 512
            outcomes['read'] += 1
        assert time.monotonic() < deadline
    assert outcomes['refused'] > 20 and outcomes['read'] > 20, outcomes


def test_pool_and_upsample_keep_the_grid_convention(tmp_path) -> None:
    """A coarse voxel covers its fine block: same edge, same centre, 128³ binvox round trip."""
    rng = np.random.default_rng(3)
    coarse = rng.random((8, 8, 8)).astype(np.float32)
    fine = upsample_grid(coarse, 4)
    assert fine.shape == (32, 32, 32) and fine[4 * 5 + 3, 4 * 2, 4 * 7 + 1] == coarse[5, 2, 7]
    assert np.array_equal(pool_grid(fine, 4), coarse)
    np.testing.assert_allclose(pool_grid(fine, 4, reduce='mean'), coarse, rtol=1e-6)
    # Each coarse voxel's centre is the mean of its fine voxels' centres.
    np.testing.assert_allclose(voxel_centres(8), voxel_centres(32).reshape(
        8, 4, 8, 4, 8, 4, 3).mean(axis=(1, 3, 5)), atol=1e-6)
    occupied = rng.random((128, 128, 128)) > 0.97
    block = occupied.reshape(32, 4, 32, 4, 32, 4)
    assert np.array_equal(pool_grid(occupied, 4), block.any(axis=(1, 3, 5)))
    assert np.array_equal(pool_grid(occupied, 4, reduce='mean') >= 0.5,
                          block.sum(axis=(1, 3, 5)) >= 32)  # majority, ties occupied
    write_binvox(tmp_path / 'fine.binvox', occupied)
    assert np.array_equal(read_binvox(tmp_path / 'fine.binvox')[0], occupied)
    for bad in (lambda: pool_grid(fine, 3), lambda: pool_grid(fine[:, :, :8], 4),
                lambda: pool_grid(fine, 4, reduce='min'), lambda: upsample_grid(coarse, 0)):
        with pytest.raises(ValueError):
            bad()
