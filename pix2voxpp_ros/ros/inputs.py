"""The reconstruction node's inputs: camera subscriptions and what happens to each frame.

:class:`CameraInputs` lives from activate to deactivate. Its callbacks run on the executor
thread and only validate, convert and store: a message becomes a core
:class:`~pix2voxpp_ros.core.views.Frame` in the :class:`~pix2voxpp_ros.core.views.ViewBuffer`,
or is dropped and counted with its reason; with ``trigger: auto`` a newly complete view set goes
into the worker's one-slot queue. What happens to a converted frame (the wait for its mask with
``mask_topics``, the view buffer, new sets) is the core's
:class:`~pix2voxpp_ros.core.intake.FrameIntake`, shared with ``pix2voxpp-bag``; this module
converts messages, reads the clocks, logs and counts. Callbacks never raise.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, Optional

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..core import intake as core_intake
from ..core.drops import FrameDrop, bad_image_drop, encoding_drop
from ..core.inference import Reconstructor
from ..core.intake import FrameIntake, Intake
from ..core.limits import MAX_FRAME_ID_CHARS, shorten
from ..core.masks import MaskedFrames
from ..core.node_config import NodeConfig
from ..core.pending_slot import PendingSlot
from ..core.preprocess import MaskError
from ..core.views import NS_PER_S, Frame, ViewBuffer
from .conversions import (ImageConversionError, UnsupportedEncodingError, compressed_topic,
                          frame_to_array, labels_to_array, mask_to_array,
                          stamp_to_ns)
from .diagnostics import NodeStats, ThrottledLog
from .placement_io import CalibrationInputs
from .worker import Job, ViewPreparer, Worker


def frame_preparer(reconstructor: Reconstructor, config: NodeConfig
                   ) -> Callable[[Frame], np.ndarray]:
    """Return what turns a buffered frame into the network's input, for the worker's preparer."""
    return core_intake.frame_preparer(reconstructor, rois=config.camera_rois,
                                      roi_margin=config.roi_margin,
                                      max_pixels=config.max_image_pixels)


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
    :param calibration: with ``placement: calibrated``, the camera infos each frame is checked
        against (``no_camera_info``, ``bad_camera_info``) before it is buffered.
    :raises Exception: whatever ``create_subscription`` raises (e.g. an invalid topic name);
        subscriptions already made are destroyed first.
    """

    def __init__(self, node: Any, config: NodeConfig, *, buffer: ViewBuffer,
                 slot: PendingSlot[Job], worker: Worker, preparer: ViewPreparer,
                 stats: NodeStats, log: ThrottledLog, is_active: Callable[[], bool],
                 calibration: Optional[CalibrationInputs] = None) -> None:
        self._node = node
        self._calibration = calibration
        self._config = config
        self._buffer = buffer
        self._slot = slot
        self._worker = worker
        self._preparer = preparer
        self._stats = stats
        self._log = log
        self._is_active = is_active
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
        self._intake = FrameIntake(buffer, take_sets=config.trigger == 'auto', masks=MaskedFrames(
            len(topics), timeout_s=config.mask_timeout_s, instances=config.instances)
            if config.mask_topics else None)
        if config.mask_topics:
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
                           f'{type(exc).__name__}: {shorten(str(exc))}')

    def _topic(self, camera: int) -> str:
        return self.topics[camera] if camera < len(self.topics) else str(camera)

    def report_drop(self, drop: FrameDrop) -> None:
        """Log (throttled) and count a dropped frame; the worker calls it for frames left out."""
        self._drop(drop)

    def _drop(self, drop: FrameDrop) -> None:
        camera = drop.camera
        self._stats.dropped(camera, drop.reason)
        mask_topic = self._config.mask_topics[camera] if self._config.mask_topics else None
        self._log.warn((self._topic(camera),) + drop.log_key,
                       drop.message(self._topic(camera), mask_topic=mask_topic))

    def _now_ns(self) -> int:
        return self._node.get_clock().now().nanoseconds

    def _handle_image(self, camera: int, msg: Image | CompressedImage) -> None:
        received_ns = time.monotonic_ns()
        if not self._is_active():
            return
        self._stats.received(camera, received_ns / NS_PER_S)
        try:
            image, encoding = frame_to_array(msg, compressed=isinstance(msg, CompressedImage),
                                             max_pixels=self._config.max_image_pixels)
        except UnsupportedEncodingError:
            self._drop(encoding_drop(camera, getattr(msg, 'encoding', '')))
            return
        except ImageConversionError as exc:
            self._drop(bad_image_drop(camera, exc))
            return
        frame = Frame(camera=camera, stamp_ns=stamp_to_ns(msg.header.stamp), image=image,
                      encoding=encoding, received_ns=received_ns,
                      frame_id=shorten(msg.header.frame_id, MAX_FRAME_ID_CHARS))
        if self._calibration is not None:
            calibrated = self._calibration.infos.calibrate(frame)
            if isinstance(calibrated, FrameDrop):
                self._drop(calibrated)
                return
            frame = calibrated
        now_ns = self._now_ns()
        self._handle(self._intake.add_frame(frame, now_ns=now_ns, wait_ns=received_ns), now_ns)

    def _on_mask(self, camera: int, msg: Image) -> None:
        """Pair a mask with its frame; never raises."""
        try:
            if not self._is_active() or self._intake.masks is None:
                return
            try:
                convert = labels_to_array if self._config.instances else mask_to_array
                mask: np.ndarray | MaskError = convert(
                    msg, max_pixels=self._config.max_image_pixels)
            except MaskError as exc:
                mask = exc
            wait_ns, now_ns = time.monotonic_ns(), self._now_ns()
            self._handle(self._intake.add_mask(camera, stamp_to_ns(msg.header.stamp), mask,
                                               now_ns=now_ns, wait_ns=wait_ns), now_ns)
        except Exception as exc:  # noqa: BLE001 - callbacks never kill the spin
            self._stats.error('callback')
            self._log.warn(('mask callback', camera), f'mask callback of camera {camera} '
                           f'failed: {type(exc).__name__}: {shorten(str(exc))}')

    def _handle(self, intake: Intake, now_ns: int) -> None:
        """Log and count what a frame or mask led to; hand new complete sets to the worker."""
        if intake.clock_reset is not None:
            self._node.get_logger().warning(
                f'{self._topic(intake.clock_reset)}: the node clock ({now_ns / NS_PER_S:.3f}) '
                'is behind frames already buffered: the clock jumped back (bag loop or '
                'simulator reset?); view buffer cleared')
        for drop in intake.drops:
            self._drop(drop)
        config = self._config
        for frame in intake.accepted:
            self._stats.accepted(frame.camera, frame.received_ns / NS_PER_S,
                                 encoding=frame.encoding,
                                 size=f'{frame.image.shape[1]}x{frame.image.shape[0]}')
            # (Each object of an instance label image is cropped on its own: nothing to prefetch.)
            if config.trigger == 'auto' and not config.moving_camera and not self._worker.busy \
                    and not config.instances:
                # An idle worker reconstructs every new set, this frame included: start now.
                self._preparer.prefetch(frame)
        for view_set in intake.sets:
            if self._slot.closed:
                return
            try:
                self._slot.put(Job(view_set))
            except RuntimeError:  # closed by a concurrent deactivate: nothing to do
                pass
