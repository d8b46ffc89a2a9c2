"""Voxel grids: binvox files, grid -> points, PLY export and the model-to-ROS axis convention.

Axis convention (one for the whole project)
-------------------------------------------
The network's grid ``grid[i, j, k]`` is indexed (x, y, z) in ShapeNet's canonical object frame,
exactly as ShapeNetVox32 binvox files read with :func:`read_binvox`: **y is up**. Voxel
``(i, j, k)`` has its centre at ``((i, j, k) + 0.5) / N - 0.5`` in units of the grid's edge length,
so the grid is centred on the origin of its frame.

ROS (REP 103) uses x forward, y left, z up. The project maps a ShapeNet point to ROS by the proper
rotation (a cyclic permutation of the axes, determinant +1)::

    x_ros = z_shapenet      y_ros = x_shapenet      z_ros = y_shapenet

so "up" stays up and handedness is preserved. :data:`SHAPENET_TO_ROS` is that matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from .errors import Pix2VoxError

PathLike = Union[str, Path]

# Rows are the ROS axes expressed in ShapeNet coordinates: p_ros = SHAPENET_TO_ROS @ p_shapenet.
SHAPENET_TO_ROS = np.array(
    [[0.0, 0.0, 1.0],
     [1.0, 0.0, 0.0],
     [0.0, 1.0, 0.0]], dtype=np.float64)


class VoxelFileError(Pix2VoxError, ValueError):
    """A binvox or other voxel file is missing, truncated or malformed."""


# binvox files of ShapeNet are 32^3 to 256^3; a grid edge above 512 (134 M voxels, 128 MiB as
# booleans) is refused before anything is expanded.
MAX_BINVOX_DIM = 512
_MAX_HEADER_BYTES = 4096  # the header is five short lines


def _binvox_header(path: Path, raw: bytes) -> tuple[tuple[int, int, int], np.ndarray, float, int]:
    """Parse the header: ``(dims, translate (3,), scale, offset of the data)``."""
    header_lines: list[str] = []
    offset = 0
    while True:
        end = raw.find(b'\n', offset, _MAX_HEADER_BYTES)
        if end < 0 or len(header_lines) > 16:
            raise VoxelFileError(f'{path}: binvox header has no "data" line')
        line = raw[offset:end].decode('ascii', errors='replace').strip()
        offset = end + 1
        header_lines.append(line)
        if line == 'data':
            break
    if not header_lines[0].startswith('#binvox'):
        raise VoxelFileError(f'{path}: not a binvox file (first line {header_lines[0][:40]!r})')
    dims: tuple[int, int, int] | None = None
    translate = np.zeros(3)
    scale = 1.0
    try:
        for line in header_lines[1:-1]:
            key, *values = line.split()
            if key == 'dim':
                dims = (int(values[0]), int(values[1]), int(values[2]))
            elif key == 'translate':
                translate = np.array([float(v) for v in values[:3]])
            elif key == 'scale':
                scale = float(values[0])
    except (ValueError, IndexError) as exc:
        raise VoxelFileError(f'{path}: malformed binvox header line {line[:40]!r}') from exc
    if dims is None or min(dims) <= 0:
        raise VoxelFileError(f'{path}: binvox header lacks a valid "dim" line')
    if max(dims) > MAX_BINVOX_DIM:
        raise VoxelFileError(f'{path}: binvox grid {dims[0]}x{dims[1]}x{dims[2]} exceeds the '
                             f'{MAX_BINVOX_DIM} voxels per edge a voxel file may have')
    return dims, translate, scale, offset


def read_binvox(path: PathLike) -> tuple[np.ndarray, np.ndarray, float]:
    """Read a binvox file into a boolean grid indexed (x, y, z).

    binvox stores run-length pairs (value, count) in x-z-y order (y fastest); this returns them
    transposed to x-y-z, the order the network's output uses. The declared grid is checked
    against :data:`MAX_BINVOX_DIM` and against the runs' total before anything is expanded.

    :param path: the ``.binvox`` file.
    :returns: ``(grid, translate, scale)``: grid ``(D, D, D)`` bool, translate ``(3,)`` float64.
    :raises VoxelFileError: the file is missing, its header is malformed or declares a grid too
        large, or its data is truncated.
    """
    path = Path(path)
    try:
        with open(path, 'rb') as stream:
            raw = stream.read(_MAX_HEADER_BYTES)
            dims, translate, scale, offset = _binvox_header(path, raw)
            expected = dims[0] * dims[1] * dims[2]
            # At most one (value, count) pair per voxel, plus a stray final byte.
            raw = raw[offset:] + stream.read(2 * expected + 2 - (len(raw) - offset))
    except OSError as exc:
        raise VoxelFileError(f'{path}: cannot read binvox file ({exc.strerror})') from exc
    pairs = np.frombuffer(raw, dtype=np.uint8)
    if pairs.size % 2:
        pairs = pairs[:-1]  # some writers end with a stray newline byte
    values, counts = pairs[0::2], pairs[1::2]
    ends = np.cumsum(counts, dtype=np.int64)  # (runs,) voxels covered after each run
    total = int(ends[-1]) if ends.size else 0
    if total < expected:
        raise VoxelFileError(f'{path}: binvox data truncated ({total} of {expected} voxels)')
    runs = int(np.searchsorted(ends, expected)) + 1  # runs past the grid are never expanded
    flat = np.repeat(values[:runs].astype(bool), counts[:runs])[:expected]
    grid_xzy = flat.reshape(dims[0], dims[2], dims[1])
    return np.ascontiguousarray(grid_xzy.transpose(0, 2, 1)), translate, scale


def write_binvox(
    path: PathLike,
    grid: np.ndarray,
    *,
    translate: tuple[float, float, float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
) -> None:
    """Write a grid indexed (x, y, z) as a binvox file (run-length encoded, x-z-y order).

    :param path: output file; parent folders must exist.
    :param grid: ``(D, D, D)`` array; nonzero means occupied.
    :param translate: binvox ``translate`` header values.
    :param scale: binvox ``scale`` header value.
    :raises ValueError: the grid is not a cube.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f'binvox needs a cubic grid, got shape {grid.shape}')
    flat = np.ascontiguousarray(grid.astype(bool).transpose(0, 2, 1)).reshape(-1)
    # Run boundaries: positions where the value changes, then split runs longer than 255.
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    out_values: list[np.ndarray] = []
    out_counts: list[np.ndarray] = []
    for value, length in zip(flat[starts], lengths):
        full, rest = divmod(int(length), 255)
        chunk = [255] * full + ([rest] if rest else [])
        out_counts.append(np.array(chunk, dtype=np.uint8))
        out_values.append(np.full(len(chunk), int(value), dtype=np.uint8))
    data = np.empty(2 * sum(len(c) for c in out_counts), dtype=np.uint8)
    data[0::2] = np.concatenate(out_values)
    data[1::2] = np.concatenate(out_counts)
    d = grid.shape[0]
    header = (f'#binvox 1\ndim {d} {d} {d}\n'
              f'translate {translate[0]:g} {translate[1]:g} {translate[2]:g}\n'
              f'scale {scale:g}\ndata\n').encode('ascii')
    Path(path).write_bytes(header + data.tobytes())


