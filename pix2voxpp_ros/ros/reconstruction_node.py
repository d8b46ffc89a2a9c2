"""The Pix2Vox++ reconstruction node (``pix2voxpp_node``): camera frames in, occupancy grid out.

A lifecycle node over the core:

* **configure** reads the parameters (:mod:`.params`), loads the weights into a
  :class:`~pix2voxpp_ros.core.inference.Reconstructor` and runs a warm-up pass; a bad parameter or
  weights file makes it fail with the reason logged once and shown in ``/diagnostics``; the
  process stays up, unconfigured;
* **activate** subscribes to the cameras and starts the inference worker;
* **deactivate** unsubscribes and stops the worker; **cleanup** frees the model (and the CUDA
  cache); ``autostart`` (default true) walks the node to active by itself.

Threads: image callbacks (:mod:`.inputs`) only validate, wrap and store frames in the core's
:class:`~pix2voxpp_ros.core.views.ViewBuffer` and, with ``trigger: auto``, put a newly complete
view set into the one-slot queue; one worker thread (:mod:`.worker`) runs the network and
publishes (:mod:`.outputs`). The node spins on a single-threaded executor (measurably faster per
frame than rclpy's multi-threaded one); ``~/reconstruct``, which waits for its result, is served
by a hidden helper node on a thread of its own (:mod:`.services`), so the wait never blocks image
callbacks, diagnostics (:mod:`.diagnostics`) or lifecycle services. This module owns the
lifecycle and the parameters; the modules named hold the rest.

Topics: ``~/occupancy`` (PointCloud2), ``~/markers`` (MarkerArray), ``~/grid`` (dense
PointCloud2 of every voxel), ``/diagnostics``; with ``placement: calibrated``
(:mod:`.placement_io`) also ``~/object_pose`` (PoseStamped) and the object's TF frame, the
outputs in ``fixed_frame``; with ``mask_mode: instances`` (:mod:`.object_outputs`) every
object of instance label images in one cloud, ``~/objects`` (PoseArray), ``~/detections`` and
MoveIt collision objects where their packages import. Services: ``~/reconstruct`` and
``~/reset`` (std_srvs/Trigger), plus the standard lifecycle services.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from typing import Any, Optional

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import JumpThreshold, TimeJump
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter

from ..core.errors import Pix2VoxError
from ..core.inference import Reconstructor
from ..core.node_config import (PARAMETER_NAMES, NodeConfig, NodeConfigError, change_problem,
                                coerce, config_from_values)
from ..core.pending_slot import PendingSlot
from ..core.views import NS_PER_S, ViewBuffer
from .diagnostics import NodeStats, ThrottledLog
from .inputs import CameraInputs, frame_preparer, image_qos
from .outputs import OUTPUT_QOS, Placing, ResultPublisher, failed_outcome, reconstruct_and_publish
from .object_outputs import ObjectPublisher, reconstruct_objects_and_publish
from .placement_io import CalibrationInputs, PlacementPublisher
from .params import declare_parameters, read_values
from .services import SERVICE_TIMEOUT_S, NodeServices, Snapshot, waiting_for_views
from .worker import Job, Outcome, ViewPreparer, Worker, WorkerHandle, merge_jobs

NODE_NAME = 'pix2voxpp'
DIAGNOSTICS_PERIOD_S = 1.0
CLOCK_JUMP_BACK_S = 0.1  # a backward clock jump larger than this clears the view buffer
# Frames pass from the executor thread to the preparer and the worker threads; CPython's default
# 5 ms GIL switch interval would add up to that much to each hand-off while a thread computes.
GIL_SWITCH_INTERVAL_S = 0.001


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
        self._inputs: Optional[CameraInputs] = None
        self._topics: list[str] = []
        self._active = False
        self._threshold_param = -1.0
        self._stats = NodeStats(self.get_name())
        self._log = ThrottledLog(self.get_logger())
        self._outputs = ResultPublisher(self, self._log)
        self._placement_outputs = PlacementPublisher(self, OUTPUT_QOS)
        self._object_outputs = ObjectPublisher(self)
        self._calibration: Optional[CalibrationInputs] = None
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # A looping bag or a simulator reset moves /clock back: old stamps would make every new
        # frame "out of order", so the buffer starts afresh.
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(seconds=-CLOCK_JUMP_BACK_S),
                          on_clock_change=True),
            post_callback=self._on_clock_jump)
        self._services_api = NodeServices(self, self._snapshot)

    def destroy_node(self) -> None:
        """Stop the service helper, then destroy the node."""
        self._services_api.close()
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
        self._preparer = ViewPreparer(frame_preparer(reconstructor, config),
                                      threads=min(warmup, os.cpu_count() or 1),
                                      capacity=2 * warmup + 1)
        self._threshold_param = config.threshold
        self._configure_error = ''
        self._stats.reset(config.camera_topics)
        self.get_logger().info(
            f'configured in {time.perf_counter() - start:.1f} s: Pix2Vox++/'
            f'{reconstructor.model.config.variant} on {reconstructor.device} '
            f'({reconstructor.precision}, {reconstructor.backend}), {config.describe_mode()}, '
            f'trigger {config.trigger}, threshold {self._threshold():.2f}')
        self._state = 'inactive'
        return super().on_configure(state)

    def _configure_failed(self, exc: Exception) -> TransitionCallbackReturn:
        self._release_model()
        if isinstance(exc, NodeConfigError):
            reason = 'invalid parameters: ' + '; '.join(exc.problems)
        else:
            reason = str(exc) or type(exc).__name__
        self._configure_error = reason
        if isinstance(exc, (Pix2VoxError, ValueError, OSError)):
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
            if config.calibrated:
                self._calibration = CalibrationInputs(
                    self, config, qos=image_qos(config.qos_reliability))
            self._inputs = CameraInputs(
                self, config, buffer=self._buffer, slot=self._slot, worker=self._worker,
                preparer=self._preparer, stats=self._stats, log=self._log,
                is_active=lambda: self._active, calibration=self._calibration)
            self._topics = self._inputs.topics
            if config.instances:
                for notice in self._object_outputs.activate(config):
                    self.get_logger().info(notice)
        except Exception as exc:  # noqa: BLE001 - e.g. an invalid topic name
            self.get_logger().error(f'activate failed: {type(exc).__name__}: {exc}')
            self._stop_worker()
            return TransitionCallbackReturn.FAILURE
        self._stats.rename(self._topics)
        calibration = self._calibration
        where = (f'placed in {config.fixed_frame} (camera_info on '
                 f'{", ".join(calibration.topics)}, camera poses from {calibration.source}), '
                 f'object frame {config.frame_id}' if calibration is not None
                 else f'in frame {config.frame_id}')
        self.get_logger().info(f'active: listening to {", ".join(self._topics)} '
                               f'({config.qos_reliability}); publishing ~/occupancy {where}')
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
        inputs, self._inputs = self._inputs, None
        if inputs is not None:
            inputs.close()
        calibration, self._calibration = self._calibration, None
        if calibration is not None:
            calibration.close()
        self._object_outputs.deactivate()
        slot = self._slot
        self._worker = None
        if not self._workers.stop(timeout=SERVICE_TIMEOUT_S):
            self.get_logger().warning('a reconstruction is still running; it is abandoned (the '
                                      'node activates again only after it has ended)')
        if slot is not None:
            self._stats.sets_dropped(slot.dropped)
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
            problem = change_problem(ours, current=read_values(self), state=self._state)
            if problem is not None:
                return SetParametersResult(successful=False, reason=problem)
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

    # ----------------------------------------------------------------------------- worker

    def _process(self, job: Job) -> Outcome:
        """Reconstruct one view set and publish cloud, grid and (when watched) markers."""
        reconstructor, config, preparer = self._reconstructor, self._config, self._preparer
        if reconstructor is None or config is None or preparer is None:
            return Outcome(False, 'the node is not configured')
        calibration, inputs = self._calibration, self._inputs
        placing = None
        if config.calibrated:
            if calibration is None or inputs is None:
                return Outcome(False, 'the node is not active')
            placing = Placing(calibration.poses, self._placement_outputs, inputs.report_drop)
        if config.instances and placing is not None:
            return reconstruct_objects_and_publish(
                job, reconstructor=reconstructor, config=config, threshold=self._threshold(),
                publisher=self._outputs, objects=self._object_outputs, placing=placing,
                stats=self._stats, topics=self._topics, logger=self.get_logger(),
                log=self._log)
        return reconstruct_and_publish(
            job, reconstructor=reconstructor, preparer=preparer, config=config,
            threshold=self._threshold(), publisher=self._outputs, stats=self._stats,
            topics=self._topics, logger=self.get_logger(), log=self._log, placing=placing)

    def _on_worker_error(self, job: Job, exc: Exception) -> Outcome:
        return failed_outcome(job, exc, stats=self._stats, log=self._log, topics=self._topics,
                              shutting_down=lambda: not self.context.ok())

    # ----------------------------------------------------------------------------- callbacks

    def _snapshot(self) -> Snapshot:
        return Snapshot(self._state, self._active, self._config, self._buffer, self._slot,
                        self._topics)

    def _on_clock_jump(self, jump: TimeJump) -> None:
        """Clock jump callback: a backward jump (bag loop, simulator reset) clears the buffer."""
        buffer = self._buffer
        if buffer is None:
            return
        buffer.reset()
        back_s = -jump.delta.nanoseconds / NS_PER_S
        self.get_logger().warning(f'the clock jumped back by {back_s:.3f} s (bag loop or '
                                  'simulator reset?): view buffer cleared')

    def _publish_diagnostics(self) -> None:
        try:
            config, slot, buffer = self._config, self._slot, self._buffer
            self._diagnostics_pub.publish(self._stats.diagnostics(
                stamp=self.get_clock().now().to_msg(), state=self._state, active=self._active,
                configure_error=self._configure_error, config=config,
                reconstructor=self._reconstructor, threshold=self._threshold(),
                pending_dropped=slot.dropped if slot else 0, logger=self.get_logger(),
                waiting_for=lambda: waiting_for_views(
                    config, buffer, now_ns=self.get_clock().now().nanoseconds,
                    topics=self._topics)))
        except Exception as exc:  # noqa: BLE001 - a timer callback never kills the spin
            self._log.warn('diagnostics', f'diagnostics failed: {type(exc).__name__}: {exc}')


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
        # ros2 launch forwards a second Ctrl-C while we clean up: finish cleaning up anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
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
