"""The reconstruction node's parameter schema: every parameter, its checks, one frozen config.

Every parameter has a default, a description and a check in :data:`PARAMETERS` (a table of
:class:`ParamSpec`, the form any node's parameters can take); :func:`find_problems` gives every
reason a set of values is refused, and :func:`config_from_values` reads them into
:class:`NodeConfig`, which the core gets (via :meth:`NodeConfig.view_buffer_config`). Pure
Python, no rclpy: the node declares these with :mod:`pix2voxpp_ros.ros.params`, ``pix2voxpp-bag``
reads them from the node's YAML file offline. ``config/pix2voxpp.yaml`` lists exactly these names
(a test checks it).

Values are type-checked here, not by rclpy (the node declares them with dynamic typing), so a
YAML file saying ``object_size_m: 1`` (an integer) or ``camera_rois: []`` works and a wrongly
typed value is refused with a readable reason instead of a declaration exception.
"""

from __future__ import annotations

import array
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from . import param_checks as checks
from .backends import BACKENDS
from .calibration import PLACEMENT_MODES, PlacementSettings
from .errors import Pix2VoxError
from .geometry import POSE_NUMBERS
from .inference import PRECISION_CHOICES
from .masks import MASK_MODES
from .limits import (DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT, MAX_OBJECT_SIZE_M,
                     MAX_THREADS, MAX_VIEWS, short_repr)
from .preprocess import Roi
from .views import ViewBufferConfig

TRIGGERS = ('auto', 'service')
RELIABILITIES = ('best_effort', 'reliable')
TRANSPORTS = ('raw', 'compressed')
# Longest string and list a value may be: a path (PATH_MAX) and 4 ROI values for MAX_VIEWS
# cameras; longer ones are refused before anything walks them.
MAX_STRING_CHARS = 4096
MAX_LIST_ITEMS = 4 * MAX_VIEWS


class NodeConfigError(Pix2VoxError, ValueError):
    """The parameters do not form a valid configuration; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__('; '.join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, kind of value, description and an optional value check.

    :param kind: ``str``, ``float``, ``int``, ``bool``, ``str_list``, ``int_list`` or
        ``float_list``.
    :param dynamic: may change while the node is configured (else only while unconfigured).
    :param check: returns a reason when the (type-checked) value is invalid, else None.
    """

    name: str
    default: Any
    kind: str
    description: str
    constraints: str = ''
    dynamic: bool = False
    check: Optional[Callable[[Any], Optional[str]]] = None

    def coerce(self, value: Any) -> tuple[Any, Optional[str]]:
        """Type-check one parameter value and convert it to its canonical Python type.

        Integers are accepted for floats; an unset or empty list (YAML ``[]``) is an empty tuple.

        :returns: ``(value, None)`` or ``(None, reason)``.
        """
        kind = self.kind
        if kind in ('str_list', 'int_list', 'float_list'):
            if value is None:
                return (), None
            if not isinstance(value, (list, tuple, array.array)):  # rclpy hands arrays over too
                return None, f'must be a list, got {short_repr(value)}'
            if len(value) > MAX_LIST_ITEMS:
                return None, f'holds {len(value)} items, more than {MAX_LIST_ITEMS}'
            item_type = {'str_list': str, 'int_list': int}.get(kind, float)
            accepted = (int, float) if item_type is float else item_type  # ints for floats
            if any(not isinstance(v, accepted) or isinstance(v, bool) for v in value):
                return None, (f'must be a list of {item_type.__name__}s, got '
                              f'{short_repr(list(value))}')
            if item_type is str and any(len(v) > MAX_STRING_CHARS for v in value):
                return None, f'holds a string longer than {MAX_STRING_CHARS} characters'
            if item_type is float and not all(math.isfinite(v) for v in value):
                return None, f'must hold finite numbers, got {short_repr(list(value))}'
            return tuple(float(v) for v in value) if item_type is float else tuple(value), None
        if value is None:
            return None, 'is not set'
        if kind == 'bool':
            return (value, None) if isinstance(value, bool) else (None, f'must be true or false, '
                                                                        f'got {short_repr(value)}')
        if kind == 'str':
            if not isinstance(value, str):
                return None, f'must be a string, got {short_repr(value)}'
            if len(value) > MAX_STRING_CHARS:
                return None, (f'is {len(value)} characters long, more than {MAX_STRING_CHARS}: '
                              f'{short_repr(value)}')
            return value, None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f'must be a number, got {short_repr(value)}'
        if kind == 'int':
            return (value, None) if isinstance(value, int) else (None, f'must be an integer, '
                                                                       f'got {short_repr(value)}')
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if not math.isfinite(number):
            return None, f'must be finite, got {short_repr(value)}'
        return number, None

    def problem(self, value: Any) -> Optional[str]:
        """Why ``value`` is invalid for this parameter on its own (type, then check), or None."""
        value, reason = self.coerce(value)
        if reason is None and self.check is not None:
            reason = self.check(value)
        return reason


