"""``pix2voxpp-bag`` with ``mask_mode: instances``: every object of each view set, as the node.

The masks are instance label images; each view set the recording gives (:mod:`.bag_input`, the
node's intake) goes through the node's :func:`~..core.multi_object.reconstruct_view_set` (every
object matched across the cameras, reconstructed in one batched pass and placed, from the
recorded camera poses), one :class:`~..core.multi_object.ObjectScene` per run keeps the
objects' ids, and :func:`~..ros.conversions.object_set_messages` builds what the node publishes,
all in ``fixed_frame`` and stamped like the set's newest frame: ``~/occupancy`` (every object,
with an ``instance`` field), ``~/markers`` (per object), ``~/objects`` (PoseArray),
``~/detections`` where vision_msgs imports, and with ``collision_objects`` the CollisionObject
changes on ``collision_object_topic`` where moveit_msgs imports (an output whose package does
not import is announced once, as the node announces it). No ``~/grid``, ``~/object_pose`` or
object frame on ``/tf``: the node publishes none in this mode.

One set per network call (its objects already share one pass), and no per-frame cache: each
object is cropped from the frame on its own. ``--ply-dir`` / ``--npy-dir`` get one file per
object, ``<index>_<stamp ns>_object<id>``: its points in ``fixed_frame`` (the published cloud's)
and its probability grid (ROS axes, the grid's own frame).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..core.calibration import PlacementFailedError
from ..core.drops import DropReason
from ..core.inference import InferenceError, Reconstructor
from ..core.instances import InstanceError
from ..core.multi_object import ObjectScene, SceneUpdate, ViewSetObjects, reconstruct_view_set
from ..core.node_config import NodeConfig
from ..core.preprocess import ImageInputError
from ..core.transforms import ResolvedPoses
from ..core.views import NS_PER_S, ViewSet
from ..core.voxels import grid_to_ros_axes, write_ply
from .bag_input import PROG, BagRunStats, Inputs, count_drops, resolve_topic

OBJECT_OUTPUT_KINDS = ('occupancy', 'markers', 'objects')


class ObjectSets:
    """One run's objects: the scene (stable ids), the topics and what each view set writes.

    :param bag: the open :class:`~..ros.bag_io.BagWriter`.
    :param files: ``{'ply' | 'npy': folder}`` of the files to write per object.
    """

    def __init__(self, bag: Any, config: NodeConfig, *, node_name: str, threshold: float,
                 inputs: Inputs, stats: BagRunStats, files: dict[str, Path]) -> None:
        from ..ros.bag_io import (CLOUD_TYPE, COLLISION_OBJECT_TYPE, DETECTIONS_TYPE,
                                  MARKERS_TYPE, POSE_ARRAY_TYPE)
        from ..ros.conversions import OptionalOutputs
        self.bag, self.config, self.threshold = bag, config, threshold
        self.inputs, self.stats, self.files = inputs, stats, files
        self.scene = ObjectScene()
        self.topics = {kind: f'/{node_name}/{kind}' for kind in OBJECT_OUTPUT_KINDS}
        types = dict(zip(OBJECT_OUTPUT_KINDS, (CLOUD_TYPE, MARKERS_TYPE, POSE_ARRAY_TYPE)))
        optional = OptionalOutputs()
        wanted = {'detections': (f'/{node_name}/detections', DETECTIONS_TYPE)}
        if config.collision_objects:
            wanted['collision_objects'] = (resolve_topic(config.collision_object_topic,
                                                         node_name), COLLISION_OBJECT_TYPE)
        for output, (topic, msgtype) in wanted.items():
            if optional.available(output):
                self.topics[output], types[output] = topic, msgtype
            else:
                print(f'{PROG}: {optional.notice(output)}', file=sys.stderr)
        for kind, topic in self.topics.items():
            bag.add_topic(topic, types[kind])

    def reconstruct(self, reconstructor: Reconstructor, view_set: ViewSet,
                    poses: Optional[ResolvedPoses]) -> None:
        """Reconstruct, place and write every object of one view set; count what is left out."""
        if poses is None:
            raise RuntimeError('a view set of objects came without its camera poses')
        found = self._objects(reconstructor, view_set, poses)
        if found is None:
            return
        stats = self.stats
        count_drops(stats, self.inputs, found.drops)
        update = self.scene.update(found.result)
        self._write(update, view_set.newest_stamp_ns, index=stats.reconstructed)
        result = found.result
        stats.reconstructed += 1
        stats.views[len(view_set)] += 1
        stats.passes += result.forward_passes
        stats.model_s += result.times.network_s
        stats.objects_published += len(update.objects)
        stats.objects_dropped.update(found.left_out)
        stats.object_ids.update(obj.object_id for obj in update.objects)
        ids = dict(zip(update.track.ids, result.objects))  # id -> its placement's quality
        stats.placed += [(view_set.newest_stamp_ns, obj.pose,
                          ids[obj.object_id].placement.silhouette_iou, obj.object_id)
                         for obj in update.objects]
        for dropped in result.dropped:
            stats.warn_once(('object placement',), f'an object of the set of stamp '
                            f'{self._stamp(view_set)} (instances {dropped.instance_ids}) is '
                            f'left out: {dropped.reason}; such objects are counted in '
                            'summary.json objects.dropped.placement_failed')

    def _objects(self, reconstructor: Reconstructor, view_set: ViewSet,
                 poses: ResolvedPoses) -> Optional[ViewSetObjects]:
        """Run the node's :func:`reconstruct_view_set`; None when the set fails (counted)."""
        config, stats = self.config, self.stats
        what = f'the {len(view_set)} view(s) of stamp {self._stamp(view_set)}'
        try:
            return reconstruct_view_set(
                reconstructor, view_set, poses=poses, settings=config.placement_settings(),
                min_views=config.object_min_views,
                threshold=self.threshold, roi_margin=config.roi_margin)
        except PlacementFailedError as exc:
            count_drops(stats, self.inputs, exc.drops)
            stats.sets_failed[DropReason.PLACEMENT_FAILED] += 1
            stats.warn_once(('placement',), f'objects of {what} failed: {exc}; such sets are '
                            'not written (counted in summary.json as placement_failed)')
        except InferenceError as exc:
            stats.sets_failed['inference'] += 1
            stats.warn_once('inference', f'skipping {what}: {exc}')
        except (ImageInputError, InstanceError) as exc:
            stats.sets_failed['image'] += 1
            stats.warn_once(('image', type(exc).__name__), f'skipping {what}: {exc}')
        return None

    def _write(self, update: SceneUpdate, stamp_ns: int, *, index: int) -> None:
        """Write the node's messages of one set and the files of its objects."""
        from std_msgs.msg import Header

        from ..ros.conversions import ns_to_stamp, object_set_messages
        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=self.config.fixed_frame)
        topics = self.topics
        messages = object_set_messages(update, header=header, markers=True,
                                       detections='detections' in topics,
                                       collision_objects='collision_objects' in topics)
        self.bag.write(topics['occupancy'], messages.cloud, stamp_ns)
        self.bag.write(topics['markers'], messages.markers, stamp_ns)
        self.bag.write(topics['objects'], messages.poses, stamp_ns)
        if messages.detections is not None:
            self.bag.write(topics['detections'], messages.detections, stamp_ns)
        for change in messages.collision_objects:
            self.bag.write(topics['collision_objects'], change, stamp_ns)
        for obj in update.objects:
            name = f'{index:05d}_{stamp_ns}_object{obj.object_id}'
            if 'ply' in self.files:  # metres in fixed_frame: the object's points of the cloud
                write_ply(self.files['ply'] / f'{name}.ply', *obj.occupied_points())
            if 'npy' in self.files and obj.probabilities is not None:
                np.save(self.files['npy'] / f'{name}.npy', grid_to_ros_axes(obj.probabilities))

    @staticmethod
    def _stamp(view_set: ViewSet) -> str:
        return f'{view_set.newest_stamp_ns / NS_PER_S:.3f}'
