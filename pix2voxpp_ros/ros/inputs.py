"""The reconstruction node's inputs: camera subscriptions and what happens to each frame.

:class:`CameraInputs` lives from activate to deactivate. Its callbacks run on the executor
thread and only validate, convert and store: a message becomes a core
:class:`~pix2voxpp_ros.core.views.Frame` in the :class:`~pix2voxpp_ros.core.views.ViewBuffer`,
or is dropped and counted with its reason; with ``trigger: auto`` a newly complete view set goes
into the worker's one-slot queue. With ``mask_topics`` a frame first waits (in the core's
:class:`~pix2voxpp_ros.core.masks.MaskedFrames`, shared with ``pix2voxpp-bag``) for the
segmenter's mask of its stamp and goes on with it; frames without one, with an empty one or a
bad one are dropped and counted. Callbacks never raise.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, Optional

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..core.inference import Reconstructor
from ..core.masks import MaskDrop, MaskedFrames
from ..core.preprocess import MaskError
from ..core.views import (DROP_FUTURE, DROP_OUT_OF_ORDER, DROP_STALE, NS_PER_S, Frame,
                          PendingSlot, ViewBuffer)
from .conversions import (DROP_BAD_IMAGE, DROP_ENCODING, ImageConversionError,
                          UnsupportedEncodingError, compressed_topic, frame_to_array,
                          mask_to_array, stamp_to_ns)
from .diagnostics import NodeStats, ThrottledLog
from .params import NodeConfig
from .worker import Job, ViewPreparer, Worker

_FRAME_DROP_HINTS = {
    DROP_FUTURE: 'stamped more than future_tolerance_s ahead of the node clock; are the clocks '
                 'synchronised, and use_sim_time set alike on camera and node?',
    DROP_STALE: 'older than max_frame_age_s on arrival; are the clocks synchronised, and '
                'use_sim_time set alike on camera and node?',
    DROP_OUT_OF_ORDER: 'not newer than the newest frame already received from this camera '
                       '(out of order or repeated)',
}


def frame_preparer(reconstructor: Reconstructor, config: NodeConfig
                   ) -> Callable[[Frame], np.ndarray]:
    """Return what turns a buffered frame into the network's input, for the worker's preparer."""
    rois, margin = config.camera_rois, config.roi_margin

    def prepare(frame: Frame) -> np.ndarray:
        return reconstructor.preprocess(frame.image, encoding=frame.encoding,
                                        roi=rois[frame.camera], roi_margin=margin,
                                        mask=frame.mask)
    return prepare


def image_qos(reliability: str) -> QoSProfile:
    """Camera QoS: the sensor-data profile (best effort, keep last 5) or its reliable twin."""
    policy = ReliabilityPolicy.RELIABLE if reliability == 'reliable' else \
        ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


class CameraInputs:
    """The camera subscriptions of one activation and their per-frame handling.

    :param node: the node that owns the subscriptions (its clock and logger are used).
    :param config: the configuration of this activation.
    :param buffer: where accepted frames go.
    :param slot: where complete view sets go with ``trigger: auto``.
    :param worker: the inference worker (an idle one lets frames be prepared early).
    :param preparer: prepares frames ahead of the worker.
    :param stats: the node's counters.
    :param log: the node's throttled log.
    :param is_active: False once the node deactivates (callbacks then ignore late frames).
    :raises Exception: whatever ``create_subscription`` raises (e.g. an invalid topic name);
        subscriptions already made are destroyed first.
    """

    def __init__(self, node: Any, config: NodeConfig, *, buffer: ViewBuffer,
                 slot: PendingSlot[Job], worker: Worker, preparer: ViewPreparer,
                 stats: NodeStats, log: ThrottledLog, is_active: Callable[[], bool]) -> None:
        self._node = node
        self._config = config
        self._buffer = buffer
        self._slot = slot
        self._worker = worker
        self._preparer = preparer
        self._stats = stats
        self._log = log
        self._is_active = is_active
        self._clock_resets_seen = buffer.clock_resets
        self._subscriptions: list[Any] = []
        qos = image_qos(config.qos_reliability)
        compressed = config.image_transport == 'compressed'
        topics = [compressed_topic(t) if compressed else t for t in config.camera_topics]
        try:
            for index, topic in enumerate(topics):
                self._subscriptions.append(node.create_subscription(
                    CompressedImage if compressed else Image, topic,
                    partial(self._on_image, index), qos))
        except Exception:
            self.close()
            raise
        self.topics = [getattr(sub, 'topic_name', topic)
                       for sub, topic in zip(self._subscriptions, topics)]
        self._masks: Optional[MaskedFrames] = None
        if config.mask_topics:
            self._masks = MaskedFrames(len(topics), timeout_s=config.mask_timeout_s)
            try:
                for index, topic in enumerate(config.mask_topics):
                    self._subscriptions.append(node.create_subscription(
                        Image, topic, partial(self._on_mask, index), qos))
            except Exception:
                self.close()
                raise

    def close(self) -> None:
        """Unsubscribe from every camera."""
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []

    def _on_image(self, camera: int, msg: Image | CompressedImage) -> None:
        """Validate, wrap and store one frame; never raises (bad frames are dropped, counted)."""
        try:
            self._handle_image(camera, msg)
        except Exception as exc:  # noqa: BLE001 - callbacks never kill the spin
            self._stats.error('callback')
            self._log.warn(('callback', camera), f'image callback of camera {camera} failed: '
                           f'{type(exc).__name__}: {exc}')

    def _topic(self, camera: int) -> str:
        return self.topics[camera] if camera < len(self.topics) else str(camera)

    def _drop(self, camera: int, reason: str, message: str, *, key: Any = None) -> None:
        self._stats.dropped(camera, reason)
        self._log.warn(key or (self._topic(camera), reason), message)

    def _handle_image(self, camera: int, msg: Image | CompressedImage) -> None:
        received_ns = time.monotonic_ns()
        if not self._is_active():
            return
        topic = self._topic(camera)
        self._stats.received(camera, received_ns / NS_PER_S)
        try:
            image, encoding = frame_to_array(msg, compressed=isinstance(msg, CompressedImage))
        except UnsupportedEncodingError:
            self._drop(camera, DROP_ENCODING, f'dropping frames on {topic}: encoding '
                       f"'{msg.encoding}' is not supported (use rgb8, bgr8, rgba8, bgra8 or "
                       'mono8)', key=(topic, DROP_ENCODING, msg.encoding))
            return
        except ImageConversionError as exc:
            self._drop(camera, DROP_BAD_IMAGE, f'dropping a malformed frame on {topic}: {exc}')
            return
        frame = Frame(camera=camera, stamp_ns=stamp_to_ns(msg.header.stamp), image=image,
                      encoding=encoding, received_ns=received_ns)
        if self._masks is None:
            self._store(frame)
            return
        self._masked(*self._masks.add_frame(frame, now_ns=received_ns))

    def _on_mask(self, camera: int, msg: Image) -> None:
        """Pair a mask with its frame; never raises."""
        try:
            masks = self._masks
            if not self._is_active() or masks is None:
                return
            try:
                mask: np.ndarray | MaskError = mask_to_array(msg)
            except MaskError as exc:
                mask = exc
            self._masked(*masks.add_mask(camera, stamp_to_ns(msg.header.stamp), mask,
                                         now_ns=time.monotonic_ns()))
        except Exception as exc:  # noqa: BLE001 - callbacks never kill the spin
            self._stats.error('callback')
            self._log.warn(('mask callback', camera), f'mask callback of camera {camera} '
                           f'failed: {type(exc).__name__}: {exc}')

    def _masked(self, ready: list[Frame], drops: list[MaskDrop]) -> None:
        """Count and log frames dropped for their mask; store those that go on with theirs."""
        for drop in drops:
            camera = drop.frame.camera
            self._drop(camera, drop.reason, f'dropping frames on {self._topic(camera)}: '
                       f'{drop.detail} (masks on {self._config.mask_topics[camera]})')
        for frame in ready:
            self._store(frame)

    def _store(self, frame: Frame) -> None:
        """Put a converted frame into the buffer and hand a new complete set to the worker."""
        buffer, config, topic = self._buffer, self._config, self._topic(frame.camera)
        now_ns = self._node.get_clock().now().nanoseconds
        reason: Optional[str] = buffer.add(frame, now_ns=now_ns)
        resets = buffer.clock_resets
        if resets != self._clock_resets_seen:
            self._clock_resets_seen = resets
            self._node.get_logger().warning(
                f'{topic}: the node clock ({now_ns / NS_PER_S:.3f}) is behind frames already '
                'buffered: the clock jumped back (bag loop or simulator reset?); view buffer '
                'cleared')
        if reason is not None:
            stamp_ns = frame.stamp_ns
            self._drop(frame.camera, reason,
                       f'dropping frames on {topic}: stamp {stamp_ns / NS_PER_S:.3f} (node clock '
                       f'minus stamp {(now_ns - stamp_ns) / NS_PER_S:+.3f} s) is '
                       f'{_FRAME_DROP_HINTS.get(reason, reason)}')
            return
        self._stats.accepted(frame.camera, frame.received_ns / NS_PER_S,
                             encoding=frame.encoding,
                             size=f'{frame.image.shape[1]}x{frame.image.shape[0]}')
        if config.trigger != 'auto':
            return
        if not config.moving_camera and not self._worker.busy:
            # An idle worker reconstructs every new set, this frame included: start now.
            self._preparer.prefetch(frame)
        view_set = buffer.take_new_set(now_ns=now_ns)
        if view_set is not None and not self._slot.closed:
            try:
                self._slot.put(Job(view_set))
            except RuntimeError:  # closed by a concurrent deactivate: nothing to do
                pass
