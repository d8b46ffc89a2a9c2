"""``sim_camera_rig``: a simulated multi-camera robot rig looking at synthetic objects.

N cameras stand around an object from :mod:`pix2voxpp_ros.core.synthetic` (objects of a seed the
demo weights were not trained on) and publish what they see at a fixed rate, with the true 32³ grid
so a scorer can compare. Parameter ``scene`` picks what they see:

* ``plain`` — the object alone, centred, before a uniform background (the default);
* ``tabletop`` — the object on a textured table among two distractors, off-centre, before a
  textured room, lit differently per object; the cameras differ in resolution, field of view and
  distance (:mod:`pix2voxpp_ros.core.synthetic.scenes`; width, height and fov_deg are unused);
* ``wrist`` — the tabletop scene seen by one camera orbiting the object, as on a robot's wrist.

Static scenes are rendered once per object and republished with fresh stamps; the wrist camera's
view is rendered at every tick. The next object is rendered in a background thread while the
current one shows, so a switch costs no tick even when the scene takes longer than one.

The parameters (names, defaults, descriptions) are :data:`~..core.rig_config.RIG_PARAMETERS`, the
topic names :mod:`.rig_topics`; this module renders and publishes.

Topics (relative to the node's namespace; private ones under the node name):

* ``camera_<i>/image_raw`` (sensor_msgs/Image, rgb8), or with ``compressed: true``
  ``camera_<i>/image_raw/compressed`` (sensor_msgs/CompressedImage, JPEG), and
  ``camera_<i>/camera_info``;
* ``camera_<i>/object_mask`` (sensor_msgs/Image, mono8): the true mask of the target object, 255
  where it is the nearest surface and 0 elsewhere, stamped like the image (a stand-in for a
  segmentation node);
* ``~/ground_truth`` (sensor_msgs/PointCloud2): centres of the true grid's occupied voxels in
  the same frame, size and axes as the reconstruction node's ``~/occupancy`` (occupancy 1),
  stamped exactly like the images of that tick, so a scorer pairs them by stamp;
* ``~/object`` (std_msgs/String): ``<category>/<index> <stamp in ns>`` at every tick;
* tabletop and wrist scenes with ``place_objects`` (the default): the target stands at a random
  position and heading on the table at a real size of its category
  (:mod:`pix2voxpp_ros.core.synthetic.world`); the cameras' optical frames are published on
  ``/tf`` in ``fixed_frame`` where ``tf2_ros`` imports, at every tick, stamped exactly like that
  tick's images and sent before them, and ``~/true_placement`` (visualization_msgs/Marker, a
  translucent CUBE: the true grid's pose in ``fixed_frame`` and its edge in ``scale``) is stamped
  like the images. The scene and its cameras are scaled together, so the images are those of
  the unplaced scene, and even fixed cameras move in ``fixed_frame`` when the object changes:
  were they static TF (``/tf_static``, re-sent at each switch), a consumer that lags behind would
  pair the last frames of one object with the next object's camera poses. Stamped at every tick,
  a frame's camera pose is looked up at the frame's own stamp, which no other object shares.
"""

from __future__ import annotations

import math
import signal
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from geometry_msgs.msg import TransformStamped
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker

from ..core.geometry import matrix_to_quaternion
from ..core.placement import ObjectPose
from ..core.rig_config import RIG_PARAMETERS, RigConfig, rig_config_from_values
from ..core.synthetic import Camera, dataset_object, render_view
from ..core.synthetic.scenes import TabletopScene, make_tabletop_scene, render_scene_view
from ..core.synthetic.voxelize import voxelize
from ..core.synthetic.world import camera_to_fixed, random_object_pose
from .conversions import (array_to_compressed, array_to_image, compressed_topic, grid_to_cloud,
                          ns_to_stamp)
from .rig_topics import (RIG_NODE_NAME, image_topic, info_topic, mask_topic, object_topic,
                         true_placement_topic, truth_topic)
from .tf_poses import tf_available


@dataclass(frozen=True)
class Scene:
    """One object of the rig's sequence: its name, each camera's view and mask, its truth cloud.

    ``views`` are rgb8, ``masks`` mono8 (255 on the object); ``layout`` is the tabletop scene
    that cameras which move (the wrist camera) render again (None for the plain scene).
    """

    name: str
    views: list[np.ndarray]
    truth_cloud: PointCloud2
    masks: list[np.ndarray] = field(default_factory=list)
    layout: Optional[TabletopScene] = None
    pose: Optional[ObjectPose] = None  # where the scene stands in fixed_frame (placed scenes)