_DAY = '<= 86400 (a day)'
_DURATION = f'>= 0, {_DAY}'

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('weights', '', 'str',
              "Pix2Vox++ checkpoint file (.pth): the authors' release file or a project "
              'checkpoint. Loaded at configure.', 'an existing file', check=checks.check_weights),
    ParamSpec('camera_topics', ['camera/image_raw'], 'str_list',
              'sensor_msgs/Image topics, one per camera; each contributes its newest frame. '
              'A single topic means one moving camera (see views_per_reconstruction).',
              'at least one, no duplicates', check=checks.check_topics),
    ParamSpec('trigger', 'auto', 'str',
              "'auto': reconstruct whenever a new complete view set exists (at most max_rate_hz); "
              "'service': only when ~/reconstruct is called.", 'auto or service',
              check=checks.one_of(TRIGGERS)),
    ParamSpec('min_views', 0, 'int',
              'Several cameras: cameras with fresh frames within sync_slop_s needed for a '
              'reconstruction; 0 means all cameras.', '0 .. number of cameras',
              check=checks.at_least(0)),
    ParamSpec('views_per_reconstruction', 3, 'int',
              'One moving camera: key frames per reconstruction.', f'1 .. {MAX_VIEWS}',
              check=checks.between(1, MAX_VIEWS, 'the network was trained with up to 20 views; '
                                   'each more costs memory, none adds accuracy')),
    ParamSpec('min_view_interval_s', 0.5, 'float',
              'One moving camera: least time between two key frames, seconds.', _DURATION,
              check=checks.duration()),
    ParamSpec('sync_slop_s', 0.1, 'float',
              'Several cameras: largest stamp difference between the frames of one set, '
              'seconds.', _DURATION, check=checks.duration()),
    ParamSpec('max_frame_age_s', 2.0, 'float',
              'Frames older than this (node clock minus header stamp) are discarded, seconds.',
              f'> 0, {_DAY}', check=checks.duration(positive=True)),
    ParamSpec('future_tolerance_s', 0.5, 'float',
              'Frames stamped more than this ahead of the node clock are dropped, seconds.',
              _DURATION, check=checks.duration()),
    ParamSpec('max_rate_hz', 10.0, 'float',
              'Most reconstructions per second; 0 means no limit. Changeable while running.',
              '0, or one a day (1.16e-05) .. 1e6', dynamic=True, check=checks.check_rate),
    ParamSpec('frame_id', 'object', 'str',
              'placement canonical: frame of the outputs, the object frame you place with TF '
              '(the grid centred on its origin, z up); placement calibrated: the TF frame the '
              'node broadcasts for the placed object in fixed_frame.', 'non-empty',
              check=checks.non_empty),
    ParamSpec('object_size_m', 0.5, 'float',
              'Edge of the reconstructed cube in metres (voxel size = object_size_m / 32, or '
              '/ 128 with 128³ weights).',
              f'> 0, <= {MAX_OBJECT_SIZE_M:g}',
              check=lambda v: 'must be > 0' if not v > 0 else checks.between(
                  0.0, MAX_OBJECT_SIZE_M, 'a 32-voxel grid says nothing of larger things')(v)),
    ParamSpec('threshold', -1.0, 'float',
              'Occupancy probability at or above which a voxel is published; negative means the '
              "weights' recommended value (0.3 for the released weights). Changeable while "
              'running.', '(0, 1) or negative', dynamic=True, check=checks.check_threshold),
    ParamSpec('device', 'auto', 'str',
              "Inference device: 'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.",
              'auto, cpu, cuda, cuda:N', check=checks.check_device),
    ParamSpec('precision', 'fp32', 'str',
              'fp32, fp16 (CUDA only; fp32 on the CPU), bf16, or auto (bf16 where the hardware '
              'has it and bf16 was measured to keep the results, else fp32).',
              'fp32, fp16, bf16 or auto', check=checks.one_of(PRECISION_CHOICES)),
    ParamSpec('backend', 'auto', 'str',
              "Inference backend: 'torch' (PyTorch), 'openvino' (CPU only) or 'auto' (OpenVINO "
              'on the CPU when installed, else PyTorch); an unusable backend logs one line and '
              'falls back to PyTorch.', 'auto, torch or openvino', check=checks.one_of(BACKENDS)),
    ParamSpec('num_threads', 0, 'int',
              'CPU threads for PyTorch; 0 keeps the PyTorch default.', f'0 .. {MAX_THREADS}',
              check=checks.between(0, MAX_THREADS, 'no robot computer has more hardware '
                                   'threads; thousands make libgomp fail')),
    ParamSpec('qos_reliability', 'best_effort', 'str',
              "Image subscriptions: 'best_effort' (sensor-data QoS, the camera default) or "
              "'reliable'.", 'best_effort or reliable', check=checks.one_of(RELIABILITIES)),
    ParamSpec('image_transport', 'raw', 'str',
              "'raw': sensor_msgs/Image on each of camera_topics; 'compressed': "
              'sensor_msgs/CompressedImage (JPEG or PNG) on <topic>/compressed, as '
              "image_transport's compressed plugin names it.", 'raw or compressed',
              check=checks.one_of(TRANSPORTS)),
    ParamSpec('camera_rois', [], 'int_list',
              'Optional region of interest per camera, flat x, y, width, height in pixels, '
              '4 integers per camera in camera_topics order; empty = whole images; width or '
              'height 0 = whole image for that camera.', '0 or 4 per camera, each within +-32768',
              check=checks.check_rois),
    ParamSpec('roi_margin', -1.0, 'float',
              "Fraction added to the longer side of a region of interest or of a mask's "
              'bounding box before cropping; negative: as much as makes the object fill the crop '
              'as objects fill the training renderings (0.75: they fill 57%).', '<= 10',
              check=checks.check_roi_margin),
    ParamSpec('mask_topics', [], 'str_list',
              'Object masks from a segmenter, sensor_msgs/Image mono8 (nonzero on the object), '
              'one topic per camera in camera_topics order, each mask stamped like its frame; '
              'empty = no masks. A frame is cropped around its mask and everything outside it '
              'becomes background.', '0 or one per camera, no duplicates',
              check=checks.check_no_duplicates),
    ParamSpec('mask_timeout_s', 0.5, 'float',
              'How long a frame waits for its mask, seconds; frames without one are dropped '
              '(no_mask).', _DURATION, check=checks.duration()),
    ParamSpec('mask_mode', 'binary', 'str',
              "'binary': each mask marks one object (mono8, nonzero on it); 'instances': each "
              'mask is a label image (mono8 or mono16, 0 background, k > 0 instance k of that '
              'camera, ids per camera): every object seen by min_views cameras is matched '
              'across the cameras, reconstructed and placed (needs placement calibrated); '
              '~/occupancy then carries every object with an instance field, and ~/objects '
              'their poses.', 'binary or instances', check=checks.one_of(MASK_MODES)),
    ParamSpec('max_image_pixels', DEFAULT_MAX_IMAGE_PIXELS, 'int',
              'Most pixels (width x height) a frame or mask may declare; larger ones are '
              'dropped (too_large) before they are decoded or copied. The default, 50 MP, is '
              'six 4K frames.', f'1 .. {MAX_IMAGE_PIXELS_LIMIT}',
              check=checks.between(1, MAX_IMAGE_PIXELS_LIMIT, "OpenCV's own decoder limit")),
    ParamSpec('placement', 'canonical', 'str',
              "'canonical': outputs in frame_id at object_size_m, placed by the user (a static "
              "transform); 'calibrated': the object's position, heading and metric size in "
              "fixed_frame from camera_info, each frame's camera pose (TF at its stamp, or "
              'camera_poses) and the masks (needs mask_topics); frame_id is then broadcast as '
              "the object's TF frame.", 'canonical or calibrated',
              check=checks.one_of(PLACEMENT_MODES)),
    ParamSpec('camera_info_topics', [], 'str_list',
              'placement calibrated: sensor_msgs/CameraInfo topics, one per camera in '
              'camera_topics order; empty = <namespace of each image topic>/camera_info, as '
              'image_transport pairs them.', '0 or one per camera, no duplicates',
              check=checks.check_no_duplicates),
    ParamSpec('fixed_frame', 'base_link', 'str',
              'placement calibrated: the frame results are published in (REP 103: z up; '
              'objects stand upright on a support, their canonical up along +z).', 'non-empty',
              check=checks.non_empty),
    ParamSpec('tf_timeout_s', 0.1, 'float',
              "placement calibrated: how long to wait for a camera's pose at a frame's stamp; "
              'frames without one are left out (no_transform).', '0 .. 10',
              check=checks.between(0.0, 10.0, 'a pose later than that is no live pose')),
    ParamSpec('camera_poses', [], 'float_list',
              'placement calibrated without TF (or for a fixed camera cell): x y z qx qy qz qw '
              "of each camera's optical frame in fixed_frame, 7 numbers per camera; empty = TF.",
              '0 or 7 per camera, rigid', check=checks.check_camera_poses),
    ParamSpec('min_placement_iou', 0.5, 'float',
              "placement calibrated: a placement whose silhouettes match the masks' with a "
              'lower mean IoU is not published (placement_failed).', '0 .. 1',
              check=checks.between(0.0, 1.0, 'an IoU')),
    ParamSpec('carve', False, 'bool',
              'placement calibrated: empty the voxels that a view sees outside its mask '
              '(silhouette carving); off by default: where another object hides part of the '
              'target its mask misses that part, and carving removes it (measured: mean world '
              'IoU 0.632 without, 0.585 with, tabletop scene).'),
    ParamSpec('collision_objects', False, 'bool',
              'mask_mode instances: also publish each object as a moveit_msgs/CollisionObject '
              '(its surface mesh in fixed_frame, a stable id per tracked object; ADD when new '
              'or reshaped, MOVE, REMOVE when it left) on collision_object_topic, where '
              'moveit_msgs imports.'),
    ParamSpec('collision_object_topic', '/collision_object', 'str',
              "mask_mode instances with collision_objects: the topic (MoveIt's planning scene "
              'monitor listens on /collision_object).', 'a topic name',
              check=checks.non_empty),
    ParamSpec('autostart', True, 'bool',
              'Configure and activate at startup (for ros2 run); false leaves the node '
              'unconfigured for a lifecycle manager.'),
)

