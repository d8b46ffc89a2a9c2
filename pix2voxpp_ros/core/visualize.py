"""Pictures of occupancy grids for people: depth-shaded views from three directions."""

from __future__ import annotations

import cv2
import numpy as np

# (title, axis looked along, flip the depth direction) in the grid's (x, y, z) ShapeNet axes.
VIEW_DIRECTIONS = (('along +z', 2, False), ('along -x', 0, True), ('top, along -y', 1, True))


def _depth_view(occupied: np.ndarray, axis: int, flip: bool) -> np.ndarray:
    """Shade the first occupied voxel along ``axis``: near is light, far dark, empty white."""
    volume = np.moveaxis(occupied, axis, 0)  # (depth, a, b)
    if flip:
        volume = volume[::-1]
    depth = volume.shape[0]
    hit = volume.any(axis=0)
    first = np.argmax(volume, axis=0)  # index of the nearest occupied voxel
    shade = 0.9 - 0.6 * first / max(depth - 1, 1)  # never white, which means empty
    return np.where(hit, shade, 1.0)


def render_grid_views(
    grid: np.ndarray,
    *,
    threshold: float,
    cell_px: int = 8,
    title: str | None = None,
) -> np.ndarray:
    """Draw the voxels at or above ``threshold`` from the front, the side and the top.

    :param grid: ``(D, D, D)`` occupancy indexed (x, y, z), y up.
    :param cell_px: pixels per voxel.
    :returns: a BGR uint8 picture, three panels side by side with captions.
    """
    occupied = np.asarray(grid) >= threshold
    panels = []
    for name, axis, flip in VIEW_DIRECTIONS:
        image = _depth_view(occupied, axis, flip)  # (a, b) over the two remaining axes
        if axis == 2:  # image (x, y): columns x, rows y with up on top
            image = image.T[::-1]
        elif axis == 0:  # image (y, z): columns z, rows y with up on top
            image = image[::-1]
        else:  # image (x, z): columns x, rows z
            image = image.T
        panel = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        panel = cv2.resize(panel, None, fx=cell_px, fy=cell_px, interpolation=cv2.INTER_NEAREST)
        panel = cv2.cvtColor(panel, cv2.COLOR_GRAY2BGR)
        panel[panel[:, :, 0] < 255] = (panel[panel[:, :, 0] < 255] * [0.55, 0.75, 1.0]).astype(
            np.uint8)  # tint occupied voxels orange-ish so they read as "object"
        cv2.rectangle(panel, (0, 0), (panel.shape[1] - 1, panel.shape[0] - 1), (160, 160, 160), 1)
        caption = np.full((24, panel.shape[1], 3), 255, np.uint8)
        cv2.putText(caption, name, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        panels.append(np.vstack((caption, panel)))
    picture = np.hstack(panels)
    if title:
        banner = np.full((28, picture.shape[1], 3), 255, np.uint8)
        cv2.putText(banner, title, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
        picture = np.vstack((banner, picture))
    return picture
