"""The demo's ROS side of scoring: subscribe to the rig and the node, feed what comes to the core.

:class:`Scorer` subscribes (in the demo's own node) to the rig's object names, ground truth,
images and masks and to the reconstruction node's clouds, converts each message to arrays and
feeds a :class:`~pix2voxpp_ros.core.scoring.StampScorer`, which pairs them by stamp and scores.

With ``placement: calibrated`` (``placed``) it also takes the node's ``~/object_pose`` and the
grid's size from ``~/grid`` (``~/object_pose`` carries no size), the rig's
``~/true_placement``, and for the pictures each camera's ``camera_info`` and its pose in the
fixed frame (TF at the cloud's stamp, or the fixed ``camera_poses`` the node got).

:class:`TableCollector` does the same for tables of several objects (``--objects-per-scene``):
the node's ``~/markers`` (each object's ``objects/voxels`` CUBE_LIST: its pose, voxel edge and
occupied voxels; :func:`found_objects`), the rig's names, truth cloud with its ``instance``
field, ``~/true_placements``, images and instance label images feed a
:class:`~pix2voxpp_ros.core.scene_scoring.TableStampScorer`.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ...core.clouds import cloud_points
from ...core.metrics import RESOLUTION, cloud_to_voxels
from ...core.placement import ObjectPose
from ...core.scene_scoring import PlacedGrid, TableScore, TableStampScorer, truth_grids
from ...core.scoring import ScoredObject, StampScorer
# The node's name from launch_support: reconstruction_node's import would load torch.
from ..launch_support import NODE_NAME
from ..rig_topics import (OBJECT_TOPIC, TRUTH_TOPIC, image_topic, info_topic,
                          instance_mask_topic, mask_topic, true_placement_topic,
                          true_placements_topic)
from .scene_setup import NUM_CAMERAS

CLOUD_FIELDS = ('x', 'y', 'z', 'occupancy')  # the node's ~/occupancy fields
OCCUPANCY_TOPIC = f'/{NODE_NAME}/occupancy'  # the node's ~/occupancy
OBJECT_POSE_TOPIC = f'/{NODE_NAME}/object_pose'  # placed: the grid's centre and heading
GRID_TOPIC = f'/{NODE_NAME}/grid'  # placed: the dense grid, whose spacing is the size / 32
MARKERS_TOPIC = f'/{NODE_NAME}/markers'  # tables: every object's markers
VOXELS_NAMESPACE = 'objects/voxels'  # ros.conversions.objects: an object's occupied voxels
TF_TIMEOUT_S = 0.5  # a picture's camera pose at its stamp


def heading_of(orientation) -> float:
    """Return the turn about z of a quaternion that turns about z only (``~/object_pose``)."""
    return 2.0 * math.atan2(orientation.z, orientation.w)


def rgb_image(msg) -> np.ndarray:
    """Return an rgb8 ``sensor_msgs/Image``, or a JPEG ``CompressedImage``, as ``(H, W, 3)``."""
    from ..conversions import compressed_to_array, image_to_array
    if hasattr(msg, 'format'):  # CompressedImage: decoded as BGR
        return cv2.cvtColor(compressed_to_array(msg)[0], cv2.COLOR_BGR2RGB)
    return image_to_array(msg)


class RigListener:
    """What every demo listener shares: the rig's images (and masks), the node's readiness.

    A subclass sets ``scores`` (``add_view``, ``latencies``) and, with masks, ``_on_mask``.
    """

    scores: StampScorer | TableStampScorer

    def _listen_cameras(self, node, cameras: int, *, compressed: bool,
                        masks: Optional[Callable[[int], str]] = None) -> None:
        """Subscribe to each camera's images and, given their topics, masks."""
        from sensor_msgs.msg import CompressedImage, Image

        from ..conversions import compressed_topic, image_to_array, stamp_to_ns
        self._image_to_array = image_to_array
        self._stamp_to_ns = stamp_to_ns
        images = [compressed_topic(image_topic(i)) if compressed else image_topic(i)
                  for i in range(cameras)]
        self._first_image_topic = images[0]
        for i, topic in enumerate(images):
            node.create_subscription(CompressedImage if compressed else Image, topic,
                                     lambda msg, i=i: self._on_image(i, msg), 10)
            if masks is not None:
                node.create_subscription(Image, masks(i),
                                         lambda msg, i=i: self._on_mask(i, msg), 10)

    @property
    def latencies(self) -> list[float]:
        """Seconds from each result's stamp to its arrival, in arrival order."""
        return self.scores.latencies

    def node_listening(self, node) -> bool:
        """Whether the reconstruction node subscribes to the first camera (it is active)."""
        return any(info.node_name == NODE_NAME
                   for info in node.get_subscriptions_info_by_topic(self._first_image_topic))

    def _on_image(self, camera: int, msg) -> None:
        self.scores.add_view(self._stamp_to_ns(msg.header.stamp), camera, rgb_image(msg))

    def _on_mask(self, camera: int, msg) -> None:
        raise NotImplementedError

    def _mask(self, msg) -> np.ndarray:
        """Return a mono8 mask or label image message as ``(H, W)``."""
        return self._image_to_array(msg).reshape(msg.height, msg.width)


