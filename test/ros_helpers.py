"""Helpers shared by the ROS tests and ``benchmarks/bench_node.py``.

They start the real node as its own process, drive it from a second rclpy context in the calling
process (:class:`Rig`: camera publishers, output subscriptions, service clients) and wait for
conditions instead of sleeping. :func:`isolate_ros_domain` gives every test session its own DDS
domain, so parallel runs on one machine never see each other's topics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import numpy as np
import torch
import yaml

from pix2voxpp_ros.core.checkpoint import WeightsMetadata, save_checkpoint
from pix2voxpp_ros.core.model import ModelConfig, build_model

REPO_ROOT = Path(__file__).resolve().parents[1]
NODE_EXECUTABLE = Path(sys.executable).parent / 'pix2voxpp_node'
T = TypeVar('T')


def isolate_ros_domain() -> int:
    """Give this process (and its children) a DDS domain of its own, on localhost only.

    :returns: the domain id, derived from the process id (Fast DDS allows 0 .. 232).
    """
    # Children that call this again (a benchmark's helper process) join their parent's domain.
    domain = int(os.environ.get('PIX2VOXPP_TEST_DOMAIN_ID', 0)) or _own_domain()
    os.environ['PIX2VOXPP_TEST_DOMAIN_ID'] = os.environ['ROS_DOMAIN_ID'] = str(domain)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('RCUTILS_COLORIZED_OUTPUT', '0')
    return domain


def _own_domain() -> int:
    """Return a domain id in 1 .. 200 that no other test process of this run has."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')  # 'gw0', 'gw1', ... under pytest -n
    if worker.startswith('gw') and worker[2:].isdigit():
        # Workers of one run have one parent and numbers 0 .. n-1: distinct ids for n <= 8.
        return 1 + (os.getppid() * 8 + int(worker[2:])) % 200
    return 1 + os.getpid() % 200


def wait_for(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05,
             what: str = 'condition') -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    :raises TimeoutError: it did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(interval)


def write_checkpoint(path: Path, *, seed: int = 0, threshold: float = 0.5,
                     overflow: bool = False) -> Path:
    """Write a small seeded Pix2Vox++/F project checkpoint.

    :param overflow: scale the first convolution by 1e38, so that any non-grey image overflows
        to Inf/NaN while the all-zero warm-up input still passes (to test InferenceError).
    """
    torch.manual_seed(seed)
    model = build_model(ModelConfig.for_variant('F')).eval()
    if overflow:
        with torch.no_grad():
            first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
            first.weight.mul_(1e38)
    save_checkpoint(path, model, metadata=WeightsMetadata(threshold=threshold))
    return path


def write_params(path: Path, params: dict[str, Any], *, node_name: str = 'pix2voxpp') -> Path:
    """Write a ROS 2 parameters file for one node."""
    path.write_text(yaml.safe_dump({node_name: {'ros__parameters': params}}))
    return path