def render_scene(config: RigConfig, cameras: list[Camera], count: int) -> Scene:
    """Build object number ``count`` of the rig's sequence and render it from ``cameras``."""
    categories = config.categories
    category = categories[count % len(categories)]
    index = config.first_index + count // len(categories)
    obj = dataset_object(category, index, seed=config.seed)
    background = np.asarray(config.background_rgb, dtype=np.float32)
    views, masks, layout, pose = [], [], None, None
    if config.scene == 'plain':
        for camera in cameras:
            rgba = render_view(obj, camera, supersample=2).astype(np.float32)
            alpha = rgba[:, :, 3:] / 255.0
            rgb = rgba[:, :, :3] * alpha + background * (1.0 - alpha)
            views.append(np.round(rgb).astype(np.uint8))
            masks.append(np.where(rgba[:, :, 3] >= 128, 255, 0).astype(np.uint8))
    else:
        # In the tabletop scene a distractor stands in front of the first camera.
        occluder = cameras[0].azimuth_deg if config.scene == 'tabletop' else None
        layout = make_tabletop_scene(obj, seed=config.seed + count,
                                     occluder_azimuth_deg=occluder)
        for camera in cameras:
            view, mask = scene_view(layout, camera)
            views.append(view)
            masks.append(mask)
        if config.placed:
            pose = random_object_pose(np.random.default_rng([config.seed, count, 31]),
                                      category, layout.table_y)
    truth = grid_to_cloud(voxelize(obj).astype(np.float32), threshold=0.5,
                          object_size_m=config.object_size_m,
                          header=Header(frame_id=config.object_frame_id))
    return Scene(name=f'{category}/{index}', views=views, truth_cloud=truth, masks=masks,
                 layout=layout, pose=pose)


def camera_transforms(config: RigConfig, cameras: list[Camera], pose: ObjectPose,
                      stamp: Time) -> list[TransformStamped]:
    """Return the TF of each camera's optical frame in ``fixed_frame`` (a placed scene)."""
    transforms = []
    for i, camera in enumerate(cameras):
        matrix = camera_to_fixed(camera, pose)
        msg = TransformStamped(child_frame_id=f'{config.frame_prefix}/camera_{i}_optical')
        msg.header.stamp, msg.header.frame_id = stamp, config.fixed_frame
        t, q = msg.transform.translation, msg.transform.rotation
        t.x, t.y, t.z = (float(v) for v in matrix[:3, 3])
        q.x, q.y, q.z, q.w = matrix_to_quaternion(matrix[:3, :3])
        transforms.append(msg)
    return transforms


def true_placement_marker(config: RigConfig, pose: ObjectPose, stamp: Time) -> Marker:
    """Show the true grid as a translucent cube in ``fixed_frame``: its pose, edge as scale."""
    marker = Marker(header=Header(stamp=stamp, frame_id=config.fixed_frame), ns='true_placement',
                    id=0, type=Marker.CUBE, action=Marker.ADD)
    marker.pose.position.x, marker.pose.position.y, marker.pose.position.z = \
        (float(v) for v in pose.position)
    marker.pose.orientation.z = math.sin(0.5 * pose.heading_rad)
    marker.pose.orientation.w = math.cos(0.5 * pose.heading_rad)
    marker.scale.x = marker.scale.y = marker.scale.z = float(pose.size_m)
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = 0.2, 0.8, 0.2, 0.15
    return marker


