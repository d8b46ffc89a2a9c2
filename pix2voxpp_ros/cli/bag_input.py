"""``pix2voxpp-bag``'s input side: the node's configuration, the topics, the frame pipeline.

:func:`load_config` merges the node's parameters file and the command line into its
:class:`~pix2voxpp_ros.core.node_config.NodeConfig`; :func:`check_inputs` finds its topics in the
bag. :class:`RecordedSets` reads the bag in recorded order and feeds the core's
:class:`~pix2voxpp_ros.core.offline.OfflineAssembler` (the node's frame intake plus its rate limit
on recorded time) with decoded frames and masks; :func:`produce` preprocesses the view sets that
come out once per frame and groups them into batches. With ``mask_mode: instances`` the masks
are instance label images (mono8 or mono16), checked on arrival as the node checks them, and the
sets go unprepared to :mod:`.bag_objects` (each object is cropped on its own). The recorded
ground truth (``--truth-topic``) becomes voxels here, once per message. Reading uses
:mod:`..ros.bag_io` (``rosbags``, no ROS); images and masks are converted by
:mod:`..ros.conversions`' own numpy path, the node's validation.

With ``placement: calibrated`` the recording's ``camera_info`` topics go into the core's
:class:`~pix2voxpp_ros.core.calibration.CameraInfos` (each frame is checked as the node checks
it: ``no_camera_info``, ``bad_camera_info``) and its ``/tf`` and ``/tf_static`` into a
:class:`~pix2voxpp_ros.core.transforms.TransformTree`, in recorded order; when a view set is
complete its cameras' poses are looked up at their stamps (or taken from ``camera_poses``) and
travel with the set, which :mod:`.bag` places after inference with the node's
:func:`~pix2voxpp_ros.core.calibration.place_view_set`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import yaml

from ..core.calibration import (MAX_CAMERA_INFO_BYTES, CameraInfos, FixedPoses, PoseSource)
from ..core.clock import NS_PER_S, seconds_to_ns
from ..core.clouds import cloud_points
from ..core.drops import (CALIBRATION_DROP_REASONS, MASK_DROP_REASONS, OBJECT_DROP_REASONS,
                          FrameDrop, bad_image_drop, encoding_drop, undecodable_drop)
from ..core.errors import Pix2VoxError
from ..core.geometry import PoseError
from ..core.inference import Reconstructor
from ..core.intake import frame_preparer
from ..core.masks import MaskedFrames
from ..core.metrics import cloud_to_voxels
from ..core.node_config import (PARAMETER_NAMES, PARAMETERS, NodeConfig, NodeConfigError,
                                config_from_values)
from ..core.offline import Batcher, OfflineAssembler, PreparedSet, PreparedViews
from ..core.params_file import load_yaml, read_params_file
from ..core.limits import MAX_FRAME_ID_CHARS, shorten
from ..core.preprocess import ImageInputError, MaskError
from ..core.transforms import (MAX_TF_MESSAGE_BYTES, RecordedPoses, ResolvedPoses,
                               TransformTree)
from ..core.views import Frame, ViewSet
from ..ros.bag_io import (CAMERA_INFO_TYPE, CLOUD_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE,
                          STRING_TYPE, TF_TYPE, BagError, BagReader)
from ..ros.conversions import (ImageConversionError, UnsupportedEncodingError, compressed_topic,
                               frame_to_array, labels_to_array, mask_to_array)
from ..ros.tf_poses import transform_to_matrix

PROG = 'pix2voxpp-bag'
TF_TOPICS = ('/tf', '/tf_static')
# Complete sets that may wait for TF at once: their frames are the view buffer's anyway; a
# recording whose receive times stand still cannot make them pile up.
MAX_WAITING_SETS = 16


class BagUsageError(Pix2VoxError):
    """Arguments or parameters that cannot work; nothing was read yet."""


@dataclass
class BagRunStats:
    """What happened during one ``pix2voxpp-bag`` run, for its summary."""

    frames_read: Counter = field(default_factory=Counter)  # per topic
    frames_dropped: Counter = field(default_factory=Counter)  # per DropReason
    sets_failed: Counter = field(default_factory=Counter)  # per kind: image, inference
    sets_found: int = 0
    sets_rate_dropped: int = 0
    reconstructed: int = 0
    passes: int = 0
    model_s: float = 0.0
    views: Counter = field(default_factory=Counter)  # reconstructions per view count
    masks_undecodable: int = 0
    camera_frames: int = 0  # camera messages read
    frames_decoded: int = 0  # of them, those that became frames (before the view buffer)
    tf: Counter = field(default_factory=Counter)  # recorded TF: messages, transforms, refused
    infos_bad: int = 0  # camera_info messages undecodable or too large (bad_camera_info)
    # (stamp ns, ObjectPose, silhouette IoU[, object id with mask_mode instances])
    placed: list = field(default_factory=list)
    objects_published: int = 0  # mask_mode instances: objects written
    objects_dropped: Counter = field(default_factory=lambda: Counter(
        dict.fromkeys(OBJECT_DROP_REASONS, 0)))  # left out, per reason
    object_ids: set = field(default_factory=set)  # every id written
    warned: set = field(default_factory=set)

    def warn_once(self, key: Any, message: str) -> None:
        """Print ``message`` the first time ``key`` comes."""
        if key not in self.warned:
            self.warned.add(key)
            print(f'{PROG}: {message}', file=sys.stderr)


def resolve_topic(name: str, node_name: str) -> str:
    """Resolve a topic name as a node called ``node_name`` in the root namespace would."""
    if name.startswith('~'):
        return f'/{node_name}{name[1:]}'
    return name if name.startswith('/') else f'/{name}'


@dataclass(frozen=True)
class Inputs:
    """The bag's topics the node would subscribe to, resolved, and what their messages are."""

    cameras: list[str]  # one per camera; <camera topic>/compressed with image_transport compressed
    masks: list[str]  # mask_topics, one per camera, or none
    compressed: bool
    image_type: str
    truth: Optional[str] = None  # --truth-topic
    names: Optional[str] = None  # its sibling .../object (object names by stamp), when recorded
    infos: list[str] = field(default_factory=list)  # placement calibrated: camera_info topics
    tf: list[str] = field(default_factory=list)  # /tf and /tf_static where recorded and needed


