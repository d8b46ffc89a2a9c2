"""Ray-cast rendering of synthetic objects: RGBA images and depth maps for any :class:`Camera`.

Every pixel casts one ray through its centre; each primitive is intersected analytically, only
over the pixels inside the projection of its bounding box, and a depth buffer keeps the nearest
hit. Shading is Lambertian with two lights fixed to the camera (a key light from the upper left,
a weaker fill from the right) plus ambient light, so every view is lit alike. The background is
transparent (alpha 0, colour 0).

With ``supersample`` s > 1 the pixels on a silhouette or part boundary (where the primary rays
disagree with a neighbour) are re-sampled with s × s rays and averaged, which anti-aliases the
edges like Blender's renderings at a fraction of the cost of supersampling every pixel.
"""

from __future__ import annotations

import numpy as np

from .camera import Camera
from .primitives import Part, rows_times
from .shapes import SyntheticObject

# Directions towards the lights in the camera frame (x right, y down, z forward).
_KEY_LIGHT = np.array([-0.45, -0.65, -0.6]) / np.linalg.norm([-0.45, -0.65, -0.6])
_FILL_LIGHT = np.array([0.7, -0.1, -0.7]) / np.linalg.norm([0.7, -0.1, -0.7])
_AMBIENT, _KEY, _FILL = 0.3, 0.65, 0.25