def scene_view(layout: TabletopScene, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Render a tabletop scene: ``(rgb8 (H, W, 3), mono8 mask (H, W))``."""
    rendered = render_scene_view(layout, camera)
    return rendered.image, np.where(rendered.mask, 255, 0).astype(np.uint8)


def wrist_view(config: RigConfig, layout: TabletopScene,
               time_s: float) -> tuple[Camera, np.ndarray, np.ndarray]:
    """Return the wrist camera ``time_s`` after the rig started, its view and its mask."""
    camera = config.wrist_camera(time_s)  # the arm moved: a pure function of time
    view, mask = scene_view(layout, camera)
    return camera, view, mask


@dataclass(frozen=True)
class CameraMessages:
    """What one camera of the rig publishes at a tick (``image`` is compressed or raw)."""

    image: Image | CompressedImage
    mask: Image
    info: CameraInfo


def camera_messages(config: RigConfig, cameras: list[Camera], views: list[np.ndarray],
                    masks: list[np.ndarray], stamp: Time) -> list[CameraMessages]:
    """Build every camera's messages of one tick, all stamped ``stamp``."""
    out = []
    for i, (camera, view, mask) in enumerate(zip(cameras, views, masks)):
        header = Header(stamp=stamp, frame_id=f'{config.frame_prefix}/camera_{i}_optical')
        convert = array_to_compressed if config.compressed else array_to_image
        out.append(CameraMessages(
            image=convert(view, encoding='rgb8', stamp=stamp, frame_id=header.frame_id),
            mask=array_to_image(mask, encoding='mono8', stamp=stamp, frame_id=header.frame_id),
            info=camera_info(camera, header)))
    return out


def camera_info(camera: Camera, header: Header) -> CameraInfo:
    """Return the CameraInfo of a simulated camera (pinhole, no distortion)."""
    k = camera.intrinsics
    info = CameraInfo(header=header, width=camera.width, height=camera.height,
                      distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [float(v) for v in k.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class SimCameraRig(Node):
    """Publish synchronized views of synthetic objects from N simulated cameras."""

    def __init__(self) -> None:
        super().__init__(RIG_NODE_NAME)
        for spec in RIG_PARAMETERS:  # typed by their defaults, as declared before ParamSpec
            self.declare_parameter(spec.name, spec.default,
                                   ParameterDescriptor(description=spec.description))
        self.config = self._read_config()
        self.rig_cameras = self.config.cameras()
        count = len(self.rig_cameras)
        # Names relative to the rig's namespace: the demo runs it in rig_topics.NAMESPACE.
        if self.config.compressed:
            self.image_publishers = [
                self.create_publisher(CompressedImage, compressed_topic(image_topic(i, '')), 5)
                for i in range(count)]
        else:
            self.image_publishers = [self.create_publisher(Image, image_topic(i, ''), 5)
                                     for i in range(count)]
        self.mask_publishers = [self.create_publisher(Image, mask_topic(i, ''), 5)
                                for i in range(count)]
        self.info_publishers = [self.create_publisher(CameraInfo, info_topic(i, ''), 5)
                                for i in range(count)]
        self.truth_publisher = self.create_publisher(PointCloud2, truth_topic(''), 5)
        self.object_publisher = self.create_publisher(String, object_topic(''), 5)
        self.placement_publisher = self.create_publisher(Marker, true_placement_topic(''), 5)
        self._tf = None
        if self.config.placed and tf_available():
            from tf2_ros import TransformBroadcaster
            self._tf = TransformBroadcaster(self)
        self.pose: Optional[ObjectPose] = None
        self.object_count = 0
        self.object_started_ns = 0
        self.views: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.layout: Optional[TabletopScene] = None
        self.started_ns = self.get_clock().now().nanoseconds
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix='rig_render')
        self._next: Optional[tuple[int, Future]] = None  # object number, its scene
        self.truth_cloud = PointCloud2()
        self.object_name = ''
        self._show_object(0)
        self.timer = self.create_timer(1.0 / self.config.rate_hz, self._tick)
        sizes = ', '.join(f'{c.width}x{c.height}' for c in self.rig_cameras)
        self.get_logger().info(
            f'{self.config.scene} scene: {len(self.rig_cameras)} camera(s) {sizes} at '
            f'{self.config.rate_hz:g} Hz{" (JPEG)" if self.config.compressed else ""}, objects '
            f'from {", ".join(self.config.categories)} (seed {self.config.seed})')

    def _read_config(self) -> RigConfig:
        return rig_config_from_values({spec.name: self.get_parameter(spec.name).value
                                       for spec in RIG_PARAMETERS})

    def _show_object(self, count: int) -> None:
        """Show object number ``count`` of the sequence and start rendering the one after."""
        if self._next is not None and self._next[0] == count:
            scene = self._next[1].result()  # ready unless a switch is shorter than a render
        else:
            scene = render_scene(self.config, self.rig_cameras, count)
        self._next = None
        if self.config.object_switch_s > 0:
            self._next = (count + 1, self._renderer.submit(
                render_scene, self.config, list(self.rig_cameras), count + 1))
        self.views = scene.views
        self.masks = scene.masks
        self.layout = scene.layout
        self.pose = scene.pose
        self.truth_cloud = scene.truth_cloud  # built once per object; each tick restamps it
        self.object_name = scene.name
        self.object_count = count
        self.object_started_ns = self.get_clock().now().nanoseconds
        self.get_logger().info(f'showing object {self.object_name}')

    def destroy_node(self) -> None:
        """Stop the background renderer, then the node."""
        self._renderer.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()

    def _tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        switch_ns = int(self.config.object_switch_s * 1e9)
        if switch_ns > 0 and now_ns - self.object_started_ns >= switch_ns:
            self._show_object(self.object_count + 1)
            now_ns = self.get_clock().now().nanoseconds
        if self.config.scene == 'wrist' and self.layout is not None:
            camera, view, mask = wrist_view(self.config, self.layout,
                                            (now_ns - self.started_ns) / 1e9)
            self.rig_cameras, self.views, self.masks = [camera], [view], [mask]
        stamp = ns_to_stamp(now_ns)
        if self.pose is not None and self._tf is not None:
            # Sent before the images, so a node looking the pose up at their stamp finds it.
            self._tf.sendTransform(camera_transforms(self.config, self.rig_cameras, self.pose,
                                                     stamp))
        for i, messages in enumerate(camera_messages(self.config, self.rig_cameras, self.views,
                                                     self.masks, stamp)):
            self.image_publishers[i].publish(messages.image)
            self.mask_publishers[i].publish(messages.mask)
            self.info_publishers[i].publish(messages.info)
        if self.pose is not None:
            self.placement_publisher.publish(true_placement_marker(self.config, self.pose, stamp))
        self.truth_cloud.header.stamp = stamp
        self.truth_publisher.publish(self.truth_cloud)
        self.object_publisher.publish(String(data=f'{self.object_name} {now_ns}'))


def main(args: Optional[list[str]] = None) -> None:
    """Run the rig until Ctrl-C or an external shutdown."""
    rclpy.init(args=args)
    node: Optional[SimCameraRig] = None
    try:
        node = SimCameraRig()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # ros2 launch forwards a second Ctrl-C while we clean up: finish cleaning up anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
