"""Contact sheets of the generator: objects of every category, rendered and as their voxels.

:func:`contact_sheet` lays out one row per category and one column per object (for each
variety asked for, side by side): above, the object rendered on the grey the network sees behind
it; below, its 32³ grid drawn as shaded cubes from the same direction (:func:`voxel_view`), so
that a thin part the grid lost or a cavity it filled shows next to the object it came from.
Pure numpy and OpenCV, like the rest of the package.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .camera import Camera
from .dataset import dataset_object
from .render import render_view
from .shapes import CATEGORIES, VARIETIES
from .voxelize import voxelize

#: The direction both pictures of a cell are seen from: front right, above.
SHEET_AZIMUTH_DEG = 55.0
SHEET_ELEVATION_DEG = 30.0
_GREY = 240
_LABEL_W = 80
_HEADER_H = 18
# Shading of the cubes' faces by the axis of their normal (x, y, z), over a blue-grey albedo.
_FACE_LIGHT = np.array([0.72, 1.0, 0.55])
_VOXEL_RGB = np.array([106, 140, 175], dtype=np.float64)


def voxel_view(grid: np.ndarray, *, size: int = 137, azimuth_deg: float = SHEET_AZIMUTH_DEG,
               elevation_deg: float = SHEET_ELEVATION_DEG) -> np.ndarray:
    """Draw a grid's occupied voxels as shaded cubes, seen orthographically from a direction.

    Only faces between an occupied and an empty voxel that face the viewer are drawn, back to
    front. The grid's cube fills the picture whatever the direction.

    :param grid: ``(N, N, N)`` bool, indexed (x, y, z) as :func:`~.voxelize.voxelize` returns.
    :returns: ``(size, size, 3)`` uint8 RGB on grey.
    """
    grid = np.asarray(grid, dtype=bool)
    n = grid.shape[0]
    rotation = np.asarray(Camera(azimuth_deg, elevation_deg).rotation)
    image = np.full((size, size, 3), _GREY, dtype=np.uint8)
    scale = (size - 2) / np.sqrt(3.0)  # the cube's diagonal fits in any direction
    pad = np.pad(grid, 1)
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            normal = np.zeros(3)
            normal[axis] = sign
            if (rotation @ normal)[2] >= 0.0:  # faces away from the viewer
                continue
            neighbour = np.roll(pad, -sign, axis=axis)[1:-1, 1:-1, 1:-1]
            cells = np.argwhere(grid & ~neighbour)
            if len(cells) == 0:
                continue
            # The face's four corners: the cell's corner offsets with the axis fixed.
            square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]])
            corners = np.zeros((4, 3))
            others = [a for a in range(3) if a != axis]
            corners[:, others[0]], corners[:, others[1]] = square[:, 0], square[:, 1]
            corners[:, axis] = 1 if sign > 0 else 0
            points = (cells[:, None, :] + corners[None]) / n - 0.5  # (F, 4, 3) object frame
            cam = points @ rotation.T
            shade = np.clip(_VOXEL_RGB * _FACE_LIGHT[axis], 0, 255).astype(int)
            for poly, depth in zip(cam[..., :2] * scale + size / 2.0, cam[..., 2].mean(axis=1)):
                faces.append((float(depth), poly, shade))
    faces.sort(key=lambda face: -face[0])  # far first
    for _, poly, shade in faces:
        cv2.fillConvexPoly(image, np.round(poly * 16).astype(np.int32),
                           tuple(int(c) for c in shade), lineType=cv2.LINE_AA, shift=4)
    return image


def _on_grey(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float64) / 255.0
    rgb = rgba[..., :3] * alpha + _GREY * (1.0 - alpha)
    return np.round(rgb).astype(np.uint8)


def _text(image: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (20, 20, 20), 1,
                cv2.LINE_AA)


def contact_sheet(*, seed: int = 0, objects: int = 6,
                  varieties: Sequence[str] = VARIETIES,
                  categories: Sequence[str] | None = None, cell: int = 137) -> np.ndarray:
    """Draw objects ``0 .. objects-1`` of every category of dataset ``seed``, per variety.

    :param varieties: the varieties side by side, each ``objects`` columns wide.
    :param categories: the rows (default: all of :data:`~.shapes.CATEGORIES`).
    :param cell: the side of each picture in pixels.
    :returns: ``(H, W, 3)`` uint8 RGB.
    :raises ValueError: no objects, an unknown variety or an empty list.
    """
    names = list(CATEGORIES) if categories is None else list(categories)
    if objects < 1 or not names or not varieties:
        raise ValueError(f'need at least one object, category and variety, got {objects}, '
                         f'{names}, {list(varieties)}')
    for variety in varieties:
        if variety not in VARIETIES:
            raise ValueError(f'unknown variety {variety!r}; known: {", ".join(VARIETIES)}')
    columns = objects * len(varieties)
    gap = 6
    width = _LABEL_W + columns * cell + (len(varieties) - 1) * gap
    height = _HEADER_H + len(names) * 2 * cell
    sheet = np.full((height, width, 3), 255, dtype=np.uint8)
    # At this distance the rendering shows the object at about the voxel picture's scale.
    camera = Camera(SHEET_AZIMUTH_DEG, SHEET_ELEVATION_DEG, 0.0, 0.71, 25.0, cell, cell)
    for v, variety in enumerate(varieties):
        x0 = _LABEL_W + v * (objects * cell + gap)
        _text(sheet, f'{variety} (seed {seed}, objects 0-{objects - 1})', x0 + 4, 13)
        for row, name in enumerate(names):
            y = _HEADER_H + row * 2 * cell
            if v == 0:
                _text(sheet, name, 6, y + cell)
                _text(sheet, 'voxels', 6, y + cell + 16)
            for index in range(objects):
                obj = dataset_object(name, index, seed=seed, variety=variety)
                x = x0 + index * cell
                sheet[y:y + cell, x:x + cell] = _on_grey(render_view(obj, camera, supersample=2))
                grid = voxelize(obj)
                sheet[y + cell:y + 2 * cell, x:x + cell] = voxel_view(grid, size=cell)
                _text(sheet, f'{index}: {int(grid.sum())}', x + 3, y + 2 * cell - 4)
    return sheet
