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

**Tables of several targets** (tabletop scene, ``objects`` N from 2 to 5; needs
``place_objects``): each scene stands the next N objects of the rig's sequence on one table at
separate spots (:mod:`pix2voxpp_ros.core.synthetic.multi`; every target a table-top size, 8 to
30 cm, not its category's real size), without distractors; the cameras, of the tabletop kinds,
aim at the middle of the targets from where each sees all of them, so they too move with every
table. Besides the topics above (``object_mask`` is then the union of every target's pixels):

* ``camera_<i>/instance_mask`` (sensor_msgs/Image, mono8): the instance label image, 0 where
  no target is the nearest surface, else that target's id in this camera; ids are drawn per
  camera (distinct, 1..255, so the cameras disagree, as separate segmenters do), once per
  table, or at every tick with ``shuffle_instance_ids``;
* ``~/true_placements`` (visualization_msgs/MarkerArray): one translucent CUBE per target, in
  ``fixed_frame``, ns ``true_placements``, id = the target's truth index (0 .. N-1, the order of
  ``~/object``), pose = its true grid's centre and heading, ``scale`` its edge;
* ``~/ground_truth`` then has a fifth field, ``instance`` (uint32 at offset 16, ``point_step``
  20, the layout of the node's multi-object cloud): each target's true grid in the canonical
  convention of the one-target cloud (``object_frame_id``, ``object_size_m``), tagged with its
  truth index;
* ``~/object``: ``<category>/<index> <category>/<index> ... <stamp in ns>``, in truth order.

No ``~/true_placement`` then (no one target). Everything of a tick is stamped alike.
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
from rclpy.logging import get_logger
from rclpy.node import Node
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from geometry_msgs.msg import TransformStamped
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker, MarkerArray

from ..core.geometry import matrix_to_quaternion
from ..core.objects import PlacedObject
from ..core.placement import ObjectPose
from ..core.rig_config import (RIG_PARAMETERS, RigConfig, RigConfigError,
                               rig_config_from_values)
from ..core.synthetic import Camera, dataset_object, render_view
from ..core.synthetic.multi import draw_label_ids, view_set
from ..core.synthetic.scenes import (TABLETOP_PROFILES, TabletopScene, make_tabletop_scene,
                                     render_scene_view)
from ..core.synthetic.voxelize import voxelize
from ..core.synthetic.world import camera_to_fixed, random_object_pose
from .conversions import (array_to_compressed, array_to_image, compressed_topic, grid_to_cloud,
                          ns_to_stamp)
from .conversions.objects import objects_to_cloud
from .rig_topics import (RIG_NODE_NAME, image_topic, info_topic, instance_mask_topic, mask_topic,
                         object_topic, true_placement_topic, true_placements_topic, truth_topic)
from .tf_poses import tf_available


@dataclass(frozen=True)
class Scene:
    """One scene of the rig's sequence: its name, each camera's view and mask, its truth cloud.

    ``views`` are rgb8, ``masks`` mono8 (255 on the object); ``layout`` is the tabletop scene
    that cameras which move (the wrist camera) render again (None for the plain scene).

    A table of several targets (``objects`` >= 2) also has, in truth order, each target's name
    and true grid pose in ``fixed_frame`` (``targets``); per camera its index image
    (``indices``: 0 background, ``k + 1`` where target ``k`` is the nearest surface) and the
    label id of each target (``label_ids``, ``(N,)``); its own ``cameras`` and their poses in
    ``fixed_frame`` (``camera_poses``, ``(4, 4)`` each).
    """

    name: str
    views: list[np.ndarray]
    truth_cloud: PointCloud2
    masks: list[np.ndarray] = field(default_factory=list)
    layout: Optional[TabletopScene] = None
    pose: Optional[ObjectPose] = None  # where the scene stands in fixed_frame (placed scenes)
    count: int = 0  # its number in the rig's sequence
    targets: tuple[tuple[str, ObjectPose], ...] = ()
    indices: list[np.ndarray] = field(default_factory=list)
    label_ids: list[np.ndarray] = field(default_factory=list)
    cameras: list[Camera] = field(default_factory=list)
    camera_poses: list[np.ndarray] = field(default_factory=list)


def render_scene(config: RigConfig, cameras: list[Camera], count: int) -> Scene:
    """Build scene number ``count`` of the rig's sequence and render it from ``cameras``.

    A table of several targets (``objects`` >= 2) is seen by cameras of its own instead.
    """
    if config.objects > 1:
        return render_table(config, count)
    ((category, index),) = config.scene_objects(count)
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
                 layout=layout, pose=pose, count=count)


def render_table(config: RigConfig, count: int) -> Scene:
    """Build table number ``count``: its ``objects`` targets, cameras, views and truths."""
    chosen = config.scene_objects(count)
    objects = [dataset_object(category, index, seed=config.seed) for category, index in chosen]
    views = view_set(objects, seed=config.seed + count, num_cameras=config.num_cameras,
                     profiles=TABLETOP_PROFILES, elevation_deg=config.camera_elevation_deg,
                     rng=np.random.default_rng([config.seed, count, 47]))
    indices, label_ids = [], []
    for labels, seen in zip(views.labels, views.label_ids):
        lut = np.zeros(256, np.uint8)  # label id -> target index + 1
        ids = np.zeros(len(objects), np.int64)  # (N,) every target's id (unseen ones too)
        for k, label in seen.items():
            lut[label], ids[k] = k + 1, label
        unused = np.setdiff1d(np.arange(1, 256), ids)
        ids[ids == 0] = unused[:int(np.count_nonzero(ids == 0))]
        indices.append(lut[labels])
        label_ids.append(ids)
    canonical = ObjectPose((0.0, 0.0, 0.0), 0.0, config.object_size_m)  # the truth's frame
    truth = objects_to_cloud([PlacedObject(k, t.grid, canonical) for k, t in
                              enumerate(views.truths)],
                             header=Header(frame_id=config.object_frame_id))
    names = [f'{category}/{index}' for category, index in chosen]
    return Scene(name=' '.join(names), views=list(views.images), truth_cloud=truth,
                 masks=[np.where(index > 0, 255, 0).astype(np.uint8) for index in indices],
                 layout=views.scene.layout, count=count,
                 targets=tuple((name, t.pose) for name, t in zip(names, views.truths)),
                 indices=indices, label_ids=label_ids, cameras=list(views.cameras),
                 camera_poses=list(views.camera_to_fixed))


def instance_labels(config: RigConfig, scene: Scene, tick: int) -> list[np.ndarray]:
    """Return each camera's instance label image at ``tick`` of a table (mono8; [] if none).

    :param tick: ticks since the table was first shown (with ``shuffle_instance_ids`` every
        tick draws the cameras' ids again, a pure function of the table and the tick).
    """
    ids = scene.label_ids
    if config.shuffle_instance_ids and scene.indices:
        rng = np.random.default_rng([config.seed, scene.count, tick, 61])
        ids = [draw_label_ids(rng, len(scene.targets)) for _ in scene.indices]
    return [np.concatenate([[0], camera_ids]).astype(np.uint8)[index]
            for index, camera_ids in zip(scene.indices, ids)]


def camera_transforms(config: RigConfig, cameras: list[Camera], pose: ObjectPose,
                      stamp: Time) -> list[TransformStamped]:
    """Return the TF of each camera's optical frame in ``fixed_frame`` (a placed scene)."""
    return pose_transforms(config, [camera_to_fixed(camera, pose) for camera in cameras], stamp)


def pose_transforms(config: RigConfig, poses: list[np.ndarray],
                    stamp: Time) -> list[TransformStamped]:
    """Return the TF of camera ``i``'s optical frame at ``poses[i]`` ``(4, 4)``, fixed frame."""
    transforms = []
    for i, matrix in enumerate(poses):
        msg = TransformStamped(child_frame_id=f'{config.frame_prefix}/camera_{i}_optical')
        msg.header.stamp, msg.header.frame_id = stamp, config.fixed_frame
        t, q = msg.transform.translation, msg.transform.rotation
        t.x, t.y, t.z = (float(v) for v in matrix[:3, 3])
        q.x, q.y, q.z, q.w = matrix_to_quaternion(matrix[:3, :3])
        transforms.append(msg)
    return transforms


def true_placement_marker(config: RigConfig, pose: ObjectPose, stamp: Time, *,
                          ns: str = 'true_placement', marker_id: int = 0) -> Marker:
    """Show the true grid as a translucent cube in ``fixed_frame``: its pose, edge as scale."""
    marker = Marker(header=Header(stamp=stamp, frame_id=config.fixed_frame), ns=ns,
                    id=marker_id, type=Marker.CUBE, action=Marker.ADD)
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


def true_placements_markers(config: RigConfig, scene: Scene, stamp: Time) -> MarkerArray:
    """Show every target of a table as a translucent cube, id = its truth index."""
    return MarkerArray(markers=[
        true_placement_marker(config, pose, stamp, ns='true_placements', marker_id=k)
        for k, (_, pose) in enumerate(scene.targets)])


@dataclass(frozen=True)
class CameraMessages:
    """What one camera of the rig publishes at a tick (``image`` is compressed or raw).

    ``instance_mask`` is the instance label image of a table of several targets, else None.
    """

    image: Image | CompressedImage
    mask: Image
    info: CameraInfo
    instance_mask: Optional[Image] = None


def camera_messages(config: RigConfig, cameras: list[Camera], views: list[np.ndarray],
                    masks: list[np.ndarray], stamp: Time,
                    labels: list[np.ndarray] = ()) -> list[CameraMessages]:
    """Build every camera's messages of one tick, all stamped ``stamp``.

    :param labels: each camera's instance label image (mono8), for a table of several targets.
    """
    out = []
    for i, (camera, view, mask) in enumerate(zip(cameras, views, masks)):
        header = Header(stamp=stamp, frame_id=f'{config.frame_prefix}/camera_{i}_optical')
        convert = array_to_compressed if config.compressed else array_to_image
        out.append(CameraMessages(
            image=convert(view, encoding='rgb8', stamp=stamp, frame_id=header.frame_id),
            mask=array_to_image(mask, encoding='mono8', stamp=stamp, frame_id=header.frame_id),
            info=camera_info(camera, header),
            instance_mask=array_to_image(labels[i], encoding='mono8', stamp=stamp,
                                         frame_id=header.frame_id) if labels else None))
    return out


@dataclass(frozen=True)
class TickMessages:
    """Everything the rig publishes at one tick, all stamped alike.

    ``transforms`` (the cameras in ``fixed_frame``; empty unless placed) go out first, so a
    consumer that looks a frame's camera up at its stamp finds it. ``true_placement`` is the
    one target's, ``true_placements`` a table's (each None otherwise).
    """

    transforms: list[TransformStamped]
    cameras: list[CameraMessages]
    true_placement: Optional[Marker]
    true_placements: Optional[MarkerArray]
    truth: PointCloud2
    name: String


def tick_messages(config: RigConfig, scene: Scene, cameras: list[Camera], stamp_ns: int, *,
                  time_s: float, tick: int) -> TickMessages:
    """Build the messages of one tick of ``scene``, every one stamped ``stamp_ns``.

    :param cameras: the rig's cameras (a table of several targets has its own).
    :param time_s: seconds since the rig started: where the wrist camera is.
    :param tick: ticks since the scene was first shown (:func:`instance_labels`).
    """
    stamp = ns_to_stamp(stamp_ns)
    cameras, views, masks = scene.cameras or cameras, scene.views, scene.masks
    if config.scene == 'wrist' and scene.layout is not None:
        camera, view, mask = wrist_view(config, scene.layout, time_s)
        cameras, views, masks = [camera], [view], [mask]
    poses = scene.camera_poses or ([] if scene.pose is None else
                                   [camera_to_fixed(camera, scene.pose) for camera in cameras])
    scene.truth_cloud.header.stamp = stamp  # built once per scene; each tick restamps it
    return TickMessages(
        transforms=pose_transforms(config, poses, stamp),
        cameras=camera_messages(config, cameras, views, masks, stamp,
                                instance_labels(config, scene, tick)),
        true_placement=None if scene.pose is None else true_placement_marker(config, scene.pose,
                                                                             stamp),
        true_placements=true_placements_markers(config, scene, stamp) if scene.targets
        else None,
        truth=scene.truth_cloud, name=String(data=f'{scene.name} {stamp_ns}'))


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
        self.instance_publishers, self.placements_publisher = [], None
        if self.config.objects > 1:
            self.instance_publishers = [self.create_publisher(Image, instance_mask_topic(i, ''), 5)
                                        for i in range(count)]
            self.placements_publisher = self.create_publisher(MarkerArray,
                                                              true_placements_topic(''), 5)
        self._tf = None
        if self.config.placed and tf_available():
            from tf2_ros import TransformBroadcaster
            self._tf = TransformBroadcaster(self)
        self.scene: Optional[Scene] = None
        self.ticks = 0  # ticks of the scene shown
        self.object_started_ns = 0
        self.started_ns = self.get_clock().now().nanoseconds
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix='rig_render')
        self._next: Optional[tuple[int, Future]] = None  # scene number, its scene
        self._show_object(0)
        self.timer = self.create_timer(1.0 / self.config.rate_hz, self._tick)
        sizes = ', '.join(f'{c.width}x{c.height}' for c in self.rig_cameras)
        table = f'{self.config.objects} objects a table, ' if self.config.objects > 1 else ''
        self.get_logger().info(
            f'{self.config.scene} scene: {len(self.rig_cameras)} camera(s) {sizes} at '
            f'{self.config.rate_hz:g} Hz{" (JPEG)" if self.config.compressed else ""}, {table}'
            f'objects from {", ".join(self.config.categories)} (seed {self.config.seed})')

    def _read_config(self) -> RigConfig:
        return rig_config_from_values({spec.name: self.get_parameter(spec.name).value
                                       for spec in RIG_PARAMETERS})

    def _show_object(self, count: int) -> None:
        """Show scene number ``count`` of the sequence and start rendering the one after."""
        if self._next is not None and self._next[0] == count:
            scene = self._next[1].result()  # ready unless a switch is shorter than a render
        else:
            scene = render_scene(self.config, self.rig_cameras, count)
        self._next = None
        if self.config.object_switch_s > 0:
            self._next = (count + 1, self._renderer.submit(
                render_scene, self.config, list(self.rig_cameras), count + 1))
        self.scene = scene
        self.ticks = 0
        self.object_started_ns = self.get_clock().now().nanoseconds
        self.get_logger().info(f'showing object {scene.name}')

    def destroy_node(self) -> None:
        """Stop the background renderer, then the node."""
        self._renderer.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()

    def _tick(self) -> None:
        now_ns = self.get_clock().now().nanoseconds
        switch_ns = int(self.config.object_switch_s * 1e9)
        if switch_ns > 0 and now_ns - self.object_started_ns >= switch_ns:
            self._show_object(self.scene.count + 1)
            now_ns = self.get_clock().now().nanoseconds
        messages = tick_messages(self.config, self.scene, self.rig_cameras, now_ns,
                                 time_s=(now_ns - self.started_ns) / 1e9, tick=self.ticks)
        self.ticks += 1
        if messages.transforms and self._tf is not None:
            # Sent before the images, so a node looking the pose up at their stamp finds it.
            self._tf.sendTransform(messages.transforms)
        for i, camera in enumerate(messages.cameras):
            self.image_publishers[i].publish(camera.image)
            self.mask_publishers[i].publish(camera.mask)
            self.info_publishers[i].publish(camera.info)
            if camera.instance_mask is not None:
                self.instance_publishers[i].publish(camera.instance_mask)
        if messages.true_placement is not None:
            self.placement_publisher.publish(messages.true_placement)
        if messages.true_placements is not None:
            self.placements_publisher.publish(messages.true_placements)
        self.truth_publisher.publish(messages.truth)
        self.object_publisher.publish(messages.name)


def main(args: Optional[list[str]] = None) -> None:
    """Run the rig until Ctrl-C or an external shutdown."""
    rclpy.init(args=args)
    node: Optional[SimCameraRig] = None
    try:
        node = SimCameraRig()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RigConfigError as exc:  # said once, without a traceback
        get_logger(RIG_NODE_NAME).fatal(f'refusing the parameters: {exc}')
        raise SystemExit(2) from None
    finally:
        # ros2 launch forwards a second Ctrl-C while we clean up: finish cleaning up anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
