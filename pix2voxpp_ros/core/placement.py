"""Placing a reconstruction in the robot's world: position, heading and metric size.

Pix2Vox++ returns a 32³ grid in the object's canonical frame, centred and of unit edge, whatever
the view. With each view's intrinsics ``K``, the pose of its camera (OpenCV optical frame) in a
fixed frame and the object's mask, :func:`place_object` finds where that grid stands in the fixed
frame by making the grid's silhouettes agree with the masks.

Model of the world (REP 103): the fixed frame has z up and the object stands upright on a
support, so its canonical up axis (ShapeNet y) is the fixed z axis. What is unknown is an
:class:`ObjectPose`: the grid's centre, its heading (a rotation about z) and the grid's edge in
metres. The grid's own frame has the project's ROS axes (:data:`~.voxels.SHAPENET_TO_ROS`:
x = the canonical front, z = up), so the heading is the angle of the object's front.

Method (every step measured on the held-out scenes, README "Placement"):

1. **Start**: the rays through the masks' centroids meet (least squares, two views or more) near
   the object; the masks' extents at that depth give a first size.
2. **Heading search**: for each of :data:`HEADINGS` headings the grid's silhouettes are rendered
   (outline points projected into each view, in 40 px windows of the masks) and the size and
   position aligned to the masks' areas and centroids; the headings with the best silhouette
   IoU go on.
3. **Refinement**: a pattern search over position, heading and log size, coarsely and then in
   80 px windows, maximizes the mean silhouette IoU over the views.

A silhouette is drawn from a sub-lattice of the surface's corners and closed (3×3): cost grows
with the points drawn, and a window needs only about one point per pixel.

Pixels outside an image are unknown: a voxel projected there counts neither way. The fit's mean
silhouette IoU is the placement's quality. :func:`carve` removes the voxels that project outside
a (slightly dilated) mask in a view that sees them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .errors import Pix2VoxError
from .geometry import invert_pose
from .voxels import SHAPENET_TO_ROS

#: Headings tried in the search (10° apart).
HEADINGS = 36
#: Headings refined after the search.
REFINED_HEADINGS = 3
#: Longest side, in pixels, of a mask's window in the search and in the refinement.
COARSE_PX = 40
FINE_PX = 80
#: The outline corners drawn in each: the sparsest sub-lattice that keeps at least this many
#: (every other corner along each axis, else a checkerboard of them, else all); a 3×3 closing
#: fills the gaps between them. A window needs about a point per pixel of the silhouette: a
#: bulky object has corners to spare, a thin one (a chair's legs) has few and needs them all.
COARSE_POINTS = 400
FINE_POINTS = 1200
#: Pattern-search iterations of the refinement: of the best headings coarsely, then of the best.
COARSE_STEPS = 5
REFINE_STEPS = 12
#: A candidate's search ends early once its position step is below this share of the size
#: (after four halvings: about a tenth of a fine window's pixel), where moves only trade
#: the rounding of single pixels.
MIN_STEP = 0.003
#: How far outline points move into the solid, pixels of the window (see :func:`_outline`).
INSET_PX = 0.5
#: Fewest mask pixels for a view to take part.
MIN_MASK_PIXELS = 16
#: Most voxels projected per candidate (a random, fixed subset of the surface above this).
MAX_POINTS = 3000


class PlacementError(Pix2VoxError, ValueError):
    """Placement is impossible: too few views with a mask, an empty grid, degenerate cameras."""


@dataclass(frozen=True)
class CalibratedView:
    """One view for placement: intrinsics, camera pose and the object's mask.

    :ivar intrinsics: ``(3, 3)`` K of the image (OpenCV pixel convention, no distortion).
    :ivar camera_to_fixed: ``(4, 4)`` pose of the camera's optical frame (x right, y down,
        z forward) in the fixed frame.
    :ivar mask: ``(H, W)`` bool or uint8, nonzero on the object; its size is the image's.
    """

    intrinsics: np.ndarray
    camera_to_fixed: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class ObjectPose:
    """Where the reconstruction grid stands in the fixed frame.

    :ivar position: ``(3,)`` the grid's centre, metres.
    :ivar heading_rad: rotation of the grid about the fixed z axis; 0 = the canonical front
        (the grid frame's +x) along the fixed +x.
    :ivar size_m: the grid's edge in metres (a voxel is ``size_m / 32``).
    """

    position: tuple[float, float, float]
    heading_rad: float
    size_m: float

    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation of the grid frame (ROS axes) in the fixed frame."""
        return _rotation_z(np.array([self.heading_rad]))[0]

    def grid_to_fixed(self) -> np.ndarray:
        """Return the ``(4, 4)`` rigid pose of the grid frame (ROS axes, metres), fixed frame."""
        pose = np.eye(4)
        pose[:3, :3] = self.rotation()
        pose[:3, 3] = self.position
        return pose

    def to_fixed(self, points_grid: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` points in grid-edge units, ROS axes, into the fixed frame (metres)."""
        points = np.asarray(points_grid, dtype=np.float64).reshape(-1, 3)
        return points * self.size_m @ self.rotation().T + np.asarray(self.position)

    def canonical_to_fixed(self) -> np.ndarray:
        """``(4, 4)`` similarity from the canonical frame (ShapeNet axes, grid-edge units)."""
        pose = self.grid_to_fixed()
        pose[:3, :3] = pose[:3, :3] @ SHAPENET_TO_ROS * self.size_m
        return pose


@dataclass(frozen=True)
class Placement:
    """The result of :func:`place_object`.

    :ivar pose: the grid's pose and size in the fixed frame.
    :ivar silhouette_iou: mean over the views of the IoU of the placed grid's silhouette and
        the mask (fine resolution): the fit's quality.
    :ivar view_ious: that IoU per view, in the order the views were given (NaN: view unused).
    """

    pose: ObjectPose
    silhouette_iou: float
    view_ious: tuple[float, ...]


@dataclass(frozen=True)
class _Window:
    """A view's mask cut to the object and resampled: the image the silhouettes are drawn in."""

    mask: np.ndarray       # (h, w) bool
    intrinsics: np.ndarray  # (3, 3) K of the window's pixels
    rotation: np.ndarray   # (3, 3) fixed -> camera
    translation: np.ndarray  # (3,) fixed -> camera
    # (10, P) float32: the points' projection split by heading (see _pixel_index), rows
    # [along, across, upward] of each homogeneous pixel coordinate, then ones.
    basis: np.ndarray


@dataclass
class _MaskView:
    """What the start and the windows need of a view: its mask's centroid, extent and area."""

    index: int
    view: CalibratedView
    centre: np.ndarray        # (3,) camera centre in the fixed frame
    fixed_to_camera: np.ndarray  # (4, 4)
    centroid_uv: np.ndarray   # (2,)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the mask's pixels
    region: tuple[int, int, int, int]  # the box with a margin, inside the image
    crop: np.ndarray  # (y1 - y0, x1 - x0) uint8 of the region, 255 on the object


def _rotation_z(angles: np.ndarray) -> np.ndarray:
    """``(B, 3, 3)`` rotations about z by ``angles (B,)``."""
    c, s = np.cos(angles), np.sin(angles)
    rot = np.zeros((len(angles), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = c, -s, s, c
    rot[:, 2, 2] = 1.0
    return rot


@dataclass(frozen=True)
class _Outline:
    """A grid's outline points: corners of its surface voxels and their inward directions."""

    corners: np.ndarray  # (N, 3) grid-edge units, ROS axes
    inward: np.ndarray   # (N, 3) unit vectors, ROS axes
    lattice: np.ndarray  # (N, 3) int, the corners' indices in the (D + 1)³ corner lattice
    resolution: int

    def _take(self, keep: np.ndarray) -> '_Outline':
        return _Outline(self.corners[keep], self.inward[keep], self.lattice[keep],
                        self.resolution)

    def sparse(self, least: int, most: int, rng: np.random.Generator) -> '_Outline':
        """Return the corners of the sparsest sub-lattice with at least ``least`` of them.

        The sub-lattices: every other corner along each axis (a quarter of a surface's
        corners), the corners of even index sum (a checkerboard, half), all. At most ``most``
        are kept, drawn at random.
        """
        kept = self
        for on_lattice in ((self.lattice % 2 == 0).all(axis=1),
                           self.lattice.sum(axis=1) % 2 == 0):
            if np.count_nonzero(on_lattice) >= least:
                kept = self._take(on_lattice)
                break
        if len(kept.corners) <= most:
            return kept
        return kept._take(rng.choice(len(kept.corners), most, replace=False))

    def points(self, inset_voxels: float) -> np.ndarray:
        """Return the corners moved ``inset_voxels`` into the solid, ``(N, 3)``."""
        return self.corners + self.inward * (inset_voxels / self.resolution)


def _outline(occupied: np.ndarray) -> _Outline:
    """Corners of the occupied voxels that have an empty 6-neighbour, with inward directions.

    The silhouette of a solid is that of its surface, so the inside need not be projected; the
    corners reach the solid's outline. A point drawn into the pixel it falls in covers up to half
    a pixel more than the pixel centres inside the outline (what a mask holds), so each window
    moves the corners inwards (towards the occupied voxels around them) by :data:`INSET_PX`.
    """
    size = occupied.shape[0]
    grid = np.pad(occupied, 1)
    inner = grid[1:-1, 1:-1, 1:-1]
    closed = inner.copy()
    for axis in range(3):
        for shift in (0, 2):  # the neighbours on either side along this axis
            span = [slice(1, -1)] * 3
            span[axis] = slice(shift, shift + size)
            closed &= grid[tuple(span)]
    surface = inner & ~closed
    corners = np.zeros((size + 1,) * 3, dtype=bool)
    for d in np.ndindex(2, 2, 2):
        corners[tuple(slice(k, k + size) for k in d)] |= surface
    index = np.argwhere(corners)  # (N, 3)
    # The pull towards the solid: the sum over the occupied voxels v around corner c (c = v + d)
    # of (centre of v - c) = 0.5 - d: half the count of those with d_i = 0 minus those with
    # d_i = 1, along each axis i, over the whole lattice at once, then read at the corners.
    pull = np.zeros((3,) + (size + 1,) * 3, dtype=np.int8)
    for d in np.ndindex(2, 2, 2):
        # Corner c sees voxel c - d: index c - d + 1 of the padded grid.
        around = grid[tuple(slice(1 - k, 2 - k + size) for k in d)].view(np.int8)
        for axis in range(3):
            if d[axis]:
                pull[axis] -= around
            else:
                pull[axis] += around
    direction = 0.5 * pull[(slice(None),) + tuple(index.T)].T  # (N, 3)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
    return _Outline((index / size - 0.5) @ SHAPENET_TO_ROS.T, direction @ SHAPENET_TO_ROS.T,
                    index, size)


_CLOSING = np.ones((3, 3), np.uint8)


def _check_view(index: int, view: CalibratedView) -> None:
    k = np.asarray(view.intrinsics, dtype=np.float64)
    pose = np.asarray(view.camera_to_fixed, dtype=np.float64)
    mask = np.asarray(view.mask)
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise PlacementError(f'view {index}: intrinsics must be a finite (3, 3) K with positive '
                             f'focal lengths')
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise PlacementError(f'view {index}: camera pose must be a finite (4, 4) matrix')
    if mask.ndim != 2:
        raise PlacementError(f'view {index}: mask must be (H, W), got shape {mask.shape}')


def _mask_views(views: Sequence[CalibratedView]) -> list[_MaskView]:
    usable = []
    for index, view in enumerate(views):
        _check_view(index, view)
        mask = np.ascontiguousarray(view.mask)
        if mask.dtype == bool:
            mask = mask.view(np.uint8)
        elif mask.dtype != np.uint8:
            mask = (mask != 0).view(np.uint8)
        # OpenCV's box and moments (of the box only): a 1280×720 image in numpy costs
        # milliseconds. A uint8 array is an image to boundingRect, its nonzero pixels counted.
        x0, y0, box_w, box_h = cv2.boundingRect(mask)
        if box_w == 0:
            continue  # an empty mask
        x1, y1 = x0 + box_w, y0 + box_h
        moments = cv2.moments(mask[y0:y1, x0:x1], binaryImage=True)
        if moments['m00'] < MIN_MASK_PIXELS:
            continue
        # The windows' region: the box and a margin for the search to move in.
        height, width = mask.shape
        margin = 0.35 * max(x1 - x0, y1 - y0) + 2
        region = (max(int(x0 - margin), 0), max(int(y0 - margin), 0),
                  min(int(x1 + margin), width), min(int(y1 + margin), height))
        crop = cv2.compare(mask[region[1]:region[3], region[0]:region[2]], 0, cv2.CMP_NE)
        pose = np.asarray(view.camera_to_fixed, dtype=np.float64)
        usable.append(_MaskView(index, view, pose[:3, 3].copy(), invert_pose(pose),
                                np.array([x0 + moments['m10'] / moments['m00'],
                                          y0 + moments['m01'] / moments['m00']]),
                                (x0, y0, x1, y1), region, crop))
    return usable


def _ray(view: _MaskView, uv: np.ndarray) -> np.ndarray:
    """Return the unit direction (fixed frame) of the ray through pixel ``uv``."""
    k = np.asarray(view.view.intrinsics, dtype=np.float64)
    direction = np.linalg.solve(k, np.array([uv[0], uv[1], 1.0]))
    direction = np.asarray(view.view.camera_to_fixed, dtype=np.float64)[:3, :3] @ direction
    return direction / np.linalg.norm(direction)


def _start(views: list[_MaskView]) -> tuple[np.ndarray, float]:
    """First position (rays through the centroids, least squares) and size (mask extents)."""
    normal = np.zeros((3, 3))
    rhs = np.zeros(3)
    for view in views:
        d = _ray(view, view.centroid_uv)
        projector = np.eye(3) - np.outer(d, d)
        normal += projector
        rhs += projector @ view.centre
    eigen = np.linalg.eigvalsh(normal)
    # Rays within ~3° of each other cannot fix the depth along them.
    if eigen[0] < 1e-3 * eigen[-1]:
        raise PlacementError("the views look along (nearly) the same line: the object's "
                             'position along it is unknown')
    position = np.linalg.solve(normal, rhs)
    sizes = []
    for view in views:
        depth = float((view.fixed_to_camera[:3, :3] @ position + view.fixed_to_camera[:3, 3])[2])
        if depth <= 0.0:
            raise PlacementError(f'view {view.index}: the object would lie behind the camera')
        k = np.asarray(view.view.intrinsics, dtype=np.float64)
        x0, y0, x1, y1 = view.box
        sizes.append(max((x1 - x0) / k[0, 0], (y1 - y0) / k[1, 1]) * depth)
    return position, float(np.median(sizes))


def _window(view: _MaskView, longest_px: int, outline: _Outline, position: np.ndarray,
            size: float) -> _Window:
    """Resample the mask's region (box and margin) so its longest side is ``longest_px``.

    The outline's points are moved :data:`INSET_PX` of this window's pixels inwards, for a voxel
    of the object at ``position`` and ``size`` (the start).
    """
    x0, y0, x1, y1 = view.region
    scale = min(1.0, longest_px / max(x1 - x0, y1 - y0))  # never upsample
    w, h = max(int(round((x1 - x0) * scale)), 1), max(int(round((y1 - y0) * scale)), 1)
    # Area-averaged, a window pixel is on the object when at least half of what it covers is.
    small = cv2.resize(view.crop, (w, h), interpolation=cv2.INTER_AREA) >= 128
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    k = np.asarray(view.view.intrinsics, dtype=np.float64)
    # Pixel centres: u' = (u - x0 + 0.5) * sx - 0.5 maps the crop onto the resampled window.
    window_k = np.array([[k[0, 0] * sx, k[0, 1] * sx, (k[0, 2] - x0 + 0.5) * sx - 0.5],
                         [0.0, k[1, 1] * sy, (k[1, 2] - y0 + 0.5) * sy - 0.5],
                         [0.0, 0.0, 1.0]])
    kw = window_k @ view.fixed_to_camera[:3, :3]  # (3, 3) fixed directions -> pixels
    depth = float(view.fixed_to_camera[2, :3] @ position + view.fixed_to_camera[2, 3])
    voxel_px = window_k[0, 0] * size / outline.resolution / max(depth, 1e-9)
    points = outline.points(min(INSET_PX / max(voxel_px, 1e-9), 0.5))
    # Per row r of kw, a point (x, y, z) gives along = x kw[r,0] + y kw[r,1],
    # across = x kw[r,1] - y kw[r,0], upward = z kw[r,2]: nine rows linear in the points.
    parts = np.zeros((10, 4))
    for row in range(3):
        parts[3 * row] = kw[row, 0], kw[row, 1], 0.0, 0.0
        parts[3 * row + 1] = kw[row, 1], -kw[row, 0], 0.0, 0.0
        parts[3 * row + 2] = 0.0, 0.0, kw[row, 2], 0.0
    parts[9, 3] = 1.0  # ones, for the offset
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)  # (P, 4)
    return _Window(small, window_k, view.fixed_to_camera[:3, :3],
                   view.fixed_to_camera[:3, 3],
                   basis=(parts @ homogeneous.T).astype(np.float32))


@dataclass(frozen=True)
class _Views:
    """The windows of all views, stacked so one call draws every candidate in every view.

    A candidate's silhouette in view v is drawn into a cell of ``(H + 2, W + 2)`` pixels (the
    largest window and a ring): the window at rows and columns 1 to its size, its ring right
    around it, and empty beyond. The V × B cells stand side by side in one
    ``(H + 2, V B (W + 2))`` image: OpenCV closes one wide image several times faster than
    many small or one tall one, and one numpy call per step serves all views. Points outside a
    window (or behind its camera) land on its ring, cleared before the closing, so no cell
    reaches into another (a closing reaches two pixels).
    """

    windows: list[_Window]
    basis: np.ndarray       # (V, 10, P) float32, each window's basis
    shifted_k: np.ndarray   # (V, 3, 3) K with the principal point moved by _RING_SHIFT
    rotation: np.ndarray    # (V, 3, 3) fixed -> camera
    translation: np.ndarray  # (V, 3)
    limits: np.ndarray      # (2, V, 1, 1) float32: the ring column and row of each window
    masks: np.ndarray       # (H + 2, V, 1, W + 2) bool, each mask in its cell
    inside: np.ndarray      # (H + 2, V, 1, W + 2) bool, each window in its cell
    mask_area: np.ndarray   # (V,) float
    mask_uv: np.ndarray     # (V, 2) centroid of each mask, window pixels

    @classmethod
    def stack(cls, windows: list[_Window]) -> '_Views':
        shapes = np.array([w.mask.shape for w in windows])  # (V, 2) rows, columns
        cell_h, cell_w = shapes.max(axis=0) + 2
        masks = np.zeros((cell_h, len(windows), 1, cell_w), dtype=bool)
        inside = np.zeros_like(masks)
        mask_uv = np.zeros((len(windows), 2))
        for v, window in enumerate(windows):
            h, w = window.mask.shape
            masks[1:h + 1, v, 0, 1:w + 1] = window.mask
            inside[1:h + 1, v, 0, 1:w + 1] = True
            vs, us = np.nonzero(window.mask)
            mask_uv[v] = us.mean(), vs.mean()
        shifted_k = np.stack([w.intrinsics for w in windows])
        shifted_k[:, :2, 2] += _RING_SHIFT
        return cls(windows, np.stack([w.basis for w in windows]), shifted_k,
                   np.stack([w.rotation for w in windows]),
                   np.stack([w.translation for w in windows]),
                   (shapes[:, ::-1].T + 1).astype(np.float32)[:, :, None, None],
                   masks, inside, masks.sum(axis=(0, 2, 3)).astype(np.float64), mask_uv)


#: Pixel coordinates are shifted by this before truncation: a point rounds to pixel u when
#: u - 0.5 <= x < u + 0.5, i.e. when trunc(x + 1.5) = u + 1, its column in the ringed cell.
_RING_SHIFT = 1.5


def _pixel_index(params: np.ndarray, views: _Views) -> np.ndarray:
    """Return the flat index of the outline's points at B poses in the wide image, ``(V, B, P)``.

    The wide image is :class:`_Views`'s.

    A grid point p goes to ``K (W (s R_z p + c) + t)``; ``R_z p`` mixes only x and y, so each
    homogeneous coordinate is ``s cos along + s sin across + s upward + (K (W c + t))`` with
    per-window parts: one matrix product per view for every candidate.
    """
    batch, count = len(params), len(views.windows)
    sizes = np.exp(params[:, 4])
    offset = np.einsum('vij,vbj->vbi', views.shifted_k,
                       params[None, :, :3] @ views.rotation.transpose(0, 2, 1)
                       + views.translation[:, None, :])  # (V, B, 3)
    per_candidate = np.stack([sizes * np.cos(params[:, 3]), sizes * np.sin(params[:, 3]),
                              sizes], axis=1)  # (B, 3)
    coef = np.zeros((count, 3, batch, 10), dtype=np.float32)
    for row in range(3):
        coef[:, row, :, 3 * row:3 * row + 3] = per_candidate
    coef[:, :, :, 9] = offset.transpose(0, 2, 1)
    coords = (coef.reshape(count, 3 * batch, 10) @ views.basis
              ).reshape(count, 3, batch, -1)  # (V, 3, B, P) homogeneous pixel coordinates
    x, y, z = coords[:, 0], coords[:, 1], coords[:, 2]
    behind = not z.min() > 0
    with np.errstate(divide='ignore', invalid='ignore'):
        np.divide(x, z, out=x)
        np.divide(y, z, out=y)
    if behind:
        away = ~(z > 0)  # NaN included
        x[away] = 0.0  # onto the ring
        y[away] = 0.0
    np.clip(x, 0.0, views.limits[0], out=x)
    np.clip(y, 0.0, views.limits[1], out=y)
    cell_w = views.masks.shape[3]
    # np.intp: numpy would convert any other index type for the scatter.
    index = y.astype(np.intp)
    index *= count * batch * cell_w
    index += x.astype(np.intp)
    index += (np.arange(count * batch, dtype=np.intp) * cell_w).reshape(count, batch, 1)
    return index


def _silhouettes(params: np.ndarray, views: _Views) -> np.ndarray:
    """``(H + 2, V, B, W + 2)`` bool silhouettes of the grid at B candidate poses, in cells.

    The drawn corners lie up to about two pixels apart: a 3×3 closing fills the gaps. Only
    the window of each cell counts (``views.inside``); the closing may set its ring.
    """
    index = _pixel_index(params, views)  # (V, B, P)
    cell_h, count, _, cell_w = views.masks.shape
    batch = len(params)
    wide = np.zeros((cell_h, count * batch * cell_w), dtype=np.uint8)
    wide.reshape(-1)[index] = 1
    cells = wide.reshape(cell_h, count, batch, cell_w)
    for v, window in enumerate(views.windows):
        h, w = window.mask.shape
        cells[[0, h + 1], v] = 0
        cells[:, v, :, [0, w + 1]] = 0
    cv2.morphologyEx(wide, cv2.MORPH_CLOSE, _CLOSING, dst=wide)
    return cells.view(bool)


def _count(cells: np.ndarray) -> np.ndarray:
    """``(V, B)`` pixels set in each of ``(H + 2, V, B, W + 2)`` bool cells."""
    return cells.view(np.uint8).sum(axis=0, dtype=np.int32).sum(axis=2)


def _view_ious(params: np.ndarray, views: _Views) -> np.ndarray:
    """``(V, B)`` silhouette IoU of candidates ``params (B, 5)`` (x y z heading log s)."""
    cells = _silhouettes(params, views)
    inter = _count(cells & views.masks)
    union = _count(cells & views.inside) + views.mask_area[:, None] - inter
    return inter / np.maximum(union, 1)


def _mean_iou(params: np.ndarray, views: _Views) -> np.ndarray:
    """``(B,)`` mean silhouette IoU over the views of candidates ``params (B, 5)``."""
    return _view_ious(params, views).sum(axis=0) / len(views.windows)


def _align(params: np.ndarray, views: _Views, rounds: int = 3) -> np.ndarray:
    """Move and scale each candidate so its silhouettes' areas and centroids match the masks'."""
    params = params.copy()
    cell_h, _, _, cell_w = views.masks.shape
    for _ in range(rounds):
        cells = (_silhouettes(params, views) & views.inside).view(np.uint8)  # (H, V, B, W)
        per_column = cells.sum(axis=0, dtype=np.int32)  # (V, B, W + 2)
        per_row = cells.sum(axis=3, dtype=np.int32)  # (H + 2, V, B)
        area = per_column.sum(axis=2).astype(np.float64)  # (V, B)
        ratio = np.median(views.mask_area[:, None] / np.maximum(area, 1.0), axis=0)  # (B,)
        # Cell column c holds window pixel c - 1.
        render_uv = np.stack([per_column @ (np.arange(cell_w) - 1.0),
                              np.einsum('h,hvb->vb', np.arange(cell_h) - 1.0, per_row)],
                             axis=2) / np.maximum(area, 1.0)[:, :, None]  # (V, B, 2)
        rows, residuals = [], []
        for v, window in enumerate(views.windows):
            # Jacobian of the pixel position of the candidate's centre w.r.t. a fixed-frame move.
            cam = params[:, :3] @ window.rotation.T + window.translation  # (B, 3)
            k = window.intrinsics
            x, y, z = cam[:, 0], cam[:, 1], np.maximum(cam[:, 2], 1e-6)
            jac = np.zeros((len(params), 2, 3))
            jac[:, 0, 0], jac[:, 0, 2] = k[0, 0] / z, -k[0, 0] * x / z ** 2
            jac[:, 1, 1], jac[:, 1, 2] = k[1, 1] / z, -k[1, 1] * y / z ** 2
            rows.append(jac @ window.rotation)  # (B, 2, 3)
            residuals.append(np.where(area[v, :, None] > 0,
                                      views.mask_uv[v] - render_uv[v], 0.0))
        params[:, 4] += 0.5 * np.log(np.clip(ratio, 0.25, 4.0))
        a = np.concatenate(rows, axis=1)  # (B, 2V, 3)
        b = np.concatenate(residuals, axis=1).reshape(len(params), -1)  # (B, 2V)
        # Least squares per candidate, lightly damped: (AᵀA + λI) δ = Aᵀb.
        ata = np.einsum('bki,bkj->bij', a, a)
        damping = 1e-6 * np.trace(ata, axis1=1, axis2=2)[:, None, None] * np.eye(3)
        step = np.linalg.solve(ata + damping, np.einsum('bki,bk->bi', a, b)[..., None])[..., 0]
        params[:, :3] += step
    return params


def _refine(params: np.ndarray, views: _Views, size: float, *,
            steps_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pattern search over ``(x, y, z, heading, log size)`` for each candidate, batched."""
    steps = np.tile([0.04 * size, 0.04 * size, 0.04 * size, math.radians(5.0), 0.04],
                    (len(params), 1))
    best = params.copy()
    scores = _mean_iou(best, views)
    moves = np.concatenate([np.eye(5), -np.eye(5)])  # (10, 5)
    for _ in range(steps_n):
        if (steps[:, 0] < MIN_STEP * size).all():
            break
        trials = best[:, None, :] + moves[None] * steps[:, None, :]  # (B, 10, 5)
        trial_scores = _mean_iou(trials.reshape(-1, 5), views).reshape(len(best), -1)
        pick = trial_scores.argmax(axis=1)
        gain = trial_scores[np.arange(len(best)), pick] > scores + 1e-9
        best[gain] = trials[np.flatnonzero(gain), pick[gain]]
        scores[gain] = trial_scores[np.flatnonzero(gain), pick[gain]]
        steps[~gain] *= 0.5
    return best, scores


def place_object(occupied: np.ndarray, views: Sequence[CalibratedView], *,
                 seed: int = 0) -> Placement:
    """Find the pose and metric size of a reconstruction from calibrated, masked views.

    :param occupied: ``(D, D, D)`` bool grid in ShapeNet axes (the network's output at its
        threshold).
    :param views: the views the grid was reconstructed from (two or more with a mask).
    :param seed: chooses the subset of surface voxels projected when there are very many.
    :returns: the placement and its silhouette IoU.
    :raises PlacementError: an empty grid, fewer than two views with a mask, a bad K or pose,
        views that cannot fix the position.
    """
    occupied = np.asarray(occupied, dtype=bool)
    if occupied.ndim != 3 or not occupied.any():
        raise PlacementError('the reconstruction is empty: nothing to place')
    usable = _mask_views(views)
    if len(usable) < 2:
        raise PlacementError(f'placement needs two views or more with a mask of at least '
                             f'{MIN_MASK_PIXELS} pixels, got {len(usable)}')
    outline = _outline(occupied)
    coarse_outline = outline.sparse(COARSE_POINTS, MAX_POINTS, np.random.default_rng(seed))
    fine_outline = outline.sparse(FINE_POINTS, MAX_POINTS, np.random.default_rng(seed))
    position, size = _start(usable)
    coarse = _Views.stack([_window(view, COARSE_PX, coarse_outline, position, size)
                           for view in usable])
    headings = np.arange(HEADINGS) * (2.0 * math.pi / HEADINGS)
    candidates = np.concatenate([np.tile(position, (HEADINGS, 1)), headings[:, None],
                                 np.full((HEADINGS, 1), math.log(size))], axis=1)
    candidates = _align(candidates, coarse)
    scores = _mean_iou(candidates, coarse)
    chosen = candidates[np.argsort(-scores)[:REFINED_HEADINGS]]
    # The best headings refined coarsely, then the best of them finely.
    chosen, scores = _refine(chosen, coarse, size, steps_n=COARSE_STEPS)
    best_coarse = chosen[int(np.argmax(scores))]
    fine = _Views.stack([_window(view, FINE_PX, fine_outline, best_coarse[:3],
                                 math.exp(best_coarse[4])) for view in usable])
    refined, _ = _refine(best_coarse[None], fine, size, steps_n=REFINE_STEPS)
    best = refined[0]
    view_ious = [math.nan] * len(views)
    for view, value in zip(usable, _view_ious(best[None], fine)[:, 0]):
        view_ious[view.index] = float(value)
    pose = ObjectPose(position=tuple(float(v) for v in best[:3]),
                      heading_rad=float(math.remainder(best[3], 2.0 * math.pi)),
                      size_m=float(math.exp(best[4])))
    return Placement(pose=pose, silhouette_iou=float(np.nanmean(view_ious)),
                     view_ious=tuple(view_ious))


def carve(occupied: np.ndarray, pose: ObjectPose, views: Sequence[CalibratedView], *,
          dilate_px: int = 2) -> np.ndarray:
    """Empty the voxels that a view sees outside its mask (silhouette carving).

    A voxel whose centre projects into an image outside the object's mask, dilated by
    ``dilate_px`` pixels against calibration and mask errors, cannot be part of the object.
    Voxels behind a camera or outside its image are kept (that view knows nothing of them).

    :param occupied: ``(D, D, D)`` bool, ShapeNet axes.
    :returns: the carved grid, same shape.
    """
    occupied = np.asarray(occupied, dtype=bool)
    n = occupied.shape[0]
    index = np.argwhere(occupied)  # (N, 3) ShapeNet indices
    centres = ((index + 0.5) / n - 0.5) @ SHAPENET_TO_ROS.T
    fixed = pose.to_fixed(centres)
    keep = np.ones(len(index), dtype=bool)
    kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
    for view in views:
        mask = cv2.dilate((np.asarray(view.mask) != 0).astype(np.uint8), kernel) > 0
        to_camera = invert_pose(np.asarray(view.camera_to_fixed, dtype=np.float64))
        cam = fixed @ to_camera[:3, :3].T + to_camera[:3, 3]
        k = np.asarray(view.intrinsics, dtype=np.float64)
        with np.errstate(divide='ignore', invalid='ignore'):
            u = np.rint(k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2])
            v = np.rint(k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2])
        h, w = mask.shape
        seen = (cam[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        outside = np.zeros(len(index), dtype=bool)
        outside[seen] = ~mask[v[seen].astype(np.int64), u[seen].astype(np.int64)]
        keep &= ~outside
    carved = np.zeros_like(occupied)
    carved[tuple(index[keep].T)] = True
    return carved
