"""Cluttered scenes for the simulated rig: a target object on a table among distractors.

A :class:`TabletopScene` stands the target (a :class:`SyntheticObject`, in its own canonical
frame, which is the scene's frame) on a textured table, with distractor objects of other
categories beside it, in front of a textured room, lit by a light drawn per scene.
:func:`render_scene_view` ray-casts it for any :class:`Camera` and returns the image together
with the exact mask of the target: the pixels whose front-most surface belongs to it, so that
a distractor in front removes its pixels from the mask, as a perfect segmenter would.

:func:`tabletop_cameras` builds fixed cameras that differ in resolution, field of view and
distance and aim past the target (it is not centred); :func:`wrist_camera` is one camera on an
arm orbiting the target, a pure function of time.

Only the target's parts decide the mask; the pixel-centre ray decides (no anti-aliasing: a
supersampled edge would cost more than the rig's rate allows on small machines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import Camera
from .render import _shade, _trace_image, _screen_window
from .shapes import CATEGORIES, SyntheticObject, make_object

#: Half the table's edge, grid-edge units (the target's grid is 1).
TABLE_HALF_SIZE = 4.0


@dataclass(frozen=True)
class Lighting:
    """One scene's light: a key light fixed in the scene plus ambient light.

    :ivar direction: ``(3,)`` unit vector towards the key light, scene frame.
    :ivar ambient: ambient weight.
    :ivar key: key-light weight.
    :ivar tint: RGB factors of the light's colour.
    """

    direction: tuple[float, float, float]
    ambient: float
    key: float
    tint: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class TabletopScene:
    """A target object standing on a table with distractors beside it.

    :ivar target: the object to reconstruct, at its canonical pose (the scene frame's origin).
    :ivar distractors: other objects, already moved to their places on the table.
    :ivar table_y: height of the table surface (the target's lowest point).
    :ivar lighting: the scene's light.
    :ivar table_rgb: base colour of the table.
    :ivar wall_rgb: base colour of the room behind.
    """

    target: SyntheticObject
    distractors: tuple[SyntheticObject, ...]
    table_y: float
    lighting: Lighting
    table_rgb: tuple[float, float, float]
    wall_rgb: tuple[float, float, float]


@dataclass(frozen=True)
class SceneView:
    """What one camera sees: ``image (H, W, 3)`` uint8 RGB and ``mask (H, W)`` bool target."""

    image: np.ndarray
    mask: np.ndarray


def _placed(obj: SyntheticObject, offset: np.ndarray, scale: float) -> SyntheticObject:
    return SyntheticObject(obj.category, obj.seed,
                           tuple(p.transformed(scale, offset) for p in obj.parts))


def make_tabletop_scene(target: SyntheticObject, *, seed: int, num_distractors: int = 2,
                        occluder_azimuth_deg: float | None = None) -> TabletopScene:
    """Compose a scene around ``target``; the same target and seed give the same scene.

    Distractors are objects of other categories drawn from the same generator, scaled to
    0.6–0.9 of the target's grid and set beside it on the table, close enough to occlude it
    from some directions. With ``occluder_azimuth_deg`` the first one stands on that side
    (within 15 degrees), between the target and a camera at that azimuth, and hides part of it.

    :raises ValueError: ``num_distractors`` is negative or above the number of other categories.
    """
    others = [name for name in CATEGORIES if name != target.category]
    if not 0 <= num_distractors <= len(others):
        raise ValueError(f'num_distractors must be in [0, {len(others)}], got {num_distractors}')
    rng = np.random.default_rng([int(seed), 7919])
    lo, hi = target.bounds()
    table_y = float(lo[1])
    target_radius = 0.5 * float(np.hypot(hi[0] - lo[0], hi[2] - lo[2]))
    distractors = []
    first_azimuth = rng.uniform(0.0, 2.0 * math.pi)
    if occluder_azimuth_deg is not None:
        first_azimuth = math.radians(occluder_azimuth_deg) + rng.uniform(-0.25, 0.25)
    for k, name in enumerate(rng.choice(others, size=num_distractors, replace=False)):
        obj = make_object(str(name), seed=int(rng.integers(0, 2**31)))
        scale = float(rng.uniform(0.6, 0.9))
        d_lo, d_hi = obj.bounds()
        radius = 0.5 * scale * float(np.hypot(d_hi[0] - d_lo[0], d_hi[2] - d_lo[2]))
        # Spread the distractors around the target; a small gap keeps the solids apart while
        # leaving them close enough to hide part of it from the cameras behind them.
        azimuth = first_azimuth + 2.0 * math.pi * k / num_distractors
        if k > 0 or occluder_azimuth_deg is None:
            azimuth += rng.uniform(-0.4, 0.4)
        reach = target_radius + radius + float(rng.uniform(0.05, 0.3))
        offset = np.array([reach * math.cos(azimuth), table_y - scale * float(d_lo[1]),
                           reach * math.sin(azimuth)])
        distractors.append(_placed(obj, offset, scale))
    lighting, table_rgb, wall_rgb = draw_room(rng)
    return TabletopScene(target=target, distractors=tuple(distractors), table_y=table_y,
                         lighting=lighting, table_rgb=table_rgb, wall_rgb=wall_rgb)


def draw_room(rng: np.random.Generator
              ) -> tuple[Lighting, tuple[float, float, float], tuple[float, float, float]]:
    """Draw a scene's light, table colour and wall colour (in that order) from ``rng``."""
    # The key light comes from somewhere above; its strength and colour change per scene.
    light_az = rng.uniform(0.0, 2.0 * math.pi)
    light_el = rng.uniform(math.radians(30.0), math.radians(75.0))
    direction = (math.cos(light_el) * math.cos(light_az), math.sin(light_el),
                 math.cos(light_el) * math.sin(light_az))
    lighting = Lighting(direction=direction, ambient=float(rng.uniform(0.25, 0.45)),
                        key=float(rng.uniform(0.55, 0.85)),
                        tint=tuple(float(v) for v in rng.uniform(0.85, 1.0, size=3)))
    table_rgb = tuple(float(v) for v in rng.uniform(0.3, 0.7, size=3))
    return lighting, table_rgb, tuple(float(v) for v in rng.uniform(0.45, 0.85, size=3))


def _table_texture(x: np.ndarray, z: np.ndarray, base: np.ndarray) -> np.ndarray:
    # Planks along x with a wavy grain: enough texture that the table is no flat colour.
    plank = np.floor(z * 2.5)
    grain = 0.85 + 0.1 * np.sin(x * 9.0 + 2.0 * np.sin(z * 3.0 + plank))
    stripe = 0.92 + 0.08 * ((plank % 2) * 2 - 1)
    return (grain * stripe)[:, None] * base


def _wall_texture(dirs: np.ndarray, base: np.ndarray) -> np.ndarray:
    # A room seen from inside: tiles by direction, so every camera sees a textured background.
    azimuth = np.arctan2(dirs[:, 2], dirs[:, 0])
    elevation = np.arcsin(np.clip(dirs[:, 1], -1.0, 1.0))
    tiles = (np.floor(azimuth * 12.0 / math.pi) + np.floor(elevation * 10.0 / math.pi)) % 2
    shade = 0.8 + 0.15 * tiles + 0.05 * np.sin(azimuth * 40.0)
    return shade[:, None] * base


def render_scene_view(scene: TabletopScene, camera: Camera) -> SceneView:
    """Render the scene as ``camera`` sees it, with the target's mask.

    :returns: the RGB image and the mask of the pixels where the target is the nearest surface.
    """
    image, part = render_scene_parts(scene, camera)
    # The target's parts come first (see render_scene_parts).
    mask = (part >= 0) & (part < len(scene.target.parts))
    return SceneView(image=image, mask=mask)


def render_scene_parts(scene: TabletopScene, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Render the scene as ``camera`` sees it, with the part that each pixel shows.

    :returns: ``image (H, W, 3)`` uint8 RGB and ``part (H, W)`` int32: the index of the
        nearest part in the target's parts followed by each distractor's, in order; -1 where
        the table or the room is seen.
    """
    objects = (scene.target,) + scene.distractors
    parts = tuple(p for obj in objects for p in obj.parts)
    everything = SyntheticObject(scene.target.category, scene.target.seed, parts)
    windows = [_screen_window(part, camera) for part in parts]
    dirs = camera.ray_directions()
    depth, owner = _trace_image(everything, camera, dirs, windows)
    depth, owner, flat_dirs = depth.reshape(-1), owner.reshape(-1), dirs.reshape(-1, 3)
    light = scene.lighting
    key_cam = camera.rotation @ np.asarray(light.direction)
    # No fill light: the scene's own light is fixed in the room, not to the camera.
    rgb = _shade(everything, camera, depth, owner, flat_dirs, key_light=key_cam,
                 fill_light=key_cam, weights=(light.ambient, light.key, 0.0))
    centre = camera.centre
    with np.errstate(divide='ignore', invalid='ignore'):
        t_table = (scene.table_y - centre[1]) / flat_dirs[:, 1]
    hit = centre + np.where(np.isfinite(t_table), t_table, 0.0)[:, None] * flat_dirs
    on_table = ((t_table > 0.0) & (t_table < depth) & (np.abs(hit[:, 0]) <= TABLE_HALF_SIZE)
                & (np.abs(hit[:, 2]) <= TABLE_HALF_SIZE))
    if centre[1] > scene.table_y:
        table_light = light.ambient + light.key * max(light.direction[1], 0.0)
        rgb[on_table] = table_light * _table_texture(hit[on_table, 0], hit[on_table, 2],
                                                     np.asarray(scene.table_rgb))
    else:  # a camera under the table sees its plain underside
        rgb[on_table] = light.ambient * np.asarray(scene.table_rgb)
    wall = (owner < 0) & ~on_table
    rgb[wall] = _wall_texture(flat_dirs[wall], np.asarray(scene.wall_rgb))
    rgb = rgb * np.asarray(light.tint)
    image = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    part = np.where(on_table, -1, owner).astype(np.int32)
    return (image.reshape(camera.height, camera.width, 3),
            part.reshape(camera.height, camera.width))


@dataclass(frozen=True)
class CameraProfile:
    """A kind of camera in a tabletop rig: image size, field of view and distance."""

    width: int
    height: int
    fov_deg: float
    distance: float


#: The tabletop rig's cameras cycle through these (distances in grid edges of the target).
TABLETOP_PROFILES = (
    CameraProfile(640, 480, 60.0, 2.6),
    CameraProfile(1280, 720, 70.0, 3.0),
    CameraProfile(640, 480, 60.0, 2.2),
)


def _aim_offset(rng: np.random.Generator, azimuth_deg: float, amount: float) -> np.ndarray:
    # Aim beside and above or below the target, across the line of sight, so it is off-centre.
    az = math.radians(azimuth_deg)
    across = np.array([-math.sin(az), 0.0, math.cos(az)])
    side = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0) * amount
    return side * across + np.array([0.0, rng.uniform(-0.5, 0.5) * amount, 0.0])


def tabletop_cameras(count: int, *, seed: int, elevation_deg: float = 30.0,
                     first_azimuth_deg: float = 30.0,
                     profiles: tuple[CameraProfile, ...] = TABLETOP_PROFILES,
                     off_centre: float = 0.3) -> list[Camera]:
    """Build ``count`` fixed cameras around the target, cycling through ``profiles``.

    Each aims at a point ``off_centre`` grid edges or so beside the target's centre, so the
    target is seen off-centre; elevations vary by a few degrees around ``elevation_deg``.

    :raises ValueError: ``count`` is below 1 or ``profiles`` is empty.
    """
    if count < 1 or not profiles:
        raise ValueError(f'need at least one camera and one profile, got {count}, {profiles}')
    rng = np.random.default_rng([int(seed), 104729])
    cameras = []
    for i in range(count):
        profile = profiles[i % len(profiles)]
        azimuth = first_azimuth_deg + 360.0 * i / count
        look_at = _aim_offset(rng, azimuth, off_centre)
        elevation = elevation_deg + float(rng.uniform(-6.0, 6.0))
        cameras.append(Camera(azimuth, elevation, 0.0, 1.0, profile.fov_deg, profile.width,
                              profile.height, max_distance=profile.distance,
                              look_at=tuple(float(v) for v in look_at)))
    return cameras


def wrist_camera(time_s: float, *, period_s: float = 12.0,
                 profile: CameraProfile = TABLETOP_PROFILES[0],
                 elevation_deg: tuple[float, float] = (20.0, 50.0), jitter: float = 0.12,
                 first_azimuth_deg: float = 30.0) -> Camera:
    """Return the wrist camera at ``time_s``: an orbit of the target, a pure function of time.

    The azimuth turns once per ``period_s``; the elevation swings between the two bounds of
    ``elevation_deg`` at a different rate, and the aim point wanders by up to ``jitter`` grid
    edges, so the target is roughly but not exactly centred, as an arm's camera sees it.

    :raises ValueError: ``period_s`` is not positive.
    """
    if not period_s > 0.0:
        raise ValueError(f'period_s must be positive, got {period_s}')
    phase = 2.0 * math.pi * time_s / period_s
    low, high = elevation_deg
    elevation = low + (high - low) * 0.5 * (1.0 - math.cos(1.7 * phase))
    look_at = (jitter * math.sin(2.3 * phase), 0.5 * jitter * math.sin(3.1 * phase + 1.0),
               jitter * math.cos(1.9 * phase))
    return Camera((first_azimuth_deg + math.degrees(phase)) % 360.0, elevation, 0.0, 1.0,
                  profile.fov_deg, profile.width, profile.height,
                  max_distance=profile.distance, look_at=look_at)
