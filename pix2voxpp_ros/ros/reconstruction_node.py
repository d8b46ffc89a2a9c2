"""The Pix2Vox++ reconstruction node (``pix2voxpp_node``): camera frames in, occupancy grid out.

A lifecycle node over the core:

* **configure** reads the parameters (:mod:`.params`), loads the weights into a
  :class:`~pix2voxpp_ros.core.inference.Reconstructor` and runs a warm-up pass; a bad parameter or
  weights file makes it fail with the reason logged once and shown in ``/diagnostics``; the
  process stays up, unconfigured;
* **activate** subscribes to the cameras and starts the inference worker;
* **deactivate** unsubscribes and stops the worker; **cleanup** frees the model (and the CUDA
  cache); ``autostart`` (default true) walks the node to active by itself.

Threads: image callbacks only validate, wrap and store frames in the core's
:class:`~pix2voxpp_ros.core.views.ViewBuffer` and, with ``trigger: auto``, put a newly complete
view set into the one-slot queue; one worker thread (:mod:`.worker`) runs the network and
publishes. The node spins on a single-threaded executor (measurably faster per frame than
rclpy's multi-threaded one); ``~/reconstruct``, which waits for its result, is served by a hidden
helper node on a thread of its own, so the wait never blocks image callbacks, diagnostics or
lifecycle services.

Topics: ``~/occupancy`` (PointCloud2), ``~/markers`` (MarkerArray), ``~/grid`` (dense
PointCloud2 of every voxel), ``/diagnostics``. Services: ``~/reconstruct`` and ``~/reset``
(std_srvs/Trigger), plus the standard lifecycle services.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Optional

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from ..core.checkpoint import CheckpointError
from ..core.inference import InferenceError, Reconstructor
from ..core.preprocess import ImageInputError
from ..core.views import (DROP_FUTURE, DROP_OUT_OF_ORDER, DROP_REASONS, DROP_STALE, NS_PER_S,
                          Frame, PendingSlot, ViewBuffer)
from .conversions import (DROP_BAD_IMAGE, DROP_ENCODING, ImageConversionError,
                          UnsupportedEncodingError, clear_markers, grid_to_markers,
                          image_to_array, ns_to_stamp, reconstruction_messages, stamp_to_ns)
from .params import (DYNAMIC_PARAMETERS, PARAMETER_NAMES, ConfigError, NodeConfig, coerce,
                     config_from_values, declare_parameters, find_problems, read_values)
from .worker import (Job, Outcome, ViewPreparer, Worker, WorkerHandle, merge_jobs,
                     submit_and_wait)

NODE_NAME = 'pix2voxpp'
FRAME_DROP_REASONS = (DROP_ENCODING, DROP_BAD_IMAGE) + DROP_REASONS
ERROR_KINDS = ('inference', 'image', 'internal', 'callback')
SERVICE_TIMEOUT_S = 60.0
LOG_THROTTLE_S = 5.0
DIAGNOSTICS_PERIOD_S = 1.0
CLOCK_JUMP_BACK_S = 0.1  # a backward clock jump larger than this clears the view buffer
MARKER_CHECK_PERIOD_S = 0.1  # how soon a new marker viewer gets markers of the latest cloud
STATS_WINDOW = 50  # reconstructions the medians in /diagnostics are taken over
# Frames pass from the executor thread to the preparer and the worker threads; CPython's default
# 5 ms GIL switch interval would add up to that much to each hand-off while a thread computes.
GIL_SWITCH_INTERVAL_S = 0.001

_FRAME_DROP_HINTS = {
    DROP_FUTURE: 'stamped more than future_tolerance_s ahead of the node clock; are the clocks '
                 'synchronised, and use_sim_time set alike on camera and node?',
    DROP_STALE: 'older than max_frame_age_s on arrival; are the clocks synchronised, and '
                'use_sim_time set alike on camera and node?',
    DROP_OUT_OF_ORDER: 'not newer than the newest frame already received from this camera '
                       '(out of order or repeated)',
}


def image_qos(reliability: str) -> QoSProfile:
    """Camera QoS: the sensor-data profile (best effort, keep last 5) or its reliable twin."""
    policy = ReliabilityPolicy.RELIABLE if reliability == 'reliable' else \
        ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=policy,
                      durability=DurabilityPolicy.VOLATILE)


# Outputs are latched (transient local): RViz or a planner started later gets the last result.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass
class _CameraStats:
    """Counters of one camera topic (updated by its callback, read by the diagnostics timer)."""

    topic: str
    received: int = 0
    accepted: int = 0
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAME_DROP_REASONS, 0))
    last_received_s: Optional[float] = None  # monotonic
    last_accepted_s: Optional[float] = None  # monotonic
    encoding: str = ''
    size: str = ''
    rate_mark: tuple[int, float] = (0, 0.0)  # (received, monotonic time) at the last report
    silent: bool = False  # had frames, then went silent (logged once per change)


@dataclass
class _RunStats:
    """Counters of reconstructions (updated by the worker, read by the diagnostics timer)."""

    reconstructions: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    sets_dropped_before: int = 0  # of earlier activations' slots
    last_success: Optional[bool] = None
    last_message: str = ''
    last_stamp_ns: Optional[int] = None
    last_views: str = ''
    last_points: int = 0
    last_latency_ms: float = 0.0
    last_model_ms: float = 0.0
    last_breakdown: dict = field(default_factory=dict)  # where the latency went, ms
    last_done_s: Optional[float] = None  # monotonic
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    models_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))


class ReconstructionNode(LifecycleNode):
    """Multi-view Pix2Vox++ reconstruction as a ROS 2 lifecycle node.

    :param node_name: the node's name (``pix2voxpp`` by default).
    :param kwargs: passed to :class:`rclpy.lifecycle.LifecycleNode` (context, namespace, ...).
    """

    def __init__(self, *, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_parameters(self)
        self._state = 'unconfigured'  # mirrors the lifecycle state (set by our transitions)
        self._configure_error = ''
        self._config: Optional[NodeConfig] = None
        self._reconstructor: Optional[Reconstructor] = None
        self._buffer: Optional[ViewBuffer] = None
        self._preparer: Optional[ViewPreparer] = None
        self._slot: Optional[PendingSlot[Job]] = None
        self._worker: Optional[Worker] = None
        self._workers = WorkerHandle()  # never two workers, even after a stop that gave up
        self._finalized = threading.Event()  # set by the shutdown transition: main() exits
        self._clock_resets_seen = 0
        self._camera_subs: list[Any] = []
        self._topics: list[str] = []
        self._active = False
        self._threshold_param = -1.0
        self._stats_lock = threading.Lock()
        self._cameras: list[_CameraStats] = []
        self._run = _RunStats()
        self._log_lock = threading.Lock()
        self._log_last: dict[Any, float] = {}
        self._log_suppressed: dict[Any, int] = {}

        self._cloud_pub = self.create_lifecycle_publisher(PointCloud2, '~/occupancy', OUTPUT_QOS)
        self._marker_pub = self.create_lifecycle_publisher(MarkerArray, '~/markers', OUTPUT_QOS)
        self._grid_pub = self.create_lifecycle_publisher(PointCloud2, '~/grid', OUTPUT_QOS)
        # Markers cost ~10 ms per 1,000 voxels, so they are built only while someone watches;
        # the latched topic must then never hand a late viewer markers of an older cloud.
        self._marker_lock = threading.Lock()
        self._markers_current = False  # the latched markers show the latest cloud
        self._last_output: Optional[tuple[np.ndarray, float, float, Header]] = None
        self.create_timer(MARKER_CHECK_PERIOD_S, self._refresh_markers)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # A looping bag or a simulator reset moves /clock back: old stamps would make every new
        # frame "out of order", so the buffer starts afresh.
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-CLOCK_JUMP_BACK_S),
                          on_clock_change=True),
            post_callback=self._on_clock_jump)
        self._service_node, self._service_executor = self._serve_reconstruct()

    def _serve_reconstruct(self) -> tuple[Any, SingleThreadedExecutor]:
        """Serve ``~/reconstruct`` from a hidden helper node spun by a thread of its own."""
        resolve = getattr(self, 'resolve_service_name', None)  # absent from older rclpy
        name = resolve('~/reconstruct') if resolve else \
            f'{self.get_fully_qualified_name()}/reconstruct'
        # Its own name ('_' hides it from node lists) and no global arguments, so that a remap
        # of this node's name does not give both nodes the same one.
        helper = rclpy.create_node(f'_{self.get_name()}_reconstruct', context=self.context,
                                   namespace=self.get_namespace(), use_global_arguments=False,
                                   start_parameter_services=False, enable_rosout=False)
        helper.create_service(Trigger, name, self._on_reconstruct)
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(helper)
        threading.Thread(target=self._spin_quietly, args=(executor,), daemon=True,
                         name='pix2voxpp_reconstruct_service').start()
        return helper, executor

    @staticmethod
    def _spin_quietly(executor: SingleThreadedExecutor) -> None:
        try:
            executor.spin()
        except Exception:  # noqa: BLE001 - ExternalShutdownException or a context shut down
            pass

    def destroy_node(self) -> None:
        """Stop the service helper, then destroy the node."""
        self._service_executor.shutdown(timeout_sec=5.0)
        self._service_node.destroy_node()
        super().destroy_node()

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Configure and activate when the ``autostart`` parameter says so (logs any failure)."""
        autostart, reason = coerce('autostart', self.get_parameter('autostart').value)
        if reason is not None or not autostart:
            self.get_logger().info('autostart is off: waiting for the lifecycle configure '
                                   'transition')
            return
        if not hasattr(self, 'trigger_configure'):  # very old rclpy: no self-transitions
            self.get_logger().error('this rclpy cannot trigger its own transitions; use '
                                    f'ros2 lifecycle set {self.get_fully_qualified_name()} '
                                    'configure')
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error(
                'autostart stopped: the node stays unconfigured. Fix the parameter, then run '
                f'ros2 lifecycle set {self.get_fully_qualified_name()} configure')
            return
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error('autostart: activate failed; the node stays inactive')

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Read the parameters, load the weights and warm up."""
        try:
            config = config_from_values(read_values(self))
            self.get_logger().info(f'configuring: loading {config.weights} on {config.device} '
                                   f'({config.precision})')
            start = time.perf_counter()
            buffer_config = config.view_buffer_config()
            warmup = (buffer_config.views_per_reconstruction if buffer_config.moving
                      else buffer_config.num_cameras)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                reconstructor = Reconstructor(config.weights, device=config.device,
                                              precision=config.precision,
                                              backend=config.backend,
                                              num_threads=config.num_threads or None,
                                              warmup_views=warmup)
            for warning in caught:
                self.get_logger().warning(str(warning.message))
        except Exception as exc:  # noqa: BLE001 - any failure leaves the node unconfigured
            return self._configure_failed(exc)
        self._config = config
        self._reconstructor = reconstructor
        self._buffer = ViewBuffer(buffer_config)
        self._clock_resets_seen = 0
        rois, margin = config.camera_rois, config.roi_margin

        def prepare(frame: Frame) -> np.ndarray:
            return reconstructor.preprocess(frame.image, encoding=frame.encoding,
                                            roi=rois[frame.camera], roi_margin=margin)
        self._preparer = ViewPreparer(prepare, threads=min(warmup, os.cpu_count() or 1),
                                      capacity=2 * warmup + 1)
        self._threshold_param = config.threshold
        self._configure_error = ''
        with self._stats_lock:
            self._cameras = [_CameraStats(topic) for topic in config.camera_topics]
            self._run = _RunStats()
        mode = ('one moving camera, '
                f'{config.views_per_reconstruction} key frames {config.min_view_interval_s} s '
                'apart' if config.moving_camera else
                f'{len(config.camera_topics)} cameras, at least {buffer_config.required_views} '
                f'within {config.sync_slop_s} s')
        self.get_logger().info(
            f'configured in {time.perf_counter() - start:.1f} s: Pix2Vox++/'
            f'{reconstructor.model.config.variant} on {reconstructor.device} '
            f'({reconstructor.precision}, {reconstructor.backend}), {mode}, trigger '
            f'{config.trigger}, threshold {self._threshold():.2f}')
        self._state = 'inactive'
        return super().on_configure(state)

    def _configure_failed(self, exc: Exception) -> TransitionCallbackReturn:
        self._release_model()
        if isinstance(exc, ConfigError):
            reason = 'invalid parameters: ' + '; '.join(exc.problems)
        else:
            reason = str(exc) or type(exc).__name__
        self._configure_error = reason
        expected = (ConfigError, CheckpointError, InferenceError, ImageInputError, ValueError,
                    OSError)
        if isinstance(exc, expected):
            self.get_logger().error(f'configure failed: {reason}')
        else:  # a bug or an environment problem: the traceback helps, once
            self.get_logger().error(f'configure failed: {type(exc).__name__}: {reason}\n'
                                    f'{traceback.format_exc()}')
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Start the worker and subscribe to the cameras."""
        config = self._config
        if config is None:
            return TransitionCallbackReturn.FAILURE
        try:
            # Dynamic parameters may have changed while inactive: take their current values.
            rate = coerce('max_rate_hz', self.get_parameter('max_rate_hz').value)[0] \
                if config.trigger == 'auto' else 0.0
            self._slot = PendingSlot(max_rate_hz=rate, merge=merge_jobs)
            self._worker = self._workers.start(self._slot, self._process,
                                               on_error=self._on_worker_error)
            self._active = True
            qos = image_qos(config.qos_reliability)
            self._camera_subs = [
                self.create_subscription(Image, topic, partial(self._on_image, index), qos)
                for index, topic in enumerate(config.camera_topics)]
            self._topics = [getattr(sub, 'topic_name', topic)
                            for sub, topic in zip(self._camera_subs, config.camera_topics)]
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid topic name
            self.get_logger().error(f'activate failed: {type(exc).__name__}: {exc}')
            self._stop_worker()
            return TransitionCallbackReturn.FAILURE
        with self._stats_lock:
            for stats, topic in zip(self._cameras, self._topics):
                stats.topic = topic
        self.get_logger().info(f'active: listening to {", ".join(self._topics)} '
                               f'({config.qos_reliability}); publishing '
                               f'~/occupancy in frame {config.frame_id}')
        self._state = 'active'
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker (waits for a running reconstruction)."""
        self._stop_worker()
        self.get_logger().info('inactive: unsubscribed, worker stopped')
        self._state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Free the model and the buffered frames."""
        self._release_model()
        self.get_logger().info('unconfigured: model released')
        self._state = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Stop everything before the node is finalized; the process then exits."""
        self.close()
        self._state = 'finalized'
        self._finalized.set()
        self.get_logger().info('finalized: exiting')
        return super().on_shutdown(state)

    @property
    def finalized(self) -> bool:
        """True once the shutdown transition ran: nothing is left to do in this process."""
        return self._finalized.is_set()

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Recover to unconfigured after an error in a transition."""
        self.close()
        self._state = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the worker and free the model; safe to call in any state and more than once."""
        self._stop_worker()
        self._release_model()

    def _stop_worker(self) -> None:
        self._active = False
        for sub in self._camera_subs:
            self.destroy_subscription(sub)
        self._camera_subs = []
        slot = self._slot
        self._worker = None
        if not self._workers.stop(timeout=SERVICE_TIMEOUT_S):
            self.get_logger().warning('a reconstruction is still running; it is abandoned (the '
                                      'node activates again only after it has ended)')
        if slot is not None:
            with self._stats_lock:
                self._run.sets_dropped_before += slot.dropped
            self._slot = None

    def _release_model(self) -> None:
        reconstructor, preparer = self._reconstructor, self._preparer
        self._reconstructor = None
        self._preparer = None
        self._buffer = None
        self._config = None
        if preparer is not None:
            preparer.close()
        if reconstructor is not None:
            on_cuda = reconstructor.device.type == 'cuda'
            del reconstructor
            gc.collect()
            if on_cuda:
                torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------- parameters

    def _threshold(self) -> float:
        """Return the threshold in use: the parameter, or the weights' one when negative."""
        if self._threshold_param >= 0.0:
            return self._threshold_param
        reconstructor = self._reconstructor
        return reconstructor.threshold if reconstructor is not None else 0.3

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Refuse invalid values (with the reason) and apply the dynamic ones at once."""
        try:
            ours = {p.name: p.value for p in params if p.name in PARAMETER_NAMES}
            if not ours:
                return SetParametersResult(successful=True)
            fixed = sorted(name for name in ours if name not in DYNAMIC_PARAMETERS)
            if fixed and self._state != 'unconfigured':
                return SetParametersResult(successful=False, reason=(
                    f'{", ".join(fixed)} can only change while the node is unconfigured (it is '
                    f'{self._state}): deactivate, clean up, set, then configure again; '
                    f'{", ".join(sorted(DYNAMIC_PARAMETERS))} change any time'))
            current = read_values(self)
            known = set(find_problems(current))
            new = [p for p in find_problems({**current, **ours}) if p not in known]
            if new:
                return SetParametersResult(successful=False, reason='; '.join(new))
            if 'threshold' in ours:
                self._threshold_param = coerce('threshold', ours['threshold'])[0]
                self.get_logger().info(f'threshold now {self._threshold():.3f}')
            slot, config = self._slot, self._config
            if 'max_rate_hz' in ours and slot is not None and config is not None \
                    and config.trigger == 'auto':
                slot.set_max_rate(coerce('max_rate_hz', ours['max_rate_hz'])[0])
            return SetParametersResult(successful=True)
        except Exception as exc:  # noqa: BLE001 - a parameter service must always answer
            return SetParametersResult(successful=False, reason=f'{type(exc).__name__}: {exc}')

    # ----------------------------------------------------------------------------- frames

    def _on_image(self, camera: int, msg: Image) -> None:
        """Validate, wrap and store one frame; never raises (bad frames are dropped, counted)."""
        try:
            self._handle_image(camera, msg)
        except Exception as exc:  # noqa: BLE001 - callbacks never kill the spin
            self._count_error('callback')
            self._warn_throttled(('callback', camera), f'image callback of camera {camera} '
                                 f'failed: {type(exc).__name__}: {exc}')

    def _handle_image(self, camera: int, msg: Image) -> None:
        received_ns = time.monotonic_ns()
        buffer, slot, config = self._buffer, self._slot, self._config
        if not self._active or buffer is None or slot is None or config is None:
            return
        stats = self._cameras[camera]
        with self._stats_lock:
            stats.received += 1
            stats.last_received_s = received_ns / NS_PER_S
        try:
            image = image_to_array(msg)
        except UnsupportedEncodingError:
            self._drop_frame(stats, DROP_ENCODING)
            self._warn_throttled((stats.topic, DROP_ENCODING, msg.encoding),
                                 f'dropping frames on {stats.topic}: encoding '
                                 f"'{msg.encoding}' is not supported (use rgb8, bgr8, rgba8, "
                                 'bgra8 or mono8)')
            return
        except ImageConversionError as exc:
            self._drop_frame(stats, DROP_BAD_IMAGE)
            self._warn_throttled((stats.topic, DROP_BAD_IMAGE),
                                 f'dropping a malformed frame on {stats.topic}: {exc}')
            return
        stamp_ns = stamp_to_ns(msg.header.stamp)
        frame = Frame(camera=camera, stamp_ns=stamp_ns, image=image, encoding=msg.encoding,
                      received_ns=received_ns)
        now_ns = self.get_clock().now().nanoseconds
        reason = buffer.add(frame, now_ns=now_ns)
        resets = buffer.clock_resets
        if resets != self._clock_resets_seen:
            self._clock_resets_seen = resets
            self.get_logger().warning(
                f'{stats.topic}: the node clock ({now_ns / NS_PER_S:.3f}) is behind frames '
                'already buffered: the clock jumped back (bag loop or simulator reset?); view '
                'buffer cleared')
        if reason is not None:
            self._drop_frame(stats, reason)
            self._warn_throttled((stats.topic, reason),
                                 f'dropping frames on {stats.topic}: stamp '
                                 f'{stamp_ns / NS_PER_S:.3f} (node clock minus stamp '
                                 f'{(now_ns - stamp_ns) / NS_PER_S:+.3f} s) is '
                                 f'{_FRAME_DROP_HINTS.get(reason, reason)}')
            return
        with self._stats_lock:
            stats.accepted += 1
            stats.last_accepted_s = received_ns / NS_PER_S
            stats.encoding = msg.encoding
            stats.size = f'{msg.width}x{msg.height}'
        if config.trigger == 'auto':
            worker, preparer = self._worker, self._preparer
            if not config.moving_camera and preparer is not None and worker is not None \
                    and not worker.busy:
                # An idle worker reconstructs every new set, this frame included: start now.
                preparer.prefetch(frame)
            view_set = buffer.take_new_set(now_ns=now_ns)
            if view_set is not None and not slot.closed:
                try:
                    slot.put(Job(view_set))
                except RuntimeError:  # closed by a concurrent deactivate: nothing to do
                    pass

    def _drop_frame(self, stats: _CameraStats, reason: str) -> None:
        with self._stats_lock:
            stats.drops[reason] += 1

    def _count_error(self, kind: str) -> None:
        with self._stats_lock:
            self._run.errors[kind] += 1

    def _warn_throttled(self, key: Any, message: str, *, error: bool = False) -> None:
        """Log at most once per LOG_THROTTLE_S per key, saying how many were suppressed."""
        now = time.monotonic()
        with self._log_lock:
            last = self._log_last.get(key)
            if last is not None and now - last < LOG_THROTTLE_S:
                self._log_suppressed[key] = self._log_suppressed.get(key, 0) + 1
                return
            self._log_last[key] = now
            suppressed = self._log_suppressed.pop(key, 0)
        if suppressed:
            message += f' ({suppressed} more like this since the last report)'
        if error:
            self.get_logger().error(message)
        else:
            self.get_logger().warning(message)

    # ----------------------------------------------------------------------------- inference

    def _describe_views(self, job: Job) -> str:
        names = [self._topics[c] if c < len(self._topics) else str(c) for c in job.views.cameras]
        if len(set(names)) == 1 and len(names) > 1:
            return f'{len(names)} key frames of {names[0]}'
        return ', '.join(names)

    def _process(self, job: Job) -> Outcome:
        """Reconstruct one view set and publish cloud, grid and (when watched) markers."""
        reconstructor, config, preparer = self._reconstructor, self._config, self._preparer
        if reconstructor is None or config is None or preparer is None:
            return Outcome(False, 'the node is not configured')
        frames = job.views.frames
        started_ns = time.monotonic_ns()
        # What Reconstructor.reconstruct does, with each frame preprocessed once, maybe early.
        views = np.stack(preparer.views(frames))  # (V, 3, 224, 224)
        prepared_ns = time.monotonic_ns()
        grid = reconstructor.infer(views[None])[0]  # (32, 32, 32)
        inferred_ns = time.monotonic_ns()
        model_ms = reconstructor.last_model_time_s * 1e3
        threshold = self._threshold()
        header = Header(stamp=ns_to_stamp(job.views.newest_stamp_ns), frame_id=config.frame_id)
        messages = reconstruction_messages(
            grid, threshold=threshold, object_size_m=config.object_size_m, header=header,
            markers=self._marker_pub.get_subscription_count() > 0)
        cloud = messages.cloud
        self._cloud_pub.publish(cloud)
        published_ns = time.monotonic_ns()
        latency_ms = (published_ns - job.views.newest_received_ns) / 1e6
        breakdown = {'queue_ms': (started_ns - job.views.newest_received_ns) / 1e6,
                     'prepare_ms': (prepared_ns - started_ns) / 1e6,
                     'infer_ms': (inferred_ns - prepared_ns) / 1e6,
                     'publish_ms': (published_ns - inferred_ns) / 1e6}
        self._grid_pub.publish(messages.grid)
        self._publish_markers(messages.markers, (grid, threshold, config.object_size_m, header))
        names = self._describe_views(job)
        stamp_s = job.views.newest_stamp_ns / NS_PER_S
        with self._stats_lock:
            run = self._run
            first = run.reconstructions == 0
            run.reconstructions += 1
            run.last_success = True
            run.last_message = ''
            run.last_stamp_ns = job.views.newest_stamp_ns
            run.last_views = names
            run.last_breakdown = breakdown
            run.last_points = cloud.width
            run.last_latency_ms = latency_ms
            run.last_model_ms = model_ms
            run.last_done_s = time.monotonic()
            run.latencies_ms.append(latency_ms)
            run.models_ms.append(model_ms)
        summary = (f'{len(frames)} view(s) ({names}), stamp {stamp_s:.3f}: {cloud.width} '
                   f'occupied voxels at threshold {threshold:.2f}; model {model_ms:.1f} ms, '
                   f'frame to cloud {latency_ms:.1f} ms')
        if first:
            self.get_logger().info(f'first reconstruction published: {summary}')
        else:
            self.get_logger().debug(f'reconstructed {summary}')
        return Outcome(True, f'reconstructed from {summary}')

    def _publish_markers(self, markers: Optional[MarkerArray],
                         output: tuple[np.ndarray, float, float, Header]) -> None:
        """Publish the markers of the latest cloud, or retract the latched ones when unbuilt."""
        with self._marker_lock:
            self._last_output = output
            if markers is not None:
                self._marker_pub.publish(markers)
                self._markers_current = True
            elif self._markers_current:
                # Nobody watches: replace the latched markers by a cheap DELETEALL of this stamp,
                # so a viewer joining later never sees an older object next to the cloud.
                self._marker_pub.publish(clear_markers(output[3]))
                self._markers_current = False

    def _refresh_markers(self) -> None:
        """Timer: give a viewer that joined since the last reconstruction its markers."""
        try:
            if self._markers_current or self._last_output is None or \
                    self._marker_pub.get_subscription_count() == 0:
                return
            with self._marker_lock:
                if self._markers_current or self._last_output is None:
                    return
                grid, threshold, object_size_m, header = self._last_output
                self._marker_pub.publish(grid_to_markers(
                    grid, threshold=threshold, object_size_m=object_size_m, header=header))
                self._markers_current = True
        except Exception as exc:  # noqa: BLE001 - a timer callback never kills the spin
            self._warn_throttled('markers', f'markers failed: {type(exc).__name__}: {exc}')

    def _on_worker_error(self, job: Job, exc: Exception) -> Outcome:
        """Log (throttled) and count a failed reconstruction; the worker goes on."""
        if not self.context.ok():  # Ctrl-C shut ROS down under a running reconstruction
            return Outcome(False, 'ROS is shutting down')
        if isinstance(exc, InferenceError):
            kind = 'inference'
        elif isinstance(exc, ImageInputError):
            kind = 'image'
        else:
            kind = 'internal'
        self._count_error(kind)
        message = (f'reconstruction from {len(job.views)} view(s) ({self._describe_views(job)}, '
                   f'stamp {job.views.newest_stamp_ns / NS_PER_S:.3f}) failed: '
                   f'{type(exc).__name__}: {exc}')
        with self._stats_lock:
            self._run.last_success = False
            self._run.last_message = message
            self._run.last_done_s = time.monotonic()
        detail = '' if kind != 'internal' else '\n' + ''.join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._warn_throttled(('worker', kind), message + detail, error=True)
        return Outcome(False, message)

    # ----------------------------------------------------------------------------- services

    def _on_reconstruct(self, request: Trigger.Request,
                        response: Trigger.Response) -> Trigger.Response:
        """Reconstruct from the current complete view set and answer with what was used."""
        start_ns = time.monotonic_ns()
        try:
            buffer, slot = self._buffer, self._slot
            if not self._active or buffer is None or slot is None:
                response.success = False
                response.message = f'the node is {self._state}, not active'
                return response
            view_set = buffer.complete_set(now_ns=self.get_clock().now().nanoseconds)
            if view_set is None:
                response.success = False
                response.message = self._explain_incomplete()
                return response
            buffer.mark_taken(view_set)
            outcome = submit_and_wait(slot, view_set, timeout=SERVICE_TIMEOUT_S)
            if outcome is None:
                response.success = False
                response.message = (f'no result within {SERVICE_TIMEOUT_S:.0f} s; the '
                                    'reconstruction goes on in the background')
                return response
            response.success = outcome.success
            response.message = (f'{outcome.message}; service latency '
                                f'{(time.monotonic_ns() - start_ns) / 1e6:.1f} ms')
        except Exception as exc:  # noqa: BLE001 - a service must always answer
            response.success = False
            response.message = f'{type(exc).__name__}: {exc}'
        return response

    def _explain_incomplete(self) -> str:
        buffer, config = self._buffer, self._config
        if buffer is None or config is None:
            return 'the node is not configured'
        status = buffer.status(now_ns=self.get_clock().now().nanoseconds)
        if config.moving_camera:
            return (f'no complete view set: {status.key_frames} of {status.required} key frames '
                    f'(at least {config.min_view_interval_s} s apart, younger than '
                    f'max_frame_age_s {config.max_frame_age_s} s)')
        held = ', '.join(f'{topic}: ' + ('no fresh frame' if age is None else f'{age:.2f} s old')
                         for topic, age in zip(self._topics or config.camera_topics,
                                               status.ages_s))
        return (f'no complete view set: need {status.required} camera(s) with frames within '
                f'sync_slop_s {config.sync_slop_s} s of each other and younger than '
                f'max_frame_age_s {config.max_frame_age_s} s; have {held}')

    def _on_clock_jump(self, jump: TimeJump) -> None:
        """Clock jump callback: a backward jump (bag loop, simulator reset) clears the buffer."""
        buffer = self._buffer
        if buffer is None:
            return
        buffer.reset()
        back_s = -jump.delta.nanoseconds / NS_PER_S
        self.get_logger().warning(f'the clock jumped back by {back_s:.3f} s (bag loop or '
                                  'simulator reset?): view buffer cleared')

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Forget every buffered frame and stamp."""
        buffer = self._buffer
        if buffer is None:
            response.success = True
            response.message = f'nothing to clear: the node is {self._state}'
            return response
        buffer.reset()
        response.success = True
        response.message = f'cleared the frames of {buffer.config.num_cameras} camera(s)'
        self.get_logger().info('view buffer reset')
        return response

    # ----------------------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        try:
            msg = DiagnosticArray()
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.status = [self._main_status()] + self._camera_statuses()
            self._diagnostics_pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - a timer callback never kills the spin
            self._warn_throttled('diagnostics', f'diagnostics failed: {type(exc).__name__}: {exc}')

    def _main_status(self) -> DiagnosticStatus:
        config, reconstructor = self._config, self._reconstructor
        status = DiagnosticStatus(name=f'{self.get_name()}: reconstruction',
                                  hardware_id=str(reconstructor.device) if reconstructor else '')
        now = time.monotonic()
        with self._stats_lock:
            run = self._run
            sets_dropped = run.sets_dropped_before + (self._slot.dropped if self._slot else 0)
            drops = {reason: sum(c.drops[reason] for c in self._cameras)
                     for reason in FRAME_DROP_REASONS}
            latency_med = statistics.median(run.latencies_ms) if run.latencies_ms else 0.0
            model_med = statistics.median(run.models_ms) if run.models_ms else 0.0
            values = {
                'state': self._state,
                'trigger': config.trigger if config else '',
                'device': str(reconstructor.device) if reconstructor else '',
                'precision': reconstructor.precision if reconstructor else '',
                'backend': reconstructor.backend if reconstructor else '',
                'weights': config.weights if config else '',
                'threshold': f'{self._threshold():.3f}',
                'reconstructions': str(run.reconstructions),
                'failed_reconstructions': str(sum(run.errors[k] for k in ERROR_KINDS[:3])),
                'last_stamp': '' if run.last_stamp_ns is None else
                f'{run.last_stamp_ns // NS_PER_S}.{run.last_stamp_ns % NS_PER_S:09d}',
                'last_views': run.last_views,
                'last_points': str(run.last_points),
                'latency_ms': f'{run.last_latency_ms:.2f}',
                'model_ms': f'{run.last_model_ms:.2f}',
                'overhead_ms': f'{run.last_latency_ms - run.last_model_ms:.2f}',
                **{k: f'{v:.2f}' for k, v in run.last_breakdown.items()},
                'latency_ms_median': f'{latency_med:.2f}',
                'model_ms_median': f'{model_med:.2f}',
                'sets_dropped': str(sets_dropped),
            }
            values.update({f'frames_dropped.{r}': str(n) for r, n in drops.items()})
            values.update({f'errors.{k}': str(n) for k, n in run.errors.items()})
            last_success, last_message, last_done = run.last_success, run.last_message, \
                run.last_done_s
            count = run.reconstructions
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        if self._state == 'unconfigured':
            status.level = DiagnosticStatus.ERROR if self._configure_error else \
                DiagnosticStatus.WARN
            status.message = (f'configure failed: {self._configure_error}'
                              if self._configure_error else 'unconfigured: waiting for configure')
        elif self._state != 'active':
            status.level = DiagnosticStatus.WARN
            status.message = f'{self._state}: not reconstructing'
        elif last_success is False:
            status.level = DiagnosticStatus.ERROR
            status.message = f'last {last_message}'
        elif self._buffer is not None and self._buffer.status(
                now_ns=self.get_clock().now().nanoseconds).complete_views == 0:
            status.level = DiagnosticStatus.WARN  # e.g. a camera stopped publishing
            status.message = f'waiting for views: {self._explain_incomplete()}'
        else:
            status.level = DiagnosticStatus.OK
            since = '' if last_done is None else f', last {now - last_done:.1f} s ago'
            status.message = (f'{count} reconstruction(s){since}, median latency '
                              f'{latency_med:.0f} ms (model {model_med:.0f} ms)')
        return status

    def _camera_statuses(self) -> list[DiagnosticStatus]:
        config = self._config
        if config is None:
            return []
        now = time.monotonic()
        statuses, changes = [], []
        with self._stats_lock:
            for stats in self._cameras:
                received, mark_time = stats.rate_mark
                rate = (stats.received - received) / (now - mark_time) if mark_time else 0.0
                stats.rate_mark = (stats.received, now)
                age = None if stats.last_accepted_s is None else now - stats.last_accepted_s
                status = DiagnosticStatus(name=f'{self.get_name()}: camera {stats.topic}',
                                          hardware_id=stats.topic)
                silent = self._active and (age is None or age > config.max_frame_age_s)
                if not self._active:
                    status.level, status.message = DiagnosticStatus.OK, self._state
                elif age is None:
                    status.level = DiagnosticStatus.WARN
                    status.message = ('no usable frame yet' if stats.received else
                                      'no frames received yet')
                elif silent:
                    status.level = DiagnosticStatus.WARN
                    status.message = f'no usable frame for {age:.1f} s'
                else:
                    status.level = DiagnosticStatus.OK
                    status.message = f'{rate:.1f} Hz'
                went_silent = silent and age is not None  # it had frames before
                if self._active and went_silent != stats.silent:
                    changes.append((stats.topic, went_silent, status.message))
                stats.silent = went_silent
                values = {'topic': stats.topic, 'rate_hz': f'{rate:.2f}',
                          'frames_received': str(stats.received),
                          'frames_accepted': str(stats.accepted),
                          'last_frame_age_s': '' if age is None else f'{age:.3f}',
                          'encoding': stats.encoding, 'size': stats.size}
                values.update({f'frames_dropped.{r}': str(n) for r, n in stats.drops.items()})
                status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
                statuses.append(status)
        for topic, silent, message in changes:  # log outside the lock, once per change
            if silent:
                self.get_logger().warning(f'camera {topic}: {message}')
            else:
                self.get_logger().info(f'camera {topic}: frames arrive again')
        return statuses


def main(args: Optional[list[str]] = None) -> None:
    """Run the node until Ctrl-C or an external shutdown."""
    rclpy.init(args=args)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    node: Optional[ReconstructionNode] = None
    executor: Optional[SingleThreadedExecutor] = None
    try:
        node = ReconstructionNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        node.start()
        while rclpy.ok() and not node.finalized:  # the shutdown transition ends the process
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            try:
                node.close()
            except Exception as exc:  # noqa: BLE001 - shutting down anyway; say why
                node.get_logger().warning(f'shutdown: {type(exc).__name__}: {exc}')
            node.destroy_node()
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