def resolve_inputs(config: NodeConfig, node_name: str) -> Inputs:
    """Return the topics a node called ``node_name`` would read with ``config``."""
    compressed = config.image_transport == 'compressed'
    cameras = [resolve_topic(t, node_name) for t in config.camera_topics]
    return Inputs(cameras=[compressed_topic(t) for t in cameras] if compressed else cameras,
                  masks=[resolve_topic(t, node_name) for t in config.mask_topics],
                  compressed=compressed,
                  image_type=COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE,
                  infos=[resolve_topic(t, node_name) for t in config.info_topics()]
                  if config.calibrated else [])


@dataclass(frozen=True, eq=False)
class PlacingSet(PreparedSet):
    """A prepared set with its cameras' poses, looked up when it was complete."""

    poses: Optional[ResolvedPoses] = None


@dataclass
class Truth:
    """Recorded ground truth: occupied voxels (ROS axes) and object names by stamp."""

    grids: dict = field(default_factory=dict)  # stamp ns -> (32, 32, 32) bool
    names: dict = field(default_factory=dict)  # stamp ns -> object name


def _given_values(args: argparse.Namespace) -> dict[str, Any]:
    """Return the parameters the user gave: the file, then ``-p``, then the named options."""
    given: dict[str, Any] = {}
    if args.params is not None:
        given.update(read_params_file(args.params, node_name=args.node_name))
    for item in args.param:
        name, sep, text = item.partition(':=')
        if not sep or not name:
            raise BagUsageError(f'-p {item}: expected NAME:=VALUE')
        try:
            given[name] = load_yaml(text)  # safe YAML without aliases: bounded
        except yaml.YAMLError as exc:
            raise BagUsageError(f'-p {item}: the value is not YAML ({exc})') from exc
    named = {'weights': args.weights, 'threshold': args.threshold, 'device': args.device,
             'num_threads': args.num_threads,
             'camera_topics': list(args.camera_topics) if args.camera_topics else None}
    given.update({k: v for k, v in named.items() if v is not None})
    return given