def grid_to_ros_axes(grid: np.ndarray) -> np.ndarray:
    """Reorder a ShapeNet-axes grid so that index ``[a, b, c]`` runs along ROS x, y, z.

    :data:`SHAPENET_TO_ROS` is an axis permutation, so this is a transpose, no resampling: voxel
    ``[a, b, c]`` of the result has its centre at ``((a, b, c) + 0.5) / D - 0.5`` times the grid's
    edge in ROS axes, the point :func:`grid_to_points` gives for it.

    :param grid: ``(D, D, D)`` indexed (x, y, z) in ShapeNet axes (y up).
    :returns: ``(D, D, D)`` contiguous, indexed along ROS x (forward), y (left), z (up).
    """
    grid = np.asarray(grid)
    if grid.ndim != 3:
        raise ValueError(f'expected a (D, D, D) grid, got shape {grid.shape}')
    order = tuple(int(np.argmax(np.abs(row))) for row in SHAPENET_TO_ROS)
    return np.ascontiguousarray(grid.transpose(order))


def pool_grid(grid: np.ndarray, factor: int, *, reduce: str = 'max') -> np.ndarray:
    """Shrink a cubic grid by an integer factor per axis, each coarse voxel from its block.

    The coarse grid keeps the edge length and the centring (voxel ``i`` covers fine voxels
    ``factor*i .. factor*i + factor - 1``), so it follows the same convention at ``D / factor``.

    :param grid: ``(D, D, D)`` probabilities or booleans, ``D`` a multiple of ``factor``.
    :param factor: fine voxels per coarse voxel along each axis (1 returns a copy).
    :param reduce: ``'max'`` (booleans: *any* fine voxel occupied; probabilities: the largest,
        which keeps every occupied fine voxel occupied) or ``'mean'`` (the occupied fraction;
        ``>= 0.5`` of a boolean grid's mean is the majority rule).
    :returns: ``(D / factor,) * 3``; ``'max'`` keeps the dtype, ``'mean'`` gives float32.
    :raises ValueError: not a cube, a factor that does not divide its edge, an unknown reduce.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f'expected a (D, D, D) grid, got shape {grid.shape}')
    if factor < 1 or grid.shape[0] % factor:
        raise ValueError(f'factor {factor} does not divide the grid edge {grid.shape[0]}')
    if reduce not in ('max', 'mean'):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    size, n = grid.shape[0], grid.shape[0] // factor
    # One axis at a time, the outer first: each step reduces contiguous runs (3x faster at 128³
    # than one reduction over the three block axes).
    if reduce == 'max':
        def step(values: np.ndarray, axis: int) -> np.ndarray:
            return values.max(axis=axis)
    else:
        def step(values: np.ndarray, axis: int) -> np.ndarray:
            return values.sum(axis=axis, dtype=np.float64)
    out = step(grid.reshape(n, factor, size * size), 1)  # (n, D * D)
    out = step(out.reshape(n, n, factor, size), 2)  # (n, n, D)
    out = step(out.reshape(n, n, n, factor), 3)  # (n, n, n)
    return out if reduce == 'max' else (out / factor ** 3).astype(np.float32)


def upsample_grid(grid: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every voxel ``factor`` times along each axis (nearest neighbour, same edge length).

    A 32³ result compared with 128³ truth is upsampled this way: each 32³ voxel becomes the 4³
    block it covers, the inverse of :func:`pool_grid`'s block layout.

    :raises ValueError: not a cube, or a factor below 1.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f'expected a (D, D, D) grid, got shape {grid.shape}')
    if factor < 1:
        raise ValueError(f'factor must be at least 1, got {factor}')
    return np.ascontiguousarray(np.broadcast_to(
        grid[:, None, :, None, :, None],
        (grid.shape[0], factor) * 3).reshape((grid.shape[0] * factor,) * 3))


def voxel_centres(resolution: int, *, edge_length: float = 1.0) -> np.ndarray:
    """Return the centre of every voxel of a cubic grid centred on the origin, ShapeNet axes.

    :returns: ``(D, D, D, 3)`` float32, in the same unit as ``edge_length``.
    """
    axis = ((np.arange(resolution, dtype=np.float64) + 0.5) / resolution - 0.5) * edge_length
    return np.stack(np.meshgrid(axis, axis, axis, indexing='ij'), axis=-1).astype(np.float32)


def grid_to_points(
    grid: np.ndarray,
    *,
    threshold: float,
    object_size_m: float = 1.0,
    ros_axes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the centres of voxels whose probability is at least ``threshold``.

    :param grid: ``(D, D, D)`` occupancy probabilities indexed (x, y, z), ShapeNet axes.
    :param threshold: probability at or above which a voxel counts as occupied.
    :param object_size_m: edge of the whole grid in metres; the grid is centred on the origin.
    :param ros_axes: map the points to ROS axes (x forward, y left, z up); else keep ShapeNet axes.
    :returns: ``(points (N, 3) float32, probabilities (N,) float32)``, in ``np.nonzero`` order.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3:
        raise ValueError(f'expected a (D, D, D) grid, got shape {grid.shape}')
    index = np.nonzero(grid >= threshold)
    probabilities = grid[index].astype(np.float32)
    ijk = np.stack(index, axis=-1).astype(np.float64)  # (N, 3)
    points = ((ijk + 0.5) / grid.shape[0] - 0.5) * object_size_m
    if ros_axes:
        points = points @ SHAPENET_TO_ROS.T
    return points.astype(np.float32), probabilities


def write_ply(path: PathLike, points: np.ndarray, values: np.ndarray | None = None) -> None:
    """Write points (and an optional per-point scalar) as a binary little-endian PLY file.

    :param points: ``(N, 3)`` coordinates.
    :param values: optional ``(N,)`` scalar stored as the float property ``occupancy``.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    fields = [('x', '<f4'), ('y', '<f4'), ('z', '<f4')]
    if values is not None:
        fields.append(('occupancy', '<f4'))
    rows = np.empty(len(points), dtype=fields)
    rows['x'], rows['y'], rows['z'] = points[:, 0], points[:, 1], points[:, 2]
    if values is not None:
        rows['occupancy'] = np.asarray(values, dtype=np.float32).reshape(-1)
    header = ['ply', 'format binary_little_endian 1.0', f'element vertex {len(points)}']
    header += [f'property float {name}' for name, _ in fields]
    header.append('end_header')
    Path(path).write_bytes(('\n'.join(header) + '\n').encode('ascii') + rows.tobytes())


def read_ply(path: PathLike) -> dict[str, np.ndarray]:
    """Read a binary little-endian PLY vertex list written by :func:`write_ply`.

    :returns: one float32 array per vertex property.
    :raises VoxelFileError: the file is not such a PLY file.
    """
    path = Path(path)
    raw = path.read_bytes()
    end = raw.find(b'end_header\n')
    if not raw.startswith(b'ply\n') or end < 0:
        raise VoxelFileError(f'{path}: not a PLY file')
    lines = raw[:end].decode('ascii').splitlines()
    if 'format binary_little_endian 1.0' not in lines:
        raise VoxelFileError(f'{path}: only binary little-endian PLY is supported')
    count = next(int(line.split()[2]) for line in lines if line.startswith('element vertex'))
    names = [line.split()[2] for line in lines if line.startswith('property float')]
    rows = np.frombuffer(raw, dtype=[(n, '<f4') for n in names], count=count,
                         offset=end + len(b'end_header\n'))
    return {n: rows[n].copy() for n in names}
