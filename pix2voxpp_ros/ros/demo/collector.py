"""The demo's ROS side of scoring: subscribe to the rig and the node, feed what comes to the core.

:class:`Scorer` subscribes (in the demo's own node) to the rig's object names, ground truth,
images and masks and to the reconstruction node's clouds, converts each message to arrays and
feeds a :class:`~pix2voxpp_ros.core.scoring.StampScorer`, which pairs them by stamp and scores.
"""

from __future__ import annotations

import time

import cv2

from ...core.clouds import cloud_points
from ...core.scoring import ScoredObject, StampScorer
# The node's name from launch_support: reconstruction_node's import would load torch.
from ..launch_support import NODE_NAME
from ..rig_topics import OBJECT_TOPIC, TRUTH_TOPIC, image_topic, mask_topic
from .scene_setup import NUM_CAMERAS

CLOUD_FIELDS = ('x', 'y', 'z', 'occupancy')  # the node's ~/occupancy fields
OCCUPANCY_TOPIC = f'/{NODE_NAME}/occupancy'  # the node's ~/occupancy


class Scorer:
    """Collect the rig's truth and views and the node's clouds; pair them by stamp."""

    def __init__(self, node, *, object_size_m: float, cameras: int = NUM_CAMERAS,
                 compressed: bool = False, masks: bool = False, settle_s: float = 0.0) -> None:
        # node: rclpy.node.Node; masks: also keep the rig's object masks (for the pictures);
        # settle_s: score clouds stamped at least this long after their object's first tick.
        from sensor_msgs.msg import CompressedImage, Image, PointCloud2
        from std_msgs.msg import String

        from ..conversions import (compressed_to_array, compressed_topic, image_to_array,
                                   stamp_to_ns)
        self._image_to_array = image_to_array
        self._compressed_to_array = compressed_to_array
        self._stamp_to_ns = stamp_to_ns
        self.scores = StampScorer(object_size_m=object_size_m, cameras=cameras,
                                  settle_s=settle_s)
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

    @property
    def latencies(self) -> list[float]:
        """Seconds from each cloud's stamp to its arrival, in arrival order."""
        return self.scores.latencies

    def node_listening(self, node) -> bool:
        """Whether the reconstruction node subscribes to the first camera (it is active)."""
        return any(info.node_name == NODE_NAME
                   for info in node.get_subscriptions_info_by_topic(self._first_image_topic))

    def score(self) -> list[ScoredObject]:
        """Score what can be scored; see :meth:`StampScorer.score`."""
        return self.scores.score()

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
        self.scores.add_view(self._stamp_to_ns(msg.header.stamp), camera, image)

    def _on_mask(self, camera: int, msg) -> None:
        mask = self._image_to_array(msg).reshape(msg.height, msg.width)
        self.scores.add_mask(self._stamp_to_ns(msg.header.stamp), camera, mask)

    def _on_cloud(self, msg) -> None:
        stamp = self._stamp_to_ns(msg.header.stamp)
        latency = time.time() - stamp / 1e9  # the rig stamps with the system clock
        self.scores.add_cloud(stamp, cloud_points(msg, CLOUD_FIELDS).copy(), latency)