def load_config(args: argparse.Namespace) -> tuple[NodeConfig, list[str]]:
    """Merge defaults, the parameters file and the command line into the node's configuration.

    :returns: ``(NodeConfig, notes)``; notes are lines for the user (ignored names and such).
    :raises BagUsageError: bad ``-p`` syntax or invalid parameters.
    :raises ParamsFileError: an unreadable parameters file.
    """
    values = {spec.name: spec.default for spec in PARAMETERS}
    notes = []
    given = _given_values(args)
    unknown = sorted(set(given) - set(PARAMETER_NAMES))
    if unknown:
        notes.append(f'ignored (not parameters of the node): {", ".join(unknown)}')
    values.update({k: v for k, v in given.items() if k in PARAMETER_NAMES})
    if values['trigger'] == 'service':
        notes.append('trigger: service has no calls in a recording; every new view set is '
                     'reconstructed as with trigger: auto')
        values['trigger'] = 'auto'
    if values['mask_mode'] == 'instances' and args.truth_topic:
        notes.append(f'--truth-topic {args.truth_topic} is ignored: one truth cloud per set '
                     'cannot score several objects (mask_mode instances)')
    try:
        config = config_from_values(values)
    except NodeConfigError as exc:
        raise BagUsageError('invalid parameters: ' + '; '.join(exc.problems)) from exc
    return config, notes


def check_inputs(reader: BagReader, config: NodeConfig, args: argparse.Namespace) -> Inputs:
    """Return the topics to read, checked against the bag.

    :raises BagError: a topic is missing or has another type.
    """
    inputs = resolve_inputs(config, args.node_name)
    for topic in inputs.cameras:
        try:
            reader.require(topic, inputs.image_type, role='camera topic')
        except BagError as exc:  # the usual slip: the other transport was recorded
            other = topic.rsplit('/', 1)[0] if inputs.compressed else compressed_topic(topic)
            if other not in reader.topics:
                raise
            raise BagError(f'{exc} (the bag has {other}: set image_transport '
                           f'{"raw" if inputs.compressed else "compressed"})') from None
    for topic in inputs.masks:
        reader.require(topic, IMAGE_TYPE, role='mask topic')
    for topic in inputs.infos:
        reader.require(topic, CAMERA_INFO_TYPE, role='camera_info topic (placement calibrated)')
    if config.calibrated and not config.camera_poses:
        tf = [t for t in TF_TOPICS if t in reader.topics]
        if not tf:
            raise BagError(f'{reader.path}: placement calibrated needs camera poses: the bag '
                           'has no /tf or /tf_static; record them, or give camera_poses')
        for topic in tf:
            reader.require(topic, TF_TYPE, role='TF topic')
        inputs = dataclasses.replace(inputs, tf=tf)
    if not args.truth_topic or config.instances:
        return inputs
    reader.require(args.truth_topic, CLOUD_TYPE, role='truth topic')
    sibling = args.truth_topic.rsplit('/', 1)[0] + '/object'
    return dataclasses.replace(inputs, truth=args.truth_topic, names=sibling if reader.topics.get(
        sibling) == STRING_TYPE else None)


def count_drops(stats: BagRunStats, inputs: Inputs, drops: Sequence[FrameDrop]) -> None:
    """Count dropped frames by reason; warn once per kind, worded as the node logs them."""
    for drop in drops:  # buffer drops are only counted
        stats.frames_dropped[drop.reason] += 1
        if drop.frame is None or drop.reason in MASK_DROP_REASONS + CALIBRATION_DROP_REASONS:
            topic = inputs.cameras[drop.camera]
            mask_topic = inputs.masks[drop.camera] if inputs.masks else None
            stats.warn_once((topic,) + drop.log_key, drop.message(topic, mask_topic=mask_topic))


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


