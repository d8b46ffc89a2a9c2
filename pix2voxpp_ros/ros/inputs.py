"""The reconstruction node's inputs: camera subscriptions and what happens to each frame.

:class:`CameraInputs` lives from activate to deactivate. Its callbacks run on the executor
thread and only validate, convert and store: a message becomes a core
:class:`~pix2voxpp_ros.core.views.Frame` in the :class:`~pix2voxpp_ros.core.views.ViewBuffer`,
or is dropped and counted with its reason; with ``trigger: auto`` a newly complete view set goes
into the worker's one-slot queue. With ``mask_topics`` a frame first waits (in the core's
:class:`~pix2voxpp_ros.core.masks.MaskPairing`) for the segmenter's mask of its stamp and goes on
with it; frames without one, with an empty one or a bad one are dropped and counted. Callbacks
never raise.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from typing import Any, Callable, Optional

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..core.inference import Reconstructor
from ..core.masks import DROP_BAD_MASK, DROP_EMPTY_MASK, DROP_NO_MASK, MaskPairing
from ..core.preprocess import EmptyMaskError, MaskError, mask_box
from ..core.views import (DROP_FUTURE, DROP_OUT_OF_ORDER, DROP_STALE, NS_PER_S, Frame,
                          PendingSlot, ViewBuffer)
from .conversions import (DROP_BAD_IMAGE, DROP_ENCODING, ImageConversionError,
                          UnsupportedEncodingError, compressed_to_array, compressed_topic,
                          image_to_array, stamp_to_ns)
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
        self._pairing: Optional[MaskPairing[Frame]] = None
        if config.mask_topics:
            self._pairing = MaskPairing(len(topics), timeout_s=config.mask_timeout_s)
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
            if isinstance(msg, CompressedImage):
                image, encoding = compressed_to_array(msg)
            else:
                image, encoding = image_to_array(msg), msg.encoding
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
        if self._pairing is None:
            self._store(frame)
            return
        pair, expired = self._pairing.add_frame(camera, frame.stamp_ns, frame,
                                                now_ns=received_ns)
        self._paired(pair, expired)

    def _on_mask(self, camera: int, msg: Image) -> None:
        """Pair a mask with its frame; never raises."""
        try:
            pairing = self._pairing
            if not self._is_active() or pairing is None:
                return
            try:
                mask: object = image_to_array(msg)
                if msg.encoding != 'mono8':
                    mask = MaskError(f"mask encoding is '{msg.encoding}', not mono8")
            except ImageConversionError as exc:
                mask = MaskError(f'malformed mask: {exc}')
            pair, expired = pairing.add_mask(camera, stamp_to_ns(msg.header.stamp), mask,
                                             now_ns=time.monotonic_ns())
            self._paired(pair, expired)
        except Exception as exc:  # noqa: BLE001 - callbacks never kill the spin
            self._stats.error('callback')
            self._log.warn(('mask callback', camera), f'mask callback of camera {camera} '
                           f'failed: {type(exc).__name__}: {exc}')

    def _paired(self, pair: Optional[tuple[Frame, object]], expired: list[Frame]) -> None:
        """Drop frames whose mask never came; check a new pair's mask and store its frame."""
        for frame in expired:
            self._drop(frame.camera, DROP_NO_MASK, f'dropping frames on '
                       f'{self._topic(frame.camera)}: no mask of their stamp came within '
                       f'mask_timeout_s {self._config.mask_timeout_s} s on '
                       f'{self._config.mask_topics[frame.camera]}')
        if pair is None:
            return
        frame, mask = pair
        try:
            if isinstance(mask, Exception):
                raise mask
            mask_box(mask, height=frame.image.shape[0], width=frame.image.shape[1])
        except EmptyMaskError:
            self._drop(frame.camera, DROP_EMPTY_MASK, f'dropping frames on '
                       f'{self._topic(frame.camera)}: their mask marks no pixel (the segmenter '
                       'did not find the object)')
            return
        except MaskError as exc:
            self._drop(frame.camera, DROP_BAD_MASK,
                       f'dropping frames on {self._topic(frame.camera)}: bad mask: {exc}')
            return
        self._store(dataclasses.replace(frame, mask=mask))

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