def make_frames(count: int, *, height: int = 48, width: int = 64, seed: int = 0,
                channels: int = 3) -> list[np.ndarray]:
    """Random uint8 images (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


class NodeProcess:
    """The reconstruction node running as a child process, its output in a log file.

    :param params_file: ``--params-file`` for the node.
    :param log_path: where stdout and stderr go (a file: a pipe could fill up and block it).
    :param node_name: remaps the node's name.
    :param log_level: e.g. ``'debug'`` for the node's logger.
    """

    def __init__(self, params_file: Path, *, log_path: Path, node_name: str = 'pix2voxpp',
                 log_level: Optional[str] = None) -> None:
        command = [str(NODE_EXECUTABLE) if NODE_EXECUTABLE.exists() else sys.executable]
        if not NODE_EXECUTABLE.exists():
            command += ['-m', 'pix2voxpp_ros.ros.reconstruction_node']
        command += ['--ros-args', '--params-file', str(params_file),
                    '-r', f'__node:={node_name}']
        if log_level:
            command += ['--log-level', f'{node_name}:={log_level}']
        self.node_name = node_name
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=REPO_ROOT)

    @property
    def pid(self) -> int:
        """The node's process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self.proc.poll() is None

    def log(self) -> str:
        """Everything the node printed so far."""
        return self.log_path.read_text(errors='replace')

    def stop(self, *, timeout: float = 30.0) -> Optional[int]:
        """Ctrl-C the node, wait for it, kill it if it hangs; return its exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def cloud_to_array(cloud: Any) -> np.ndarray:
    """Decode a PointCloud2 with float32 fields into an ``(N, F)`` array, fields in order."""
    names = [f.name for f in cloud.fields]
    dtype = np.dtype({'names': names, 'formats': ['>f4' if cloud.is_bigendian else '<f4'] *
                      len(names), 'offsets': [f.offset for f in cloud.fields],
                      'itemsize': cloud.point_step})
    rows = np.frombuffer(bytes(cloud.data), dtype=dtype, count=cloud.width * cloud.height)
    return np.stack([rows[n].astype(np.float32) for n in names], axis=-1).reshape(-1, len(names))


def diagnostics_by_name(msg: Any) -> dict[str, tuple[int, str, dict[str, str]]]:
    """``{status name: (level, message, {key: value})}`` of a DiagnosticArray."""
    return {s.name: (int.from_bytes(s.level, 'little') if isinstance(s.level, bytes)
                     else int(s.level), s.message, {kv.key: kv.value for kv in s.values})
            for s in msg.status}


class Rig:
    """A test-side ROS node with its own context: cameras out, node outputs in, service calls.

    :param cameras: topics to publish images on.
    :param node: fully qualified name of the node under test.
    :param reliable: publish images reliably (else best effort, like cameras).
    """

    def __init__(self, cameras: list[str], *, node: str = '/pix2voxpp',
                 reliable: bool = False) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile,
                               ReliabilityPolicy)
        from sensor_msgs.msg import Image, PointCloud2

        self.target = node
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f'pix2voxpp_test_rig_{id(self):x}', context=self.context)
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                               reliability=ReliabilityPolicy.RELIABLE if reliable
                               else ReliabilityPolicy.BEST_EFFORT)
        self.publishers = [self.node.create_publisher(Image, topic, image_qos)
                           for topic in cameras]
        output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                                reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.VOLATILE)
        self.lock = threading.Lock()
        self._last_set_ns = 0  # stamp of the newest set from fresh_stamp()
        self._subscriptions: dict[int, Any] = {}
        self.clouds: list[tuple[float, Any]] = []  # (monotonic receive time, message)
        self.diagnostics: list[tuple[float, Any]] = []
        self.node.create_subscription(PointCloud2, f'{node}/occupancy', self._on_cloud,
                                      output_qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down under us
            pass

    def _on_cloud(self, msg: Any) -> None:
        with self.lock:
            self.clouds.append((time.monotonic(), msg))

    def _on_diagnostics(self, msg: Any) -> None:
        if any(s.name.startswith(f'{self.target.rsplit("/", 1)[-1]}: ') for s in msg.status):
            with self.lock:
                self.diagnostics.append((time.monotonic(), msg))

    def subscribe(self, msg_type: Any, topic: str, *, depth: int = 10,
                  durability: str = 'volatile') -> list:
        """Record every message of ``topic`` into the returned list (reliable QoS).

        :param durability: ``'transient_local'`` also receives what a latched topic holds.
        """
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL
                         if durability == 'transient_local' else DurabilityPolicy.VOLATILE)
        received: list = []
        self._subscriptions[id(received)] = self.node.create_subscription(
            msg_type, topic, received.append, qos)
        return received

    def unsubscribe(self, received: list) -> None:
        """Stop recording into a list that :meth:`subscribe` returned."""
        self.node.destroy_subscription(self._subscriptions.pop(id(received)))

    # ------------------------------------------------------------------ publishing

    def publish(self, camera: int, image: np.ndarray, stamp_ns: int, *,
                encoding: str = 'rgb8') -> None:
        """Publish one frame on camera ``camera``."""
        from pix2voxpp_ros.ros.conversions import array_to_image, ns_to_stamp
        self.publishers[camera].publish(array_to_image(image, encoding=encoding,
                                                       stamp=ns_to_stamp(stamp_ns)))

    def publish_message(self, camera: int, msg: Any) -> None:
        """Publish a hand-built (possibly malformed) Image message."""
        self.publishers[camera].publish(msg)

    def now_ns(self) -> int:
        """Return the rig's ROS time (system time) in nanoseconds."""
        return self.node.get_clock().now().nanoseconds

    def fresh_stamp(self, min_gap_s: float) -> int:
        """Return a stamp for a new view set, at least ``min_gap_s`` after the previous one.

        The node may legitimately combine frames of two sets published closer together than its
        sync slop (a frame of the new set completes the old one), so a test that compares a
        cloud with its own frames must space its sets by more than the slop.
        """
        # The rig's clock is system time, so sleeping the difference is enough.
        wait_s = (self._last_set_ns - self.now_ns()) / 1e9 + min_gap_s
        if wait_s > 0:
            time.sleep(wait_s)
        self._last_set_ns = self.now_ns()
        return self._last_set_ns

    def wait_for_subscribers(self, *, timeout: float = 30.0,
                             cameras: Optional[list[int]] = None) -> None:
        """Wait until the node under test subscribes to the cameras (default: all of them)."""
        publishers = self.publishers if cameras is None else [self.publishers[c] for c in cameras]
        wait_for(lambda: all(p.get_subscription_count() > 0 for p in publishers),
                 timeout=timeout, what='the node to subscribe to the cameras')

    # ------------------------------------------------------------------ receiving

    def clouds_since(self, index: int) -> list[Any]:
        """Clouds received after the first ``index`` ones."""
        with self.lock:
            return [msg for _, msg in self.clouds[index:]]

    def cloud_count(self) -> int:
        """Clouds received so far."""
        with self.lock:
            return len(self.clouds)

    def wait_for_cloud(self, stamp_ns: int, *, timeout: float = 60.0) -> Any:
        """Wait for a cloud stamped ``stamp_ns`` (the last such one when several came)."""
        from pix2voxpp_ros.ros.conversions import stamp_to_ns

        def find() -> Any:
            with self.lock:
                hits = [m for _, m in self.clouds if stamp_to_ns(m.header.stamp) == stamp_ns]
            return hits[-1] if hits else None
        return wait_for(find, timeout=timeout, what=f'a cloud stamped {stamp_ns}')

    def latest_diagnostics(self) -> dict[str, tuple[int, str, dict[str, str]]]:
        """Return the node's newest diagnostics by status name (empty before the first)."""
        with self.lock:
            return diagnostics_by_name(self.diagnostics[-1][1]) if self.diagnostics else {}

    def wait_for_diagnostics(self, predicate: Callable[[dict], Any], *, timeout: float = 30.0,
                             what: str = 'diagnostics') -> dict:
        """Wait for a diagnostics message (received from now on) for which predicate holds."""
        with self.lock:
            start = len(self.diagnostics)

        def find() -> Any:
            with self.lock:
                fresh = [m for _, m in self.diagnostics[start:]]
            for msg in reversed(fresh):
                statuses = diagnostics_by_name(msg)
                try:
                    if predicate(statuses):
                        return statuses
                except (KeyError, ValueError):  # a status or value not (yet) there
                    pass
            return None
        return wait_for(find, timeout=timeout, what=what)

    # ------------------------------------------------------------------ services

    def call(self, srv_type: Any, name: str, request: Any = None, *,
             timeout: float = 60.0) -> Any:
        """Call a service and return its response."""
        client = self.node.create_client(srv_type, name)
        try:
            wait_for(lambda: client.service_is_ready(), timeout=timeout,
                     what=f'service {name}')
            future = client.call_async(request if request is not None else srv_type.Request())
            wait_for(future.done, timeout=timeout, what=f'the answer of {name}')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def parameter_types(self, *names: str) -> list[int]:
        """Return the node's type codes of ``names`` as ``ros2 param get`` sees them."""
        from rcl_interfaces.srv import GetParameters
        reply = self.call(GetParameters, f'{self.target}/get_parameters',
                          GetParameters.Request(names=list(names)))
        return [value.type for value in reply.values]

    def lifecycle_state(self) -> str:
        """Return the node's lifecycle state label (via lifecycle_msgs/GetState)."""
        from lifecycle_msgs.srv import GetState
        return self.call(GetState, f'{self.target}/get_state').current_state.label

    def change_state(self, transition: int) -> bool:
        """Request a lifecycle transition (lifecycle_msgs/ChangeState); True on success."""
        from lifecycle_msgs.srv import ChangeState
        request = ChangeState.Request()
        request.transition.id = transition
        return bool(self.call(ChangeState, f'{self.target}/change_state', request).success)

    def set_parameters(self, **values: Any) -> list[Any]:
        """Set parameters of the node under test; return the SetParametersResult list."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        request = SetParameters.Request()
        request.parameters = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        return list(self.call(SetParameters, f'{self.target}/set_parameters', request).results)

    def close(self) -> None:
        """Shut the rig's context down."""
        import rclpy
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        self._thread.join(5.0)