def _screen_window(part: Part, camera: Camera) -> tuple[int, int, int, int] | None:
    """Pixel rows and columns ``(v0, v1, u0, u1)`` that the part's bounding box can cover."""
    lo, hi = part.bounds()
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    uv = camera.project(corners)
    if not np.isfinite(uv).all():  # a corner at or behind the camera: test every pixel
        return 0, camera.height, 0, camera.width
    u0 = max(int(np.floor(uv[:, 0].min())), 0)
    u1 = min(int(np.ceil(uv[:, 0].max())) + 1, camera.width)
    v0 = max(int(np.floor(uv[:, 1].min())), 0)
    v1 = min(int(np.ceil(uv[:, 1].max())) + 1, camera.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return v0, v1, u0, u1


def _trace_image(obj: SyntheticObject, camera: Camera, dirs: np.ndarray,
                 windows: list) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of every pixel-centre ray: ``(t (H, W), owner (H, W))``; owner -1: none."""
    depth = np.full(dirs.shape[:2], np.inf)
    owner = np.full(dirs.shape[:2], -1, dtype=np.int32)
    centre = camera.centre
    for index, (part, window) in enumerate(zip(obj.parts, windows)):
        if window is None:
            continue
        v0, v1, u0, u1 = window
        sub = dirs[v0:v1, u0:u1]
        t = part.intersect((centre - part.centre) @ part.rotation,
                           rows_times(sub.reshape(-1, 3), part.rotation)).reshape(sub.shape[:2])
        depth_win = depth[v0:v1, u0:u1]
        nearer = t < depth_win
        depth_win[nearer] = t[nearer]
        owner[v0:v1, u0:u1][nearer] = index
    return depth, owner


def _trace_rays(obj: SyntheticObject, camera: Camera, dirs: np.ndarray, uv: np.ndarray,
                windows: list) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of scattered rays ``dirs (N, 3)`` through pixel coordinates ``uv (N, 2)``."""
    depth = np.full(len(dirs), np.inf)
    owner = np.full(len(dirs), -1, dtype=np.int32)
    centre = camera.centre
    for index, (part, window) in enumerate(zip(obj.parts, windows)):
        if window is None:
            continue
        v0, v1, u0, u1 = window
        # The window holds the pixel centres the part can cover; sub-pixel rays reach half a
        # pixel further.
        near = np.flatnonzero((uv[:, 0] >= u0 - 1) & (uv[:, 0] <= u1) & (uv[:, 1] >= v0 - 1)
                              & (uv[:, 1] <= v1))
        if near.size == 0:
            continue
        t = part.intersect((centre - part.centre) @ part.rotation,
                           rows_times(dirs[near], part.rotation))
        nearer = t < depth[near]
        depth[near[nearer]] = t[nearer]
        owner[near[nearer]] = index
    return depth, owner


def _shade(obj: SyntheticObject, camera: Camera, depth: np.ndarray, owner: np.ndarray,
           dirs: np.ndarray, *, key_light: np.ndarray = _KEY_LIGHT,
           fill_light: np.ndarray = _FILL_LIGHT,
           weights: tuple[float, float, float] = (_AMBIENT, _KEY, _FILL)) -> np.ndarray:
    """Return ``(N, 3)`` float RGB in [0, 1] of rays ``(N,)`` (zeros where nothing is hit).

    The light directions are in the camera frame; ``weights`` are ambient, key and fill.
    """
    ambient, key_weight, fill_weight = weights
    rgb = np.zeros(owner.shape + (3,))
    rot = camera.rotation
    centre = camera.centre
    order = np.argsort(owner, kind='stable')
    starts = np.searchsorted(owner[order], np.arange(len(obj.parts) + 1))
    for index, part in enumerate(obj.parts):
        rays = order[starts[index]:starts[index + 1]]
        if rays.size == 0:
            continue
        d = dirs[rays]
        points = centre + depth[rays][:, None] * d
        normals = rows_times(part.normal(part.to_local(points)), part.rotation.T)  # object
        # Face the viewer: a hit on an edge may pick the hidden face's normal.
        facing = np.einsum('ij,ij->i', normals, d) > 0.0
        normals[facing] *= -1.0
        n_cam = rows_times(normals, rot.T)
        key = np.einsum('ij,j->i', n_cam, key_light)
        fill = np.einsum('ij,j->i', n_cam, fill_light)
        light = (ambient + key_weight * np.clip(key, 0.0, None)
                 + fill_weight * np.clip(fill, 0.0, None))
        rgb[rays] = np.clip(light[:, None] * np.asarray(part.colour), 0.0, 1.0)
    return rgb


def _edges(owner: np.ndarray) -> np.ndarray:
    """Pixels whose primary ray hit something else than one of their 8 neighbours did."""
    pad = np.pad(owner, 1, mode='edge')
    h, w = owner.shape
    edge = np.zeros(owner.shape, dtype=bool)
    for dv in (0, 1, 2):
        for du in (0, 1, 2):
            edge |= pad[dv:dv + h, du:du + w] != owner
    return edge


def render_view(obj: SyntheticObject, camera: Camera, *, supersample: int = 1) -> np.ndarray:
    """Render an object as seen by a camera.

    :param obj: the object (see :func:`~pix2voxpp_ros.core.synthetic.shapes.make_object`).
    :param camera: any camera; image size and field of view come from it.
    :param supersample: rays per edge pixel along each axis; above 1 the silhouette and part
        boundaries are anti-aliased (alpha between 0 and 255 on the silhouette).
    :returns: ``(H, W, 4)`` uint8 RGBA (red first; write with OpenCV after converting to BGRA).
    :raises ValueError: ``supersample`` is below 1.
    """
    if supersample < 1:
        raise ValueError(f'supersample must be at least 1, got {supersample}')
    windows = [_screen_window(part, camera) for part in obj.parts]
    dirs = camera.ray_directions()
    depth, owner = _trace_image(obj, camera, dirs, windows)
    flat_owner = owner.reshape(-1)
    rgb = _shade(obj, camera, depth.reshape(-1), flat_owner, dirs.reshape(-1, 3))
    alpha = (flat_owner >= 0).astype(np.float64)
    if supersample > 1:
        pixels = np.flatnonzero(_edges(owner))
        s = supersample
        offsets = (np.arange(s) + 0.5) / s - 0.5
        du, dv = np.meshgrid(offsets, offsets)
        uv = np.stack([pixels % camera.width, pixels // camera.width], axis=1).astype(float)
        sub_uv = (uv[:, None, :] + np.stack([du.ravel(), dv.ravel()], axis=1)).reshape(-1, 2)
        sub_dirs = camera.pixel_rays(sub_uv)
        sub_depth, sub_owner = _trace_rays(obj, camera, sub_dirs, sub_uv, windows)
        sub_rgb = _shade(obj, camera, sub_depth, sub_owner, sub_dirs)
        # Average premultiplied colour and coverage over each pixel's s × s rays.
        sub_alpha = (sub_owner >= 0).astype(np.float64).reshape(-1, s * s)
        coverage = sub_alpha.mean(axis=1)
        premult = sub_rgb.reshape(-1, s * s, 3).sum(axis=1) / (s * s)
        alpha[pixels] = coverage
        rgb[pixels] = np.divide(premult, coverage[:, None], out=np.zeros_like(premult),
                                where=coverage[:, None] > 0)
    out = np.concatenate([rgb * (alpha > 0)[:, None], alpha[:, None]], axis=1)
    out = np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out.reshape(camera.height, camera.width, 4)


def render_depth(obj: SyntheticObject, camera: Camera) -> np.ndarray:
    """Render the depth map: z along the optical axis, in grid-edge units.

    :returns: ``(H, W)`` float32; ``inf`` where no surface is hit.
    """
    windows = [_screen_window(part, camera) for part in obj.parts]
    dirs = camera.ray_directions()
    depth, owner = _trace_image(obj, camera, dirs, windows)
    z = depth * np.einsum('hwj,j->hw', dirs, camera.rotation[2])  # ray length × cos(off-axis)
    z[owner < 0] = np.inf
    return z.astype(np.float32)