class _Reading:
    """One pass over the bag: the recorded clock, the intake and what each message does."""

    def __init__(self, reader: BagReader, config: NodeConfig, inputs: Inputs, *, clock: str,
                 stats: BagRunStats, truth: Optional[Truth]) -> None:
        self.reader, self.config, self.inputs = reader, config, inputs
        self.receive_clock = clock == 'receive'
        self.stats, self.truth = stats, truth
        masks = MaskedFrames(len(inputs.cameras), timeout_s=config.mask_timeout_s,
                             instances=config.instances) if inputs.masks else None
        self.assembler = OfflineAssembler(config.view_buffer_config(),
                                          max_rate_hz=config.max_rate_hz, masks=masks)
        self.camera_of = {topic: i for i, topic in enumerate(inputs.cameras)}
        self.mask_of = {topic: i for i, topic in enumerate(inputs.masks)}
        self.info_of = {topic: i for i, topic in enumerate(inputs.infos)}
        self.infos = CameraInfos(len(inputs.cameras)) if config.calibrated else None
        self.tree = TransformTree()
        self.poses: Optional[PoseSource] = None
        if config.calibrated:
            self.poses = FixedPoses(config.camera_poses, len(inputs.cameras)) \
                if config.camera_poses else RecordedPoses(self.tree, config.fixed_frame)
        self.frames = 0  # camera messages read so far
        self.now_ns = 0  # the recorded clock: newest frame stamp (--clock receive: receive time)
        self.now_received_ns = 0  # receive time of the frame that last moved the header clock
        self.future_ns = seconds_to_ns(config.future_tolerance_s)

    def message(self, topic: str, received_ns: int, raw: Any) -> list[ViewSet]:
        """Handle one recorded message; return the view sets due after it."""
        self.stats.frames_read[topic] += 1
        if topic in self.camera_of:
            self.stats.camera_frames += 1
        if topic in self.mask_of:
            return self._mask(topic, received_ns, raw)
        if topic in self.camera_of:
            return self._frame(topic, received_ns, raw)
        if topic in self.info_of:
            self._info(topic, raw)
        elif topic in self.inputs.tf:
            self._tf(topic, raw)
        else:
            self._truth(topic, raw)
        return []

    def resolve(self, view_set: ViewSet) -> Optional[ResolvedPoses]:
        """Look the set's camera poses up now (placement calibrated), as the node's worker."""
        if self.poses is None:
            return None
        return ResolvedPoses(self.poses, view_set.frames, timeout_s=self.config.tf_timeout_s)

    def finish(self) -> list[ViewSet]:
        """End of the recording: frames still waiting for masks, the set waiting for its turn."""
        sets, drops = self.assembler.finish()
        self._count(drops)
        self.stats.sets_found = self.assembler.sets_found
        self.stats.sets_rate_dropped = self.assembler.sets_rate_dropped
        return sets

    def _count(self, drops: list[FrameDrop]) -> None:
        count_drops(self.stats, self.inputs, drops)

    def _frame(self, topic: str, received_ns: int, raw: Any) -> list[ViewSet]:
        self.frames += 1
        camera = self.camera_of[topic]
        try:
            msg = self.reader.decode(raw, self.inputs.image_type)
            image, encoding = frame_to_array(msg, compressed=self.inputs.compressed,
                                             backend='own',  # rosbags messages: the own path
                                             max_pixels=self.config.max_image_pixels)
        except BagError as exc:
            self._count([undecodable_drop(camera, exc)])
            return []
        except UnsupportedEncodingError:
            self._count([encoding_drop(camera, getattr(msg, 'encoding', ''))])
            return []
        except ImageConversionError as exc:
            self._count([bad_image_drop(camera, exc)])
            return []
        frame = Frame(camera=camera, stamp_ns=_stamp_ns(msg.header.stamp), image=image,
                      encoding=encoding,
                      frame_id=shorten(msg.header.frame_id, MAX_FRAME_ID_CHARS))
        self.stats.frames_decoded += 1
        self.now_ns = self._clock(frame.stamp_ns, received_ns)
        if self.infos is not None:  # as the node: checked before its mask and the buffer
            calibrated = self.infos.calibrate(frame)
            if isinstance(calibrated, FrameDrop):
                self._count([calibrated])
                return []
            frame = calibrated
        sets, drops = self.assembler.add(frame, now_ns=self.now_ns)
        self._count(drops)
        return sets

    def _clock(self, stamp_ns: int, received_ns: int) -> int:
        """Return "now" for a frame that arrives: the recorded clock, moved by a good frame.

        On the header clock a frame moves "now" to its stamp, unless the stamp is further
        ahead than ``future_tolerance_s`` of the clock plus the receive time passed since the
        clock last moved: a glitched stamp (a frame stamped in 2038) leaves the clock as it was,
        and the view buffer drops that frame as ``future``, as the node drops it.
        """
        if self.receive_clock:
            return max(self.now_ns, received_ns)
        if self.now_ns and stamp_ns > self.now_ns:
            expected = self.now_ns + max(0, received_ns - self.now_received_ns)
            if stamp_ns - expected > self.future_ns:
                return self.now_ns
        if stamp_ns > self.now_ns:
            self.now_received_ns = received_ns
        return max(self.now_ns, stamp_ns)

    def _mask(self, topic: str, received_ns: int, raw: Any) -> list[ViewSet]:
        try:
            msg = self.reader.decode(raw, IMAGE_TYPE)
        except BagError as exc:  # no stamp, no frame to drop: its frame will miss it
            self.stats.masks_undecodable += 1
            self.stats.warn_once(('undecodable', topic), f'skipping undecodable masks on '
                                 f'{topic}: {exc}')
            return []
        try:
            mask: np.ndarray | MaskError = self._mask_array(msg)
        except MaskError as exc:
            mask = exc
        stamp_ns = _stamp_ns(msg.header.stamp)
        if self.receive_clock:
            self.now_ns = arrival_ns = max(self.now_ns, received_ns)
        else:  # a mask cannot come before its stamp; a bad stamp must not age the frames
            arrival_ns = max(self.now_ns, stamp_ns)
        sets, drops = self.assembler.add_mask(self.mask_of[topic], stamp_ns, mask,
                                              now_ns=self.now_ns, wait_ns=arrival_ns)
        self._count(drops)
        return sets

    def _mask_array(self, msg: Any) -> np.ndarray:
        """Convert a recorded mask as the node does (a label image with mask_mode instances)."""
        limit = self.config.max_image_pixels
        # The own path: cv_bridge takes no rosbags message.
        convert = labels_to_array if self.config.instances else mask_to_array
        return convert(msg, backend='own', max_pixels=limit)

    def _info(self, topic: str, raw: Any) -> None:
        """Keep a camera's calibration; a broken message makes its frames bad_camera_info."""
        camera = self.info_of[topic]
        try:
            if len(raw) > MAX_CAMERA_INFO_BYTES:
                raise BagError(f'{len(raw)} bytes, more than the {MAX_CAMERA_INFO_BYTES} a '
                               'camera_info may have')
            msg = self.reader.decode(raw, CAMERA_INFO_TYPE)
            self.infos.update(camera, list(msg.k), int(msg.width), int(msg.height))
        except BagError as exc:
            self.stats.infos_bad += 1
            self.stats.warn_once(('info', topic), f'{topic}: unusable camera_info ({exc}); its '
                                 'frames are dropped as bad_camera_info until a good one')
            self.infos.update(camera, [], 0, 0)

    def _tf(self, topic: str, raw: Any) -> None:
        """Add a recorded TF message to the tree; refuse a huge or broken one."""
        tf = self.stats.tf
        tf['messages'] += 1
        if len(raw) > MAX_TF_MESSAGE_BYTES:
            tf['too_large'] += 1
            self.stats.warn_once(('tf large', topic), f'{topic}: skipping a TF message of '
                                 f'{len(raw)} bytes (at most {MAX_TF_MESSAGE_BYTES})')
            return
        try:
            msg = self.reader.decode(raw, TF_TYPE)
        except BagError as exc:
            tf['undecodable'] += 1
            self.stats.warn_once(('tf', topic), f'{topic}: skipping undecodable TF: {exc}')
            return
        static = topic == '/tf_static'
        for transform in msg.transforms:
            tf['transforms'] += 1
            header = transform.header
            reason = 'a loop, a name too long or a limit of the tree'
            try:
                pose = transform_to_matrix(transform.transform)
                stored = self.tree.add(header.frame_id, transform.child_frame_id,
                                       _stamp_ns(header.stamp), pose, static=static)
            except PoseError as exc:
                stored, reason = False, str(exc)
            if not stored:
                tf['refused'] += 1
                self.stats.warn_once(('tf refused', topic), f'{topic}: refusing a transform '
                                     f'{shorten(header.frame_id, 80)} -> '
                                     f'{shorten(transform.child_frame_id, 80)}: {reason}')

    def _truth(self, topic: str, raw: Any) -> None:
        try:
            if topic == self.inputs.truth:
                msg = self.reader.decode(raw, CLOUD_TYPE)
                grid = cloud_to_voxels(cloud_points(msg), self.config.object_size_m)
                self.truth.grids[_stamp_ns(msg.header.stamp)] = grid
            else:
                name, _, stamp = self.reader.decode(raw, STRING_TYPE).data.rpartition(' ')
                self.truth.names[int(stamp)] = name
        except (BagError, ValueError, KeyError) as exc:
            self.stats.warn_once(('truth', topic), f'skipping undecodable messages on {topic}: '
                                 f'{exc}')


