"""The simulated rig's parameter schema and its frozen configuration, importable without ROS.

Every parameter of ``sim_camera_rig`` is a :class:`~.node_config.ParamSpec` in
:data:`RIG_PARAMETERS`, the form the reconstruction node's parameters take; the rig node declares
them, ``rig_bag`` and the tests read defaults and parameter files with them, and
:func:`rig_config_from_values` checks a full set of values and builds :class:`RigConfig`, whose
:meth:`RigConfig.cameras` are the synthetic cameras the rig renders from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import Pix2VoxError
from .node_config import ParamSpec
from .synthetic import CATEGORIES, R2N2_MAX_DISTANCE, Camera
from .synthetic.scenes import tabletop_cameras, wrist_camera

SCENES = ('plain', 'tabletop', 'wrist')
#: Most targets on one table of the tabletop scene (parameter ``objects``).
MAX_RIG_OBJECTS = 5
# 3D-R2N2's renderings keep the centre 128 of 137 pixels at a 25° field of view; a 640×480 camera
# whose centre 480×480 square sees the same angle has this horizontal field of view, so the
# reconstruction node's centre crop frames objects as the training images did.
MATCHED_FOV_DEG = math.degrees(
    2.0 * math.atan(640 / 480 * 128 / 137 * math.tan(math.radians(12.5))))


class RigConfigError(Pix2VoxError, ValueError):
    """The rig's parameter values do not form a configuration; the message lists every reason."""