PARAMETER_NAMES = tuple(spec.name for spec in PARAMETERS)
DYNAMIC_PARAMETERS = frozenset(spec.name for spec in PARAMETERS if spec.dynamic)
_SPECS = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class NodeConfig:
    """The node's configuration, read once per configure from the parameters.

    Field meanings are the descriptions in :data:`PARAMETERS`; ``camera_rois`` holds one entry
    per camera (None for the whole image).
    """

    weights: str
    camera_topics: tuple[str, ...]
    trigger: str
    min_views: int
    views_per_reconstruction: int
    min_view_interval_s: float
    sync_slop_s: float
    max_frame_age_s: float
    future_tolerance_s: float
    max_rate_hz: float
    frame_id: str
    object_size_m: float
    threshold: float
    device: str
    precision: str
    backend: str
    num_threads: int
    qos_reliability: str
    image_transport: str
    camera_rois: tuple[Optional[Roi], ...]
    roi_margin: float
    mask_topics: tuple[str, ...]
    mask_timeout_s: float
    mask_mode: str
    max_image_pixels: int
    placement: str
    camera_info_topics: tuple[str, ...]
    fixed_frame: str
    tf_timeout_s: float
    camera_poses: tuple[float, ...]
    min_placement_iou: float
    carve: bool
    collision_objects: bool
    collision_object_topic: str
    autostart: bool

    @property
    def calibrated(self) -> bool:
        """Whether results are placed in ``fixed_frame`` (``placement: calibrated``)."""
        return self.placement == 'calibrated'

    @property
    def instances(self) -> bool:
        """Whether masks are label images of every object (``mask_mode: instances``)."""
        return self.mask_mode == 'instances'

    @property
    def object_min_views(self) -> int:
        """Fewest cameras (key frames of a moving camera: 2) an object must be matched in."""
        return 2 if self.moving_camera else self.view_buffer_config().required_views

    def info_topics(self) -> tuple[str, ...]:
        """Each camera's CameraInfo topic: given, or beside its image topic."""
        if self.camera_info_topics:
            return self.camera_info_topics
        return tuple(default_info_topic(topic) for topic in self.camera_topics)

    def placement_settings(self) -> PlacementSettings:
        """Return the core's placement settings for these parameters."""
        return PlacementSettings(min_placement_iou=self.min_placement_iou, carve=self.carve,
                                 tf_timeout_s=self.tf_timeout_s)

    @property
    def moving_camera(self) -> bool:
        """One camera topic: key frames of one moving camera make a view set."""
        return len(self.camera_topics) == 1

    def describe_mode(self) -> str:
        """Say how view sets are made, for the log."""
        objects = ', every object of instance label images' if self.instances else ''
        if self.moving_camera:
            return (f'one moving camera, {self.views_per_reconstruction} key frames '
                    f'{self.min_view_interval_s} s apart{objects}')
        return (f'{len(self.camera_topics)} cameras, at least '
                f'{self.view_buffer_config().required_views} within {self.sync_slop_s} s'
                f'{objects}')

    def view_buffer_config(self) -> ViewBufferConfig:
        """Return the core's view-buffer configuration for these parameters."""
        return ViewBufferConfig(
            num_cameras=len(self.camera_topics), min_views=self.min_views,
            views_per_reconstruction=self.views_per_reconstruction,
            min_view_interval_s=self.min_view_interval_s, sync_slop_s=self.sync_slop_s,
            max_frame_age_s=self.max_frame_age_s, future_tolerance_s=self.future_tolerance_s)


