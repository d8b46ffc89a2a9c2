"""The node on simulated time over real DDS: a looping bag or a simulator reset, then shutdown.

This process publishes ``/clock`` and camera frames stamped on that clock, as ``ros2 bag play
--loop --clock`` or Gazebo do, to a node started with ``use_sim_time``. When the clock jumps back,
the node must keep reconstructing without anyone calling ``~/reset``. The last test walks the
node through the lifecycle ``shutdown`` transition: the process must then exit by itself.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest
from builtin_interfaces.msg import Time
from lifecycle_msgs.msg import Transition
from rosgraph_msgs.msg import Clock

from ros_helpers import (NodeProcess, Rig, isolate_ros_domain, make_frames, wait_for,
                         write_checkpoint, write_params)
from pix2voxpp_ros.core.views import NS_PER_S

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/p2v_clock/cam0/image', '/p2v_clock/cam1/image']
NODE = '/pix2voxpp'
STARTUP_S = 120.0


class SimClock:
    """Publishes ``/clock`` at 50 Hz from this process; the time is set by the test."""

    def __init__(self, rig: Rig, start_s: float) -> None:
        self._publisher = rig.node.create_publisher(Clock, '/clock', 10)
        self._lock = threading.Lock()
        self._now_ns = int(start_s * NS_PER_S)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with self._lock:
                ns = self._now_ns
            self._publisher.publish(Clock(clock=Time(sec=ns // NS_PER_S,
                                                     nanosec=ns % NS_PER_S)))

    def set(self, seconds: float) -> int:
        """Move the clock to ``seconds`` (forwards or backwards); return it in nanoseconds."""
        with self._lock:
            self._now_ns = int(seconds * NS_PER_S)
            return self._now_ns

    def close(self) -> None:
        """Stop publishing."""
        self._stop.set()
        self._thread.join(5)


class Env(NamedTuple):
    node: NodeProcess
    rig: Rig
    clock: SimClock
    tmp: Path


@pytest.fixture(scope='module')
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    isolate_ros_domain()
    tmp = tmp_path_factory.mktemp('clock')
    weights = write_checkpoint(tmp / 'f.pth', threshold=0.5)
    params = write_params(tmp / 'params.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'use_sim_time': True,
        'sync_slop_s': 0.1, 'max_frame_age_s': 5.0, 'future_tolerance_s': 0.5,
        'max_rate_hz': 0.0, 'device': 'cpu', 'backend': 'torch', 'num_threads': 1})
    rig = Rig(CAMERAS, node=NODE)
    clock = SimClock(rig, start_s=1000.0)
    node = NodeProcess(params, log_path=tmp / 'node.log')
    try:
        rig.wait_for_subscribers(timeout=STARTUP_S)
        yield Env(node, rig, clock, tmp)
    finally:
        clock.close()
        rig.close()
        node.stop()
        print(node.log()[-4000:])  # shown by pytest when a test failed


def reconstruct_at(env: Env, seconds: float, *, seed: int) -> object:
    """Set the clock, publish a frame per camera stamped on it, wait for their cloud."""
    frames = make_frames(len(CAMERAS), seed=seed)

    def published_and_reconstructed() -> object:
        stamp = env.clock.set(seconds)
        time.sleep(0.1)  # not synchronisation: lets /clock reach the node before the frames
        for camera, image in enumerate(frames):
            env.rig.publish(camera, image, stamp)
        try:
            return env.rig.wait_for_cloud(stamp, timeout=3.0)
        except TimeoutError:  # best effort may lose a frame; publish the set again
            return None
    return wait_for(published_and_reconstructed, timeout=60, interval=0.0,
                    what=f'a cloud stamped at {seconds} s of simulated time')


def test_a_clock_jumping_back_does_not_stop_the_reconstructions(env: Env) -> None:
    reconstruct_at(env, 1000.0, seed=1)
    reconstruct_at(env, 1001.0, seed=2)
    # The bag loops: /clock and the stamps start again 990 s earlier. Without clearing the view
    # buffer, every frame would be dropped as out of order for the next 990 s.
    cloud = reconstruct_at(env, 11.0, seed=3)
    assert cloud.header.stamp.sec == 11
    reconstruct_at(env, 12.0, seed=4)
    assert 'the clock jumped back' in env.node.log()
    assert env.node.alive()


def test_the_shutdown_transition_ends_the_process(env: Env) -> None:
    assert env.rig.change_state(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    try:
        code = env.node.proc.wait(30)
    except Exception as exc:  # noqa: BLE001 - subprocess.TimeoutExpired: say what happened
        raise AssertionError('the node kept running after the lifecycle shutdown') from exc
    assert code == 0, env.node.log()[-2000:]
    assert 'finalized' in env.node.log()
