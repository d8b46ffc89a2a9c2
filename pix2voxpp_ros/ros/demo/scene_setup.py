"""What a demo scene changes: the rig's and the node's parameter overrides, and the demo's files.

:func:`demo_setup` turns ``--scene``, ``--no-masks`` and ``--compressed`` into ``name:=value``
overrides for the rig and the node and into how the scorer listens (:class:`DemoSetup`);
:func:`config_dir` finds the demo's parameter files. No ROS here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core.rig_config import SCENES
from ..rig_topics import image_topic, mask_topic

PACKAGE_DIR = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = PACKAGE_DIR / 'weights' / 'pix2voxpp_f_synthetic.pth'
NUM_CAMERAS = 3
# The wrist scene's key frames: three views a second apart (30 degrees of the rig's 12 s orbit).
WRIST_VIEWS = 3
WRIST_VIEW_INTERVAL_S = 1.0


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

    def rig_overrides(self) -> dict[str, object]:
        """Return :attr:`rig_parameters` as values (YAML, as ``-p name:=value`` reads them)."""
        import yaml
        pairs = (p.partition(':=') for p in self.rig_parameters)
        return {name: yaml.safe_load(text) for name, _, text in pairs}


def demo_setup(scene: str = 'plain', *, masks: bool = True,
               compressed: bool = False) -> DemoSetup:
    """Return the rig and node overrides of a scene; plain without them is today's demo.

    :raises ValueError: unknown scene.
    """
    if scene not in SCENES:
        raise ValueError(f'scene must be one of {", ".join(SCENES)}, got {scene!r}')
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
    if masks:
        topics = ', '.join(f"'{mask_topic(i)}'" for i in range(cameras))
        node.append(f'mask_topics:=[{topics}]')
    # A moving camera's first clouds of an object still hold key frames of the one before:
    # score only clouds whose key frames can all be of the object.
    settle_s = (WRIST_VIEWS - 1) * (WRIST_VIEW_INTERVAL_S + 0.5) if scene == 'wrist' else 0.0
    return DemoSetup(scene=scene, masks=masks, compressed=compressed, cameras=cameras,
                     settle_s=settle_s, rig_parameters=tuple(rig), node_parameters=tuple(node))