class _PoseWait:
    """Complete sets waiting for their cameras' TF, at most ``tf_timeout_s`` of recorded time.

    The node's worker looks a set's camera poses up when it takes the set and waits up to
    ``tf_timeout_s`` for transforms that have not arrived. Offline a set waits here until all
    its poses are found in the transforms read so far, or until a message recorded more than
    ``tf_timeout_s`` after the message that completed it is read (then it goes with what was
    found: its frames without a pose are ``no_transform``). Sets leave in order; at most
    :data:`MAX_WAITING_SETS` wait (a recording whose receive times never advance).
    """

    def __init__(self, reading: _Reading) -> None:
        self._reading = reading
        self._wait_ns = seconds_to_ns(reading.config.tf_timeout_s)
        self._waiting: deque[tuple[ViewSet, int]] = deque()  # (set, deadline received ns)

    def release(self, received_ns: int, view_sets: Sequence[ViewSet] = (), *,
                final: bool = False) -> list[tuple[ViewSet, Optional[ResolvedPoses]]]:
        """Add new sets; return the sets, oldest first, whose poses are found or late.

        :param received_ns: the recorded receive time of the message being read.
        :param final: the recording ended: release every set.
        """
        waiting = self._waiting
        waiting.extend((view_set, received_ns + self._wait_ns) for view_set in view_sets)
        out = []
        while waiting:
            view_set, deadline = waiting[0]
            poses = self._reading.resolve(view_set)
            if (poses is not None and poses.missing and not final and received_ns <= deadline
                    and len(waiting) <= MAX_WAITING_SETS):
                break
            waiting.popleft()
            out.append((view_set, poses))
        return out


