"""What a demo scene changes: the rig's and the node's parameter overrides, and the demo's files.

:func:`demo_setup` turns ``--scene``, ``--no-masks`` and ``--compressed`` into ``name:=value``
overrides for the rig and the node and into how the scorer listens (:class:`DemoSetup`);
:func:`config_dir` finds the demo's parameter files. No ROS here.

``placement='calibrated'`` (``--placement``; the default of the tabletop and wrist scenes with
masks) runs the node with ``placement: calibrated`` in the rig's ``fixed_frame``: camera poses
from TF, which the rig broadcasts, where ``tf2_ros`` imports. Without it the rig cannot
broadcast TF and its placed scenes move the cameras with every object (the scene and its
cameras are scaled together), so the tabletop scene then runs as a fixed camera cell: the rig
does not place its targets (``place_objects: false``: every target's grid centred on the fixed
frame's origin, ``object_size_m`` wide) and the node gets the rig's fixed cameras as
``camera_poses``. The wrist camera moves, so without TF the wrist scene stays canonical. Every
such fallback is said in :attr:`DemoSetup.note`.

``objects_per_scene`` N >= 2 (``--objects-per-scene``) shows tables of N objects: the rig runs
with ``objects: N`` and the node with ``mask_mode: instances`` on the rig's instance label
images (``camera_<i>/instance_mask``) and ``placement: calibrated``. That needs the tabletop
scene, masks, the calibrated placement and TF (each table's cameras aim at its objects, so only
TF gives their poses); anything else is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ...core.geometry import matrix_to_quaternion, poses_from_numbers
from ...core.params_file import read_params_file
from ...core.placement import ObjectPose
from ...core.rig_config import (MAX_RIG_OBJECTS, RIG_PARAMETER_NAMES, SCENES, RigConfig,
                                rig_config_from_values, rig_defaults)
from ...core.synthetic.world import camera_to_fixed
from ..rig_topics import RIG_NODE_NAME, image_topic, instance_mask_topic, mask_topic

PACKAGE_DIR = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = PACKAGE_DIR / 'weights' / 'pix2voxpp_f_synthetic.pth'
NUM_CAMERAS = 3
# The wrist scene's key frames: three views a second apart (30 degrees of the rig's 12 s orbit).
WRIST_VIEWS = 3
WRIST_VIEW_INTERVAL_S = 1.0
PLACEMENTS = ('canonical', 'calibrated')


def config_dir() -> Path:
    """Return the folder of the demo's parameter files: the source tree's, else share/."""
    source = PACKAGE_DIR.parent / 'config'
    if (source / 'demo_rig.yaml').is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    try:
        return Path(get_package_share_directory('pix2voxpp_ros')) / 'config'
    except (LookupError, OSError) as exc:  # not installed, or AMENT_PREFIX_PATH unset
        raise FileNotFoundError('cannot find the demo parameter files: no config/ beside the '
                                'package and pix2voxpp_ros is not in the ament index') from exc


@dataclass(frozen=True)
class DemoSetup:
    """What a scene changes in the demo: parameter overrides and how the scorer listens."""

    scene: str
    masks: bool
    compressed: bool
    cameras: int
    settle_s: float
    rig_parameters: tuple[str, ...]
    node_parameters: tuple[str, ...]
    placement: str = 'canonical'
    fixed_frame: str = ''  # calibrated: the frame the node publishes in (the rig's)
    # calibrated without TF: x y z qx qy qz qw of each camera, as the node gets them
    camera_poses: tuple[float, ...] = ()
    true_pose: Optional[ObjectPose] = None  # calibrated without TF: where every target stands
    note: str = ''  # why the placement differs from the one asked for, or how it is done
    objects_per_scene: int = 1  # 2 or more: tables of several objects, instance masks

    @property
    def placed(self) -> bool:
        """Whether the node places its results in :attr:`fixed_frame`."""
        return self.placement == 'calibrated'

    def camera_pose_matrices(self) -> list[np.ndarray]:
        """Return :attr:`camera_poses` as ``(4, 4)`` matrices (empty: TF)."""
        return poses_from_numbers(self.camera_poses, self.cameras) if self.camera_poses else []

    def rig_overrides(self) -> dict[str, object]:
        """Return :attr:`rig_parameters` as values (YAML, as ``-p name:=value`` reads them)."""
        import yaml
        pairs = (p.partition(':=') for p in self.rig_parameters)
        return {name: yaml.safe_load(text) for name, _, text in pairs}


def default_placement(scene: str) -> str:
    """Return ``--placement``'s default: calibrated for the tabletop and wrist scenes.

    (Without masks they fall back to canonical, saying so: see :func:`demo_setup`.)
    """
    return 'canonical' if scene == 'plain' else 'calibrated'


def _why_canonical(scene: str, *, masks: bool, tf: bool) -> str:
    """Return why a scene cannot be placed (calibrated), or ''."""
    if scene == 'plain':
        return 'the plain scene has no masks'
    if not masks:
        return 'no masks (--no-masks)'
    if scene == 'wrist' and not tf:
        return 'the wrist camera moves and tf2_ros does not import here'
    return ''


def rig_config(config: Optional[Path] = None,
               overrides: Optional[dict[str, object]] = None) -> RigConfig:
    """Return the rig's configuration: its defaults, ``demo_rig.yaml``, then ``overrides``.

    :raises ParamsFileError: the parameters file cannot be read.
    :raises ValueError: invalid rig parameters.
    """
    values = rig_defaults()
    from_file = read_params_file((config or config_dir()) / 'demo_rig.yaml',
                                 node_name=RIG_NODE_NAME)
    values.update({k: v for k, v in from_file.items() if k in RIG_PARAMETER_NAMES})
    values.update(overrides or {})
    return rig_config_from_values(values)


def _fixed_cell(rig: RigConfig) -> tuple[ObjectPose, tuple[float, ...]]:
    """Where an unplaced target stands in the fixed frame, and the rig's cameras' poses there."""
    pose = ObjectPose((0.0, 0.0, 0.0), 0.0, rig.object_size_m)  # the object frame itself
    numbers: list[float] = []
    for camera in rig.cameras():
        matrix = camera_to_fixed(camera, pose)  # (4, 4) optical frame in the fixed frame
        numbers += [*matrix[:3, 3], *matrix_to_quaternion(matrix[:3, :3])]
    return pose, tuple(float(v) for v in numbers)


def _placement_parameters(
        scene: str, placement: str, *, masks: bool, tf: bool,
        config: Optional[Path]) -> tuple[dict[str, object], list[str], list[str]]:
    """Decide how a scene is placed: DemoSetup's placement fields, rig and node overrides.

    :raises ValueError: unknown placement.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f'placement must be one of {", ".join(PLACEMENTS)}, got {placement!r}')
    if placement == 'canonical':
        return {}, [], []
    why = _why_canonical(scene, masks=masks, tf=tf)
    if why:
        return {'note': f'placement canonical: {why}'}, [], []
    rig_overrides: dict[str, object] = {'scene': scene}
    fields: dict[str, object] = {'placement': 'calibrated'}
    rig, node = [], ['placement:=calibrated']
    if not tf:
        rig_overrides['place_objects'] = False
        rig.append('place_objects:=false')
    cell = rig_config(config, rig_overrides)
    fields['fixed_frame'] = cell.fixed_frame
    node.append(f'fixed_frame:={cell.fixed_frame}')
    if tf:
        fields['note'] = f'placement calibrated in {cell.fixed_frame}: camera poses from TF'
    else:
        fields['true_pose'], fields['camera_poses'] = _fixed_cell(cell)
        node.append('camera_poses:=[' + ', '.join(f'{v:.9f}' for v in fields['camera_poses'])
                    + ']')
        fields['note'] = (f'placement calibrated in {cell.fixed_frame}: tf2_ros does not import '
                          'here, so a fixed camera cell (the rig does not place its targets; '
                          'the node gets camera_poses)')
    return fields, rig, node