@dataclass(frozen=True)
class RigConfig:
    """The rig's parameters, read once at start."""

    num_cameras: int
    camera_azimuths_deg: tuple[float, ...]
    camera_elevation_deg: float
    camera_distance_ratio: float
    fov_deg: float
    width: int
    height: int
    rate_hz: float
    object_switch_s: float
    categories: tuple[str, ...]
    seed: int
    first_index: int
    background_rgb: tuple[int, int, int]
    frame_prefix: str
    object_frame_id: str
    object_size_m: float
    scene: str = 'plain'
    compressed: bool = False
    wrist_period_s: float = 12.0
    fixed_frame: str = 'world'
    place_objects: bool = True
    objects: int = 1
    shuffle_instance_ids: bool = False

    @property
    def placed(self) -> bool:
        """Whether each target stands at a random pose and real size in ``fixed_frame``."""
        return self.place_objects and self.scene != 'plain'

    def cameras(self) -> list[Camera]:
        """Build the rig's cameras, evenly spaced in azimuth unless azimuths are given.

        The tabletop scene has its own kinds of camera; the wrist scene one camera, here at
        time 0 (:meth:`wrist_camera` gives it at any time).
        """
        if self.scene == 'tabletop':
            return tabletop_cameras(self.num_cameras, seed=self.seed,
                                    elevation_deg=self.camera_elevation_deg)
        if self.scene == 'wrist':
            return [self.wrist_camera(0.0)]
        azimuths = self.camera_azimuths_deg or tuple(
            30.0 + 360.0 * i / self.num_cameras for i in range(self.num_cameras))
        return [Camera(azimuth_deg=az, elevation_deg=self.camera_elevation_deg,
                       distance_ratio=self.camera_distance_ratio, fov_deg=self.fov_deg,
                       width=self.width, height=self.height, max_distance=R2N2_MAX_DISTANCE)
                for az in azimuths]

    def wrist_camera(self, time_s: float) -> Camera:
        """Return the wrist scene's camera ``time_s`` seconds after the rig started."""
        return wrist_camera(time_s, period_s=self.wrist_period_s)

    def scene_objects(self, count: int) -> list[tuple[str, int]]:
        """Return the ``(category, index)`` of each target of scene number ``count``.

        The rig shows the held-out objects in one sequence: the categories in turn, the index
        counting up from ``first_index`` once per round. Scene ``count`` holds the
        :attr:`objects` objects from number ``count * objects`` on, so a table of three shows
        what three scenes of one target would.
        """
        out = []
        for k in range(count * self.objects, (count + 1) * self.objects):
            out.append((self.categories[k % len(self.categories)],
                        self.first_index + k // len(self.categories)))
        return out


RIG_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('num_cameras', 3, 'int',
              'number of cameras, evenly spaced in azimuth around the object'),
    ParamSpec('camera_azimuths_deg', [0.0], 'float_list',
              'azimuth of each camera in degrees; [0.0] alone means evenly spaced from 30 '
              'degrees'),
    ParamSpec('camera_elevation_deg', 27.5, 'float',
              'elevation of every camera above the object, degrees'),
    ParamSpec('camera_distance_ratio', 0.8, 'float',
              'camera distance as a fraction of the R2N2 maximum (5.5 grid edges)'),
    ParamSpec('fov_deg', MATCHED_FOV_DEG, 'float',
              'horizontal field of view in degrees (default frames the object like the '
              'training renderings)'),
    ParamSpec('width', 640, 'int', 'image width in pixels'),
    ParamSpec('height', 480, 'int', 'image height in pixels'),
    ParamSpec('rate_hz', 2.0, 'float', 'frames per second of every camera'),
    ParamSpec('object_switch_s', 8.0, 'float',
              'seconds before switching to the next object; 0 keeps the first'),
    ParamSpec('categories', list(CATEGORIES), 'str_list',
              'synthetic categories to cycle through'),
    ParamSpec('seed', 20261125, 'int',
              'synthetic object seed (the demo weights were trained on another one)'),
    ParamSpec('first_index', 0, 'int', 'index of the first object within each category'),
    ParamSpec('background_rgb', [240, 240, 240], 'int_list',
              'background colour behind the object, 0-255'),
    ParamSpec('frame_prefix', 'rig', 'str', 'camera frame ids are <prefix>/camera_<i>_optical'),
    ParamSpec('object_frame_id', 'object', 'str',
              "frame of the ground-truth cloud (the object's canonical frame, as the "
              'reconstruction node uses)'),
    ParamSpec('object_size_m', 0.5, 'float',
              'edge of the 32^3 grid in metres; match the reconstruction node'),
    ParamSpec('scene', 'plain', 'str',
              'plain (the object alone, centred), tabletop (on a table among distractors, '
              'off-centre, cameras of different kinds) or wrist (the tabletop scene seen by one '
              'orbiting camera)'),
    ParamSpec('compressed', False, 'bool',
              'publish JPEG sensor_msgs/CompressedImage on camera_<i>/image_raw/compressed '
              'instead of raw images'),
    ParamSpec('wrist_period_s', 12.0, 'float',
              'wrist scene: seconds per orbit of the camera around the object'),
    ParamSpec('fixed_frame', 'world', 'str',
              'tabletop and wrist scenes: the frame the cameras are posed in (TF) and the '
              "truth is given in; the table's surface is its plane z = 0"),
    ParamSpec('place_objects', True, 'bool',
              'tabletop and wrist scenes: stand each target at a random position and heading '
              'on the table at a real size of its category (core/synthetic/world.py), publish '
              'the cameras as TF in fixed_frame and the true placement on ~/true_placement'),
    ParamSpec('objects', 1, 'int',
              f'tabletop scene: targets on each table, 1 to {MAX_RIG_OBJECTS}; from 2 on the '
              'cameras aim at every target, each camera publishes an instance label image on '
              'camera_<i>/instance_mask and the truth of every target comes on '
              '~/true_placements and ~/ground_truth (needs place_objects)'),
    ParamSpec('shuffle_instance_ids', False, 'bool',
              "objects >= 2: draw every camera's instance ids again at every tick (else once "
              'per table); each camera draws its own (1-255), so the cameras disagree, as '
              'separate segmenters do'),
)
RIG_PARAMETER_NAMES = frozenset(spec.name for spec in RIG_PARAMETERS)


def rig_defaults() -> dict[str, Any]:
    """Return every rig parameter's default value, by name (a fresh dict to update)."""
    return {spec.name: spec.default for spec in RIG_PARAMETERS}


def _problems(values: Mapping[str, Any], azimuths: tuple[float, ...]) -> list[str]:
    """Return every reason the values do not form a configuration."""
    problems = []
    if values['num_cameras'] < 1 and not azimuths:
        problems.append('num_cameras must be at least 1')
    if values['rate_hz'] <= 0:
        problems.append('rate_hz must be > 0')
    unknown = [c for c in values['categories'] if c not in CATEGORIES]
    if unknown or not values['categories']:
        problems.append(f'categories must be a non-empty subset of {list(CATEGORIES)}, '
                        f'got {unknown or "[]"}')
    if values['scene'] not in SCENES:
        problems.append(f'scene must be one of {", ".join(SCENES)}, got {values["scene"]!r}')
    if not values['wrist_period_s'] > 0:
        problems.append('wrist_period_s must be > 0')
    if len(values['background_rgb']) != 3:
        problems.append('background_rgb needs three values')
    objects = values['objects']
    if not 1 <= objects <= MAX_RIG_OBJECTS:
        problems.append(f'objects must be 1 to {MAX_RIG_OBJECTS}, got {objects}')
    elif objects > 1 and values['scene'] != 'tabletop':
        problems.append(f'objects {objects} needs scene tabletop (a table the fixed cameras '
                        f'see whole), got scene {values["scene"]!r}')
    elif objects > 1 and not values['place_objects']:
        problems.append(f"objects {objects} needs place_objects: each table's cameras aim at "
                        'its targets, so only their TF poses say where the targets stand')
    return problems


def rig_config_from_values(values: Mapping[str, Any]) -> RigConfig:
    """Build the rig's configuration from one value per entry of :data:`RIG_PARAMETERS`.

    :raises RigConfigError: with every problem found (a ``ValueError`` too).
    """
    azimuths = tuple(float(a) for a in values['camera_azimuths_deg'])
    if azimuths == (0.0,):
        azimuths = ()
    problems = _problems(values, azimuths)
    if problems:
        raise RigConfigError('; '.join(problems))
    wrist = values['scene'] == 'wrist'
    return RigConfig(
        num_cameras=1 if wrist else len(azimuths) or int(values['num_cameras']),
        camera_azimuths_deg=azimuths,
        camera_elevation_deg=float(values['camera_elevation_deg']),
        camera_distance_ratio=float(values['camera_distance_ratio']),
        fov_deg=float(values['fov_deg']), width=int(values['width']),
        height=int(values['height']), rate_hz=float(values['rate_hz']),
        object_switch_s=float(values['object_switch_s']),
        categories=tuple(values['categories']), seed=int(values['seed']),
        first_index=int(values['first_index']),
        background_rgb=tuple(int(v) for v in values['background_rgb']),
        frame_prefix=str(values['frame_prefix']),
        object_frame_id=str(values['object_frame_id']),
        object_size_m=float(values['object_size_m']), scene=str(values['scene']),
        compressed=bool(values['compressed']),
        wrist_period_s=float(values['wrist_period_s']),
        fixed_frame=str(values['fixed_frame']), place_objects=bool(values['place_objects']),
        objects=int(values['objects']),
        shuffle_instance_ids=bool(values['shuffle_instance_ids']))
