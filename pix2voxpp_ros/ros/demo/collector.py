"""The demo's ROS side of scoring: subscribe to the rig and the node, feed what comes to the core.

:class:`Scorer` subscribes (in the demo's own node) to the rig's object names, ground truth,
images and masks and to the reconstruction node's clouds, converts each message to arrays and
feeds a :class:`~pix2voxpp_ros.core.scoring.StampScorer`, which pairs them by stamp and scores.

With ``placement: calibrated`` (``placed``) it also takes the node's ``~/object_pose`` and the
grid's size from ``~/grid`` (``~/object_pose`` carries no size), the rig's
``~/true_placement``, and for the pictures each camera's ``camera_info`` and its pose in the
fixed frame (TF at the cloud's stamp, or the fixed ``camera_poses`` the node got).
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import cv2
import numpy as np

from ...core.clouds import cloud_points
from ...core.placement import ObjectPose
from ...core.scoring import ScoredObject, StampScorer
# The node's name from launch_support: reconstruction_node's import would load torch.
from ..launch_support import NODE_NAME
from ..rig_topics import (OBJECT_TOPIC, TRUTH_TOPIC, image_topic, info_topic, mask_topic,
                          true_placement_topic)
from .scene_setup import NUM_CAMERAS

CLOUD_FIELDS = ('x', 'y', 'z', 'occupancy')  # the node's ~/occupancy fields
OCCUPANCY_TOPIC = f'/{NODE_NAME}/occupancy'  # the node's ~/occupancy
OBJECT_POSE_TOPIC = f'/{NODE_NAME}/object_pose'  # placed: the grid's centre and heading
GRID_TOPIC = f'/{NODE_NAME}/grid'  # placed: the dense grid, whose spacing is the size / 32
TF_TIMEOUT_S = 0.5  # a picture's camera pose at its stamp


def heading_of(orientation) -> float:
    """Return the turn about z of a quaternion that turns about z only (``~/object_pose``)."""
    return 2.0 * math.atan2(orientation.z, orientation.w)


class Scorer:
    """Collect the rig's truth and views and the node's clouds; pair them by stamp."""

    def __init__(self, node, *, object_size_m: float, cameras: int = NUM_CAMERAS,
                 compressed: bool = False, masks: bool = False, settle_s: float = 0.0,
                 placed: bool = False, true_pose: Optional[ObjectPose] = None,
                 camera_poses: Sequence[np.ndarray] = (), fixed_frame: str = '') -> None:
        # node: rclpy.node.Node; masks: also keep the rig's object masks (for the pictures);
        # settle_s: score clouds stamped at least this long after their object's first tick;
        # placed: clouds in fixed_frame (see the module); true_pose: the truth's fixed placement
        # when the rig publishes none; camera_poses: (4, 4) each, fixed, else TF.
        from sensor_msgs.msg import CompressedImage, Image, PointCloud2
        from std_msgs.msg import String

        from ..conversions import (compressed_to_array, compressed_topic, image_to_array,
                                   stamp_to_ns)
        self._image_to_array = image_to_array
        self._compressed_to_array = compressed_to_array
        self._stamp_to_ns = stamp_to_ns
        self.scores = StampScorer(object_size_m=object_size_m, cameras=cameras,
                                  settle_s=settle_s, placed=placed, true_pose=true_pose)
        self._camera_poses = list(camera_poses)
        self._frame_ids: dict[int, str] = {}  # camera -> its images' optical frame
        self._intrinsics: dict[int, np.ndarray] = {}  # camera -> K (3, 3), latest camera_info
        self._tf = None
        self._calibrated: set[int] = set()  # stamps of the scored clouds given a calibration
        if placed:
            self._listen_placement(node, cameras, fixed_frame)
        images = [compressed_topic(image_topic(i)) if compressed else image_topic(i)
                  for i in range(cameras)]
        self._first_image_topic = images[0]
        qos = 10
        node.create_subscription(String, OBJECT_TOPIC, self._on_object, qos)
        node.create_subscription(PointCloud2, TRUTH_TOPIC, self._on_truth, qos)
        node.create_subscription(PointCloud2, OCCUPANCY_TOPIC, self._on_cloud, qos)
        for i, topic in enumerate(images):
            node.create_subscription(CompressedImage if compressed else Image, topic,
                                     lambda msg, i=i: self._on_image(i, msg), qos)
            if masks:
                node.create_subscription(Image, mask_topic(i),
                                         lambda msg, i=i: self._on_mask(i, msg), qos)

    def _listen_placement(self, node, cameras: int, fixed_frame: str) -> None:
        """Subscribe to the placement's topics (and TF for the pictures' camera poses)."""
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, PointCloud2
        from visualization_msgs.msg import Marker

        from ..conversions import dense_cloud_to_grid
        from ..tf_poses import TfPoses, tf_available
        self._dense_cloud_to_grid = dense_cloud_to_grid
        qos = 10
        node.create_subscription(PoseStamped, OBJECT_POSE_TOPIC, self._on_object_pose, qos)
        node.create_subscription(PointCloud2, GRID_TOPIC, self._on_grid, qos)
        node.create_subscription(Marker, true_placement_topic(), self._on_true_placement, qos)
        for i in range(cameras):
            node.create_subscription(CameraInfo, info_topic(i),
                                     lambda msg, i=i: self._on_info(i, msg), qos)
        if not self._camera_poses and tf_available():
            self._tf = TfPoses(node, fixed_frame)

    @property
    def latencies(self) -> list[float]:
        """Seconds from each cloud's stamp to its arrival, in arrival order."""
        return self.scores.latencies

    def node_listening(self, node) -> bool:
        """Whether the reconstruction node subscribes to the first camera (it is active)."""
        return any(info.node_name == NODE_NAME
                   for info in node.get_subscriptions_info_by_topic(self._first_image_topic))

    def score(self) -> list[ScoredObject]:
        """Score what can be scored; see :meth:`StampScorer.score`.

        Placed objects get each view's calibration for the pictures, where it is known.
        """
        scored = self.scores.score()
        for item in scored:
            if item.pose is not None and item.stamp_ns not in self._calibrated:
                self._calibrated.add(item.stamp_ns)  # once: a TF look-up may wait
                item.calibration = self._calibration(item.stamp_ns, len(item.views))
        return scored

    def missed(self) -> list[str]:
        """Objects shown before the last scored one without a scored cloud (see StampScorer)."""
        return self.scores.missed()

    def _calibration(self, stamp_ns: int, cameras: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each camera's K and pose in the fixed frame at ``stamp_ns``; [] where one is unknown.

        Called from the demo's main thread, so a TF look-up may wait while the executor's
        thread delivers ``/tf``.
        """
        from ..tf_poses import PoseUnavailableError
        out = []
        for i in range(cameras):
            intrinsics = self._intrinsics.get(i)
            if intrinsics is None:
                return []
            if i < len(self._camera_poses):
                pose = self._camera_poses[i]
            elif self._tf is not None and i in self._frame_ids:
                try:
                    pose = self._tf.pose(self._frame_ids[i], stamp_ns, timeout_s=TF_TIMEOUT_S)
                except PoseUnavailableError:
                    return []
            else:
                return []
            out.append((intrinsics, pose))
        return out

    def _on_object(self, msg) -> None:
        name, stamp = msg.data.rsplit(' ', 1)
        self.scores.add_name(int(stamp), name)

    def _on_truth(self, msg) -> None:
        self.scores.add_truth(self._stamp_to_ns(msg.header.stamp), cloud_points(msg))

    def _on_image(self, camera: int, msg) -> None:
        if hasattr(msg, 'format'):  # CompressedImage: decoded as BGR
            image = cv2.cvtColor(self._compressed_to_array(msg)[0], cv2.COLOR_BGR2RGB)
        else:
            image = self._image_to_array(msg)
        self._frame_ids[camera] = msg.header.frame_id
        self.scores.add_view(self._stamp_to_ns(msg.header.stamp), camera, image)

    def _on_mask(self, camera: int, msg) -> None:
        mask = self._image_to_array(msg).reshape(msg.height, msg.width)
        self.scores.add_mask(self._stamp_to_ns(msg.header.stamp), camera, mask)

    def _on_cloud(self, msg) -> None:
        stamp = self._stamp_to_ns(msg.header.stamp)
        latency = time.time() - stamp / 1e9  # the rig stamps with the system clock
        self.scores.add_cloud(stamp, cloud_points(msg, CLOUD_FIELDS).copy(), latency)

    def _on_object_pose(self, msg) -> None:
        position = msg.pose.position
        self.scores.add_object_pose(self._stamp_to_ns(msg.header.stamp),
                                    (position.x, position.y, position.z),
                                    heading_of(msg.pose.orientation))

    def _on_grid(self, msg) -> None:
        grid, voxel_size_m, _ = self._dense_cloud_to_grid(msg)
        self.scores.add_object_size(self._stamp_to_ns(msg.header.stamp),
                                    voxel_size_m * grid.shape[0])

    def _on_true_placement(self, msg) -> None:
        position = msg.pose.position
        self.scores.add_true_pose(self._stamp_to_ns(msg.header.stamp), ObjectPose(
            (position.x, position.y, position.z), heading_of(msg.pose.orientation),
            float(msg.scale.x)))

    def _on_info(self, camera: int, msg) -> None:
        self._intrinsics[camera] = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
