"""Every object on the table (``mask_mode: instances``): the worker's job and the object topics.

:func:`reconstruct_objects_and_publish` is what the worker runs for one view set whose masks
are instance label images: the core matches the instances across the cameras, reconstructs
every object in one batched pass and places each
(:func:`~..core.multi_object.reconstruct_view_set`); :class:`ObjectPublisher` keeps the
objects' ids across view sets (:class:`~..core.multi_object.ObjectScene`) and publishes, all in
``fixed_frame`` and stamped like the set's newest frame:

* ``~/occupancy``: one cloud of every object with an ``instance`` field (the object's id), and
  ``~/markers`` (voxels, surface, box and label per object) through the
  :class:`~.outputs.ResultPublisher`; ``~/grid`` is not published in this mode;
* ``~/objects`` (``geometry_msgs/PoseArray``): each object's grid pose, in increasing id order;
* ``~/detections`` (``vision_msgs/Detection3DArray``) where vision_msgs imports;
* with ``collision_objects``, ``moveit_msgs/CollisionObject`` changes (ADD / MOVE / REMOVE) on
  ``collision_object_topic`` where moveit_msgs imports.

An optional output whose package does not import is announced once at activate; the rest go on.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from geometry_msgs.msg import PoseArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from ..core.calibration import PlacementFailedError
from ..core.drops import DropReason
from ..core.inference import Reconstructor
from ..core.multi_object import ObjectScene, SceneUpdate, reconstruct_view_set
from ..core.node_config import NodeConfig
from ..core.views import NS_PER_S
from .conversions import (ObjectSetMessages, OptionalOutputs, ns_to_stamp, object_set_messages,
                          objects_to_markers)
from .diagnostics import NodeStats, ThrottledLog
from .outputs import OUTPUT_QOS, Placing, ResultPublisher, describe_views
from .worker import Job, Outcome

# Collision objects are changes, not a state: every message counts, none is latched.
COLLISION_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE)


class ObjectPublisher:
    """``~/objects``, ``~/detections`` and the collision objects; the scene's object ids.

    :param node: a lifecycle node.
    """

    def __init__(self, node: Any) -> None:
        self._node = node
        self.optional = OptionalOutputs()
        self._poses_pub = node.create_lifecycle_publisher(PoseArray, '~/objects', OUTPUT_QOS)
        self._detections_pub = None
        if self.optional.available('detections'):
            from vision_msgs.msg import Detection3DArray
            self._detections_pub = node.create_lifecycle_publisher(
                Detection3DArray, '~/detections', OUTPUT_QOS)
        self._collision_pub = None
        self.scene = ObjectScene()

    def activate(self, config: NodeConfig) -> list[str]:
        """Start a fresh scene; open the collision topic when asked.

        :returns: the notices of optional outputs that are not published here (log them).
        """
        self.scene = ObjectScene()
        notices = [self.optional.notice('detections')]
        if config.collision_objects:
            if self.optional.available('collision_objects'):
                from moveit_msgs.msg import CollisionObject
                self._collision_pub = self._node.create_publisher(
                    CollisionObject, config.collision_object_topic, COLLISION_QOS)
            else:
                notices.append(self.optional.notice('collision_objects'))
        return [n for n in notices if n is not None]

    def deactivate(self) -> None:
        """Close the collision topic."""
        if self._collision_pub is not None:
            self._node.destroy_publisher(self._collision_pub)
            self._collision_pub = None

    def messages(self, update: SceneUpdate, header: Header, *, markers: bool
                 ) -> ObjectSetMessages:
        """Build this view set's object messages; the optional ones where they are published."""
        return object_set_messages(update, header=header, markers=markers,
                                   detections=self._detections_pub is not None,
                                   collision_objects=self._collision_pub is not None)

    def publish(self, messages: ObjectSetMessages) -> None:
        """Publish the poses, detections and collision changes (cloud and markers go apart)."""
        self._poses_pub.publish(messages.poses)
        if self._detections_pub is not None and messages.detections is not None:
            self._detections_pub.publish(messages.detections)
        if self._collision_pub is not None:
            for change in messages.collision_objects:
                self._collision_pub.publish(change)


def reconstruct_objects_and_publish(
        job: Job, *, reconstructor: Reconstructor, config: NodeConfig, threshold: float,
        publisher: ResultPublisher, objects: ObjectPublisher, placing: Placing,
        stats: NodeStats, topics: list[str], logger: Any,
        log: Optional[ThrottledLog] = None) -> Outcome:
    """Reconstruct and place every object of one view set, publish them and count them."""
    view_set = job.views
    names = describe_views(job, topics)
    started_ns = time.monotonic_ns()
    try:
        found = reconstruct_view_set(
            reconstructor, view_set, poses=placing.poses, settings=config.placement_settings(),
            min_views=config.object_min_views,
            threshold=threshold, roi_margin=config.roi_margin)
    except PlacementFailedError as exc:
        return placing.failed(exc, f'objects of {len(view_set)} view(s) ({names}, stamp '
                                   f'{view_set.newest_stamp_ns / NS_PER_S:.3f})',
                              stats=stats, log=log)
    for drop in found.drops:
        placing.report_drop(drop)
    result = found.result
    update = objects.scene.update(result)
    header = Header(stamp=ns_to_stamp(view_set.newest_stamp_ns), frame_id=config.fixed_frame)
    placed_ns = time.monotonic_ns()
    messages = objects.messages(update, header, markers=publisher.markers_watched)
    published_ns = publisher.publish_objects(
        messages.cloud, messages.markers, header=header,
        build_markers=lambda: objects_to_markers(update.objects, header=header))
    objects.publish(messages)
    left_out = found.left_out
    stats.objects(len(update.objects), left_out)
    for dropped in result.dropped:
        if log is not None:
            log.warn(('object placement',), f'an object of {names} (instances '
                     f'{dropped.instance_ids}) is left out: {dropped.reason}')
    times = result.times
    latency_ms = (published_ns - view_set.newest_received_ns) / 1e6
    model_ms = times.network_s * 1e3
    breakdown = {'queue_ms': (started_ns - view_set.newest_received_ns) / 1e6,
                 'prepare_ms': (times.matching_s + times.preprocess_s) * 1e3,
                 'infer_ms': model_ms, 'place_ms': times.placement_s * 1e3,
                 'publish_ms': (published_ns - placed_ns) / 1e6}
    first = stats.succeeded(stamp_ns=view_set.newest_stamp_ns, views=names,
                            points=messages.cloud.width, latency_ms=latency_ms,
                            model_ms=model_ms, breakdown=breakdown)
    ids = ', '.join(str(o.object_id) for o in update.objects) or 'none'
    summary = (f'{len(view_set)} view(s) ({names}), stamp '
               f'{view_set.newest_stamp_ns / NS_PER_S:.3f}: {len(update.objects)} object(s) '
               f'(ids {ids}) placed in {config.fixed_frame}, {messages.cloud.width} occupied '
               f'voxels; left out: {left_out[DropReason.UNMATCHED]} unmatched, '
               f'{left_out[DropReason.PLACEMENT_FAILED]} unplaced; '
               f'{result.forward_passes} forward pass(es), model {model_ms:.1f} ms, frame to '
               f'cloud {latency_ms:.1f} ms')
    if first:
        logger.info(f'first objects published: {summary}')
    else:
        logger.debug(f'reconstructed {summary}')
    return Outcome(True, f'reconstructed from {summary}')