def _why_not_tables(objects_per_scene: int, scene: str, *, masks: bool, placement: str,
                    tf: bool) -> str:
    """Return why tables of ``objects_per_scene`` objects cannot be shown, or ''."""
    if not 2 <= objects_per_scene <= MAX_RIG_OBJECTS:
        return f'must be 1 (one object a scene) or 2 to {MAX_RIG_OBJECTS}'
    if scene != 'tabletop':
        return f'needs --scene tabletop, not {scene}'
    if not masks:
        return 'needs the instance masks (not --no-masks)'
    if placement != 'calibrated':
        return 'needs --placement calibrated: every object is scored where it stands'
    if not tf:
        return ("needs tf2_ros (a robot's ROS, or the robot-tools kit): each table's cameras "
                'aim at its objects, so their poses come over TF')
    return ''


def demo_setup(scene: str = 'plain', *, masks: bool = True, compressed: bool = False,
               placement: str = 'canonical', tf: bool = True,
               config: Optional[Path] = None, objects_per_scene: int = 1) -> DemoSetup:
    """Return the rig and node overrides of a scene; plain without them is today's demo.

    :param placement: ``canonical`` or ``calibrated`` (falls back to canonical where it cannot
        be done, saying why in ``note``: see the module).
    :param tf: ``tf2_ros`` imports in the node's and the rig's processes.
    :param config: the folder of ``demo_rig.yaml`` (calibrated: the rig's fixed frame and
        cameras); default :func:`config_dir`.
    :param objects_per_scene: 2 or more: tables of that many objects (see the module).
    :raises ValueError: unknown scene or placement, invalid rig parameters, or tables that
        cannot be shown (the reason).
    :raises ParamsFileError: calibrated, and ``demo_rig.yaml`` cannot be read.
    """
    if scene not in SCENES:
        raise ValueError(f'scene must be one of {", ".join(SCENES)}, got {scene!r}')
    if objects_per_scene != 1:
        why = _why_not_tables(objects_per_scene, scene, masks=masks, placement=placement, tf=tf)
        if why:
            raise ValueError(f'--objects-per-scene {objects_per_scene} {why}')
    masks = masks and scene != 'plain'
    cameras = 1 if scene == 'wrist' else NUM_CAMERAS
    rig, node = [], []
    if scene != 'plain':
        rig.append(f'scene:={scene}')
    if compressed:
        rig.append('compressed:=true')
        node.append('image_transport:=compressed')
    if scene == 'wrist':
        node += [f"camera_topics:=['{image_topic(0)}']", 'min_views:=0',
                 f'views_per_reconstruction:={WRIST_VIEWS}',
                 f'min_view_interval_s:={WRIST_VIEW_INTERVAL_S}',
                 # The oldest key frame must still be fresh when the newest arrives.
                 f'max_frame_age_s:={WRIST_VIEWS * WRIST_VIEW_INTERVAL_S + 1.0}']
    if objects_per_scene > 1:
        rig.append(f'objects:={objects_per_scene}')
        node.append('mask_mode:=instances')
    if masks:
        masked = instance_mask_topic if objects_per_scene > 1 else mask_topic
        topics = ', '.join(f"'{masked(i)}'" for i in range(cameras))
        node.append(f'mask_topics:=[{topics}]')
    # A moving camera's first clouds of an object still hold key frames of the one before:
    # score only clouds whose key frames can all be of the object.
    settle_s = (WRIST_VIEWS - 1) * (WRIST_VIEW_INTERVAL_S + 0.5) if scene == 'wrist' else 0.0
    fields, placed_rig, placed_node = _placement_parameters(scene, placement, masks=masks, tf=tf,
                                                            config=config)
    return DemoSetup(scene=scene, masks=masks, compressed=compressed, cameras=cameras,
                     settle_s=settle_s, rig_parameters=tuple(rig + placed_rig),
                     node_parameters=tuple(node + placed_node),
                     objects_per_scene=objects_per_scene, **fields)