class Scorer(RigListener):
    """Collect the rig's truth and views and the node's clouds; pair them by stamp."""

    def __init__(self, node, *, object_size_m: float, cameras: int = NUM_CAMERAS,
                 compressed: bool = False, masks: bool = False, settle_s: float = 0.0,
                 placed: bool = False, true_pose: Optional[ObjectPose] = None,
                 camera_poses: Sequence[np.ndarray] = (), fixed_frame: str = '') -> None:
        # node: rclpy.node.Node; masks: also keep the rig's object masks (for the pictures);
        # settle_s: score clouds stamped at least this long after their object's first tick;
        # placed: clouds in fixed_frame (see the module); true_pose: the truth's fixed placement
        # when the rig publishes none; camera_poses: (4, 4) each, fixed, else TF.
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String

        self.scores = StampScorer(object_size_m=object_size_m, cameras=cameras,
                                  settle_s=settle_s, placed=placed, true_pose=true_pose)
        self._camera_poses = list(camera_poses)
        self._frame_ids: dict[int, str] = {}  # camera -> its images' optical frame
        self._intrinsics: dict[int, np.ndarray] = {}  # camera -> K (3, 3), latest camera_info
        self._tf = None
        self._calibrated: set[int] = set()  # stamps of the scored clouds given a calibration
        if placed:
            self._listen_placement(node, cameras, fixed_frame)
        self._listen_cameras(node, cameras, compressed=compressed,
                             masks=mask_topic if masks else None)
        qos = 10
        node.create_subscription(String, OBJECT_TOPIC, self._on_object, qos)
        node.create_subscription(PointCloud2, TRUTH_TOPIC, self._on_truth, qos)
        node.create_subscription(PointCloud2, OCCUPANCY_TOPIC, self._on_cloud, qos)

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
        self._frame_ids[camera] = msg.header.frame_id
        super()._on_image(camera, msg)

    def _on_mask(self, camera: int, msg) -> None:
        self.scores.add_mask(self._stamp_to_ns(msg.header.stamp), camera, self._mask(msg))

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


def found_objects(markers: Sequence) -> tuple[Optional[int], list[PlacedGrid]]:
    """Read the objects of one view set from the node's ``~/markers`` (``mask_mode: instances``).

    Each ``objects/voxels`` CUBE_LIST is one object: its pose is the grid's (centre, heading
    about z), its ``scale.x`` the voxel edge (the grid's edge / 32), its points the occupied
    voxels' centres in the grid's frame.

    :param markers: the ``visualization_msgs/Marker`` of one array.
    :returns: the array's stamp (None when it holds no marker) and each object, labelled by its id.
    """
    from ..conversions import stamp_to_ns
    stamp, found = None, []
    for marker in markers:
        stamp = stamp_to_ns(marker.header.stamp)
        if marker.ns != VOXELS_NAMESPACE or marker.action != marker.ADD:
            continue
        size = float(marker.scale.x) * RESOLUTION
        local = np.array([(p.x, p.y, p.z) for p in marker.points],
                         dtype=np.float64).reshape(-1, 3)
        at = marker.pose.position
        pose = ObjectPose((at.x, at.y, at.z), heading_of(marker.pose.orientation), size)
        found.append(PlacedGrid(str(marker.id), cloud_to_voxels(local, size), pose))
    return stamp, found


class TableCollector(RigListener):
    """Collect the rig's tables and the node's object sets; pair them by stamp and score."""

    def __init__(self, node, *, object_size_m: float, cameras: int = NUM_CAMERAS,
                 compressed: bool = False) -> None:
        # node: rclpy.node.Node of this process.
        from sensor_msgs.msg import PointCloud2
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        self.object_size_m = object_size_m
        self.scores = TableStampScorer()
        self._listen_cameras(node, cameras, compressed=compressed, masks=instance_mask_topic)
        qos = 10
        node.create_subscription(String, OBJECT_TOPIC, self._on_names, qos)
        node.create_subscription(PointCloud2, TRUTH_TOPIC, self._on_truth, qos)
        node.create_subscription(MarkerArray, true_placements_topic(), self._on_true_poses, qos)
        node.create_subscription(MarkerArray, MARKERS_TOPIC, self._on_markers, qos)

    def score(self) -> list[TableScore]:
        """Score what can be scored; see :meth:`TableStampScorer.score`."""
        return self.scores.score()

    def missed(self) -> list[tuple[str, ...]]:
        """Tables shown before the last scored one that got no object set."""
        return self.scores.missed_tables()

    def _on_names(self, msg) -> None:
        names, stamp = msg.data.rsplit(' ', 1)
        self.scores.add_names(int(stamp), names.split(' '))

    def _on_truth(self, msg) -> None:
        points = cloud_points(msg)
        column = next(f.offset for f in msg.fields if f.name == 'instance') // 4  # uint32
        instances = np.frombuffer(bytes(msg.data), np.uint32).reshape(
            -1, msg.point_step // 4)[:, column]
        count = int(instances.max()) + 1 if len(instances) else 0
        self.scores.add_truths(self._stamp_to_ns(msg.header.stamp),
                               truth_grids(points, instances, count, self.object_size_m))

    def _on_true_poses(self, msg) -> None:
        if not msg.markers:
            return
        poses = {}
        for marker in msg.markers:
            at = marker.pose.position
            poses[marker.id] = ObjectPose((at.x, at.y, at.z), heading_of(marker.pose.orientation),
                                          float(marker.scale.x))
        self.scores.add_true_poses(self._stamp_to_ns(msg.markers[0].header.stamp), poses)

    def _on_markers(self, msg) -> None:
        stamp, found = found_objects(msg.markers)
        if stamp is not None:  # the rig stamps with the system clock
            self.scores.add_found(stamp, found, time.time() - stamp / 1e9)

    def _on_mask(self, camera: int, msg) -> None:
        self.scores.add_labels(self._stamp_to_ns(msg.header.stamp), camera, self._mask(msg))