class RecordedSets:
    """The view sets of a recording, in recorded order, each with its cameras' poses.

    Iterating reads the bag once (on whatever thread iterates) through the node's steps:
    conversion (raw or compressed), with ``placement: calibrated`` the check of each frame's
    camera_info, with ``mask_topics`` the pairing with the mask of its stamp, then the view
    buffer; "now" is the recorded clock throughout. Placed sets carry their cameras' poses,
    looked up when the set is complete or up to ``tf_timeout_s`` later (None otherwise).

    :param clock: ``header`` (the newest stamp so far is "now") or ``receive`` (receive times).
    """

    def __init__(self, reader: BagReader, config: NodeConfig, inputs: Inputs, *, clock: str,
                 stats: BagRunStats, truth: Optional[Truth]) -> None:
        self._reader, self._inputs = reader, inputs
        self._reading = _Reading(reader, config, inputs, clock=clock, stats=stats, truth=truth)

    @property
    def frames(self) -> int:
        """Camera messages read so far."""
        return self._reading.frames

    def __iter__(self) -> Iterator[tuple[ViewSet, Optional[ResolvedPoses]]]:
        reading, inputs = self._reading, self._inputs
        wanted = [*inputs.cameras, *inputs.masks, *inputs.infos, *inputs.tf] + [
            t for t in (inputs.truth, inputs.names) if t]
        waits = _PoseWait(reading)
        received_ns = 0
        for topic, received_ns, raw in self._reader.messages(wanted):
            yield from waits.release(received_ns)  # late: placed with what came in time
            yield from waits.release(received_ns, reading.message(topic, received_ns, raw))
        yield from waits.release(received_ns, reading.finish(), final=True)


def produce(sets: RecordedSets, config: NodeConfig, *, batch: int,
            prepare: Callable[[Frame], np.ndarray], stats: BagRunStats
            ) -> Iterator[tuple[int, list[PreparedSet]]]:
    """Yield (camera frames read so far, a batch of prepared sets) of a recording's sets.

    Runs on the reader thread, ahead of the network by a batch or two: each frame is
    preprocessed once (a frame in several sets is reused), and consecutive sets of one view
    count are grouped into batches of ``batch``.

    :param prepare: turns a frame into the network's input (see :func:`prepare_frames`).
    """
    required = config.view_buffer_config().required_views
    prepared = PreparedViews(prepare, capacity=2 * max(required, len(config.camera_topics)) + 1)
    batcher = Batcher(batch)
    for view_set, poses in sets:
        try:
            views = prepared.views(view_set)  # (V, 3, 224, 224)
        except ImageInputError as exc:
            stats.sets_failed['image'] += 1
            stats.warn_once(('image', str(exc)), f'skipping a view set: {exc}')
            continue
        for done in batcher.add(PlacingSet(view_set, views, poses)):
            yield sets.frames, done
    for done in batcher.flush():
        yield sets.frames, done


def prepare_frames(reconstructor: Reconstructor, config: NodeConfig
                   ) -> Callable[[Frame], np.ndarray]:
    """Return what turns a frame into the network's input, with the node's regions of interest."""
    return frame_preparer(reconstructor, rois=config.camera_rois, roi_margin=config.roi_margin,
                          max_pixels=config.max_image_pixels)
