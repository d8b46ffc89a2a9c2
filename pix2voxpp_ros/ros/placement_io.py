"""The node's calibration inputs and placement outputs (``placement: calibrated``).

:class:`CalibrationInputs` lives from activate to deactivate: it subscribes to each camera's
``sensor_msgs/CameraInfo`` (kept in the core's :class:`~..core.calibration.CameraInfos`) and
picks where camera poses come from: fixed ``camera_poses`` when given, else TF
(:class:`~.tf_poses.TfPoses`, a ``tf2_ros`` buffer and listener on the node). Without either,
activate fails with the reason.

:class:`PlacementPublisher` publishes ``~/object_pose`` (``geometry_msgs/PoseStamped``, the
grid's centre and axes in ``fixed_frame``) and broadcasts the object's TF frame
(``fixed_frame`` -> ``frame_id``) where ``tf2_ros`` imports.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Optional

from geometry_msgs.msg import PoseStamped, TransformStamped
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from ..core.calibration import CameraInfos, FixedPoses, PoseSource
from ..core.errors import Pix2VoxError
from ..core.node_config import NodeConfig
from ..core.placement import ObjectPose
from .tf_poses import TfPoses, tf_available


class CalibrationUnavailableError(Pix2VoxError, RuntimeError):
    """Neither ``camera_poses`` nor ``tf2_ros``: the node has no way to know camera poses."""


def pose_to_message(pose: ObjectPose, header: Header) -> PoseStamped:
    """Build ``~/object_pose``: the grid's centre and axes (turned by the heading about z)."""
    msg = PoseStamped(header=header)
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = \
        (float(v) for v in pose.position)
    msg.pose.orientation.z = math.sin(0.5 * pose.heading_rad)
    msg.pose.orientation.w = math.cos(0.5 * pose.heading_rad)
    return msg


def pose_to_transform(pose: ObjectPose, header: Header, child_frame: str) -> TransformStamped:
    """Build the object's TF frame: ``header.frame_id`` (the fixed frame) -> ``child_frame``."""
    msg = TransformStamped(header=header, child_frame_id=child_frame)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = \
        (float(v) for v in pose.position)
    msg.transform.rotation.z = math.sin(0.5 * pose.heading_rad)
    msg.transform.rotation.w = math.cos(0.5 * pose.heading_rad)
    return msg


class CalibrationInputs:
    """Camera infos and camera poses for one activation.

    :param node: the node (subscriptions, TF listener).
    :param config: its configuration (``placement: calibrated``).
    :param qos: the QoS of the camera subscriptions (camera_info is published like images).
    :raises CalibrationUnavailableError: no ``camera_poses`` and no ``tf2_ros``.
    """

    def __init__(self, node: Any, config: NodeConfig, *, qos: Any) -> None:
        self._node = node
        self.infos = CameraInfos(len(config.camera_topics))
        self._tf: Optional[TfPoses] = None
        if config.camera_poses:
            self.poses: PoseSource = FixedPoses(config.camera_poses, len(config.camera_topics))
            self.source = 'camera_poses'
        elif tf_available():
            self._tf = TfPoses(node, config.fixed_frame)
            self.poses = self._tf
            self.source = 'TF'
        else:
            raise CalibrationUnavailableError(
                'placement calibrated needs camera poses: tf2_ros does not import here; '
                'install ROS 2 tf2_ros or give camera_poses')
        self.topics = list(config.info_topics())
        self._subscriptions = [
            node.create_subscription(CameraInfo, topic, partial(self._on_info, index), qos)
            for index, topic in enumerate(self.topics)]

    def _on_info(self, camera: int, msg: CameraInfo) -> None:
        # Checked when a frame needs it; a bad one is kept as its error (bad_camera_info).
        try:
            self.infos.update(camera, list(msg.k), int(msg.width), int(msg.height))
        except Exception:  # noqa: BLE001 - callbacks never kill the spin
            self.infos.update(camera, [], 0, 0)

    def close(self) -> None:
        """Unsubscribe (camera infos and TF)."""
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._subscriptions = []
        if self._tf is not None:
            self._tf.close()
            self._tf = None


class PlacementPublisher:
    """``~/object_pose`` and the object's TF frame.

    :param node: a lifecycle node.
    :param qos: the outputs' QoS (latched).
    """

    def __init__(self, node: Any, qos: Any) -> None:
        self._pose_pub = node.create_lifecycle_publisher(PoseStamped, '~/object_pose', qos)
        self._broadcaster = None
        if tf_available():
            from tf2_ros import TransformBroadcaster
            self._broadcaster = TransformBroadcaster(node)

    def publish(self, pose: ObjectPose, header: Header, *, object_frame: str) -> None:
        """Publish the pose (``header.frame_id`` is the fixed frame) and its TF frame."""
        self._pose_pub.publish(pose_to_message(pose, header))
        if self._broadcaster is not None:
            self._broadcaster.sendTransform(pose_to_transform(pose, header, object_frame))