def default_info_topic(image_topic: str) -> str:
    """``/rig/camera_0/image_raw`` -> ``/rig/camera_0/camera_info`` (image_transport's pairing)."""
    namespace, _, _ = image_topic.rstrip('/').rpartition('/')
    return f'{namespace}/camera_info' if namespace else 'camera_info'


def coerce(name: str, value: Any) -> tuple[Any, Optional[str]]:
    """Type-check one parameter value and convert it to its canonical Python type.

    :returns: ``(value, None)`` or ``(None, reason)`` (see :meth:`ParamSpec.coerce`).
    """
    return _SPECS[name].coerce(value)


def check_value(name: str, value: Any) -> Optional[str]:
    """Return why ``value`` is invalid for parameter ``name`` on its own, or None."""
    if name not in _SPECS:
        return f"'{name}' is not a parameter of this node"
    reason = _SPECS[name].problem(value)
    return None if reason is None else f'{name} {reason}'


def find_problems(values: Mapping[str, Any]) -> list[str]:
    """Every reason why ``values`` (one per parameter) is not a valid configuration."""
    problems = [p for p in (check_value(name, values.get(name)) for name in PARAMETER_NAMES)
                if p is not None]
    if problems:
        return problems
    config = _build(values)
    cameras = len(config.camera_topics)
    if len(values.get('camera_rois') or ()) not in (0, 4 * cameras):
        problems.append(f'camera_rois has {len(values.get("camera_rois") or ())} values but '
                        f'camera_topics lists {cameras} camera(s): give 4 per camera or none')
    if len(config.mask_topics) not in (0, cameras):
        problems.append(f'mask_topics lists {len(config.mask_topics)} topic(s) but camera_topics '
                        f'{cameras}: give one mask topic per camera or none')
    if len(config.camera_info_topics) not in (0, cameras):
        problems.append(f'camera_info_topics lists {len(config.camera_info_topics)} topic(s) '
                        f'but camera_topics {cameras}: give one per camera or none')
    if config.camera_poses and len(config.camera_poses) != POSE_NUMBERS * cameras:
        problems.append(f'camera_poses has {len(config.camera_poses)} numbers but '
                        f'camera_topics lists {cameras} camera(s): give {POSE_NUMBERS} per '
                        'camera (x y z qx qy qz qw) or none')
    if config.calibrated and not config.mask_topics:
        problems.append('placement calibrated needs mask_topics: the object is placed by its '
                        'masks')
    if config.instances and not (config.calibrated and config.mask_topics):
        problems.append('mask_mode instances needs placement calibrated and mask_topics: '
                        'objects are matched across the cameras by their calibration')
    if config.min_views > cameras:
        problems.append(f'min_views {config.min_views} exceeds the {cameras} camera(s) in '
                        'camera_topics')
    else:
        try:
            config.view_buffer_config()
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def change_problem(changes: Mapping[str, Any], *, current: Mapping[str, Any],
                   state: str) -> Optional[str]:
    """Why the node refuses to set ``changes`` now, or None when it accepts them.

    Parameters that are not dynamic change only while unconfigured; a change must not add a
    problem to those ``current`` already has (so a node with a bad parameter can be repaired one
    parameter at a time).
    """
    fixed = sorted(name for name in changes if name not in DYNAMIC_PARAMETERS)
    if fixed and state != 'unconfigured':
        return (f'{", ".join(fixed)} can only change while the node is unconfigured (it is '
                f'{state}): deactivate, clean up, set, then configure again; '
                f'{", ".join(sorted(DYNAMIC_PARAMETERS))} change any time')
    known = set(find_problems(current))
    new = [p for p in find_problems({**current, **changes}) if p not in known]
    return '; '.join(new) if new else None


def _build(values: Mapping[str, Any]) -> NodeConfig:
    typed = {name: coerce(name, values.get(name))[0] for name in PARAMETER_NAMES}
    flat = typed.pop('camera_rois')
    rois: list[Optional[Roi]] = []
    for i in range(0, len(flat), 4):
        x, y, w, h = flat[i:i + 4]
        rois.append((x, y, w, h) if w > 0 and h > 0 else None)
    typed['weights'] = os.path.expanduser(typed['weights'])
    return NodeConfig(camera_rois=tuple(rois) or (None,) * len(typed['camera_topics']), **typed)


def config_from_values(values: Mapping[str, Any]) -> NodeConfig:
    """Build the configuration from one value per parameter.

    :raises NodeConfigError: with every problem :func:`find_problems` reports.
    """
    problems = find_problems(values)
    if problems:
        raise NodeConfigError(problems)
    return _build(values)
