"""Camera poses through the real TF stack: a broadcaster process, ``tf2_ros`` in this one.

The placement of reconstructions in the robot's world builds on this round trip: a camera's
pose published as TF (static for a fixed camera, at 20 Hz for a moving one) comes back from
:class:`pix2voxpp_ros.ros.tf_poses.TfPoses` as the 4×4 matrix the core computes from the same
numbers, at the image's stamp (interpolated between two transforms), and a missing or late
frame is a :class:`PoseUnavailableError`, never a hang. Skipped where tf2_ros does not import.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Iterator

import numpy as np
import pytest

from ros_helpers import isolate_ros_domain, wait_for
from pix2voxpp_ros.core.geometry import pose_matrix

pytestmark = [pytest.mark.robot_tools('tf2_ros'), pytest.mark.timeout(120)]

STATIC = ((0.8, -0.2, 1.1), (0.1, 0.7, -0.2, 0.6))  # not normalized: TF normalizes too
SPEED_M_S = 0.5  # the moving camera: x = SPEED * (t - t0), a fixed yaw of 90 degrees
YAW_90 = (0.0, 0.0, 2 ** -0.5, 2 ** -0.5)

BROADCASTER = f"""
import sys, time
import rclpy
from geometry_msgs.msg import TransformStamped
from tf2_ros import StaticTransformBroadcaster, TransformBroadcaster

def transform(node, child, stamp, xyz, q):
    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, 'world', child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = xyz
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = q
    return msg

rclpy.init()
node = rclpy.create_node('p2v_test_tf_broadcaster')
t0 = int(sys.argv[1])
static = StaticTransformBroadcaster(node)
static.sendTransform(transform(node, 'camera_static', node.get_clock().now().to_msg(),
                               {STATIC[0]!r}, {STATIC[1]!r}))
moving = TransformBroadcaster(node)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    now = node.get_clock().now()
    x = {SPEED_M_S!r} * (now.nanoseconds - t0) / 1e9
    moving.sendTransform(transform(node, 'camera_moving', now.to_msg(), (x, 0.0, 0.3),
                                   {YAW_90!r}))
    rclpy.spin_once(node, timeout_sec=0.05)
node.destroy_node()
rclpy.shutdown()
"""


@pytest.fixture
def tf() -> Iterator:
    """Start a broadcaster process and, here, a node with TfPoses spun by a thread."""
    isolate_ros_domain()
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from pix2voxpp_ros.ros.tf_poses import TfPoses

    t0 = time.time_ns()
    broadcaster = subprocess.Popen([sys.executable, '-c', BROADCASTER, str(t0), '60'])
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('p2v_test_tf_listener', context=context)
    poses = TfPoses(node, 'world')
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield poses, t0
    finally:
        broadcaster.kill()
        broadcaster.wait(10)
        poses.close()
        # Jazzy's rclpy aborts a process whose executor still spins while the node goes.
        executor.shutdown(timeout_sec=5.0)
        thread.join(5.0)
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_a_static_camera_pose_comes_back_as_the_core_matrix(tf) -> None:
    poses, _ = tf
    pose = poses.pose('camera_static', 0, timeout_s=30.0)
    np.testing.assert_allclose(pose, pose_matrix(*STATIC), atol=1e-9)
    # The pose maps the camera's origin and axes into the world.
    assert np.allclose(pose @ [0, 0, 0, 1], [*STATIC[0], 1])


def test_a_moving_camera_is_looked_up_at_the_images_stamp(tf) -> None:
    poses, t0 = tf
    wait_for(lambda: _has(poses, 'camera_moving'), timeout=30, what='the moving camera')
    time.sleep(0.5)  # several transforms on either side of the stamp below
    stamp = time.time_ns() - 250_000_000  # between two of the 20 Hz transforms
    pose = poses.pose('camera_moving', stamp, timeout_s=2.0)
    expected = pose_matrix((SPEED_M_S * (stamp - t0) / 1e9, 0.0, 0.3), YAW_90)
    np.testing.assert_allclose(pose, expected, atol=1e-6)  # interpolated, not the nearest
    # A stamp a second later: TF waits up to the timeout, then has it.
    later = time.time_ns() + 1_000_000_000
    pose_later = poses.pose('camera_moving', later, timeout_s=5.0)
    assert pose_later[0, 3] == pytest.approx(SPEED_M_S * (later - t0) / 1e9, abs=1e-6)


def test_missing_and_too_old_frames_are_unavailable_not_a_hang(tf) -> None:
    from pix2voxpp_ros.ros.tf_poses import PoseUnavailableError
    poses, _ = tf
    wait_for(lambda: _has(poses, 'camera_moving'), timeout=30, what='the moving camera')
    started = time.monotonic()
    with pytest.raises(PoseUnavailableError, match='no_such_camera'):
        poses.pose('no_such_camera', 0, timeout_s=0.5)
    assert time.monotonic() - started < 10  # the timeout bounds the wait
    with pytest.raises(PoseUnavailableError, match='camera_moving'):
        poses.pose('camera_moving', time.time_ns() - 3600 * 10 ** 9)  # before the buffer


def _has(poses, frame: str) -> bool:
    from pix2voxpp_ros.ros.tf_poses import PoseUnavailableError
    try:
        poses.pose(frame, 0)
        return True
    except PoseUnavailableError:
        return False
