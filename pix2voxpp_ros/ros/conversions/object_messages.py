"""Every message of one view set's objects (``mask_mode: instances``), for the node and the bag.

:func:`object_set_messages` turns a :class:`~...core.multi_object.SceneUpdate` into what the
node publishes and ``pix2voxpp-bag`` writes, so both give the same bytes: the cloud of every
object (``~/occupancy``), their poses (``~/objects``), and on request the markers
(``~/markers``), ``vision_msgs/Detection3DArray`` (``~/detections``) and the
``moveit_msgs/CollisionObject`` changes. The surfaces are built once and shared by markers
and collision objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from geometry_msgs.msg import PoseArray
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from .objects import object_meshes, objects_to_cloud, objects_to_markers, objects_to_pose_array
from .optional_outputs import objects_to_collision_objects, objects_to_detections

if TYPE_CHECKING:  # the core's multi-object module needs torch; the messages do not
    from ...core.multi_object import SceneUpdate


@dataclass
class ObjectSetMessages:
    """One view set's object messages; the optional ones are None (or empty) when not built."""

    cloud: PointCloud2
    poses: PoseArray
    markers: Optional[MarkerArray] = None
    detections: Optional[Any] = None
    collision_objects: list[Any] = field(default_factory=list)


def object_set_messages(update: SceneUpdate, *, header: Header, markers: bool = True,
                        detections: bool = False, collision_objects: bool = False
                        ) -> ObjectSetMessages:
    """Build the messages of one view set's objects, all with ``header`` (the fixed frame).

    :param detections: build the Detection3DArray (vision_msgs must import).
    :param collision_objects: build the CollisionObject changes (moveit_msgs must import).
    """
    objects = update.objects
    meshes = object_meshes(objects) if markers or collision_objects else None
    return ObjectSetMessages(
        cloud=objects_to_cloud(objects, header=header),
        poses=objects_to_pose_array(objects, header=header),
        markers=objects_to_markers(objects, header=header, meshes=meshes) if markers else None,
        detections=objects_to_detections(objects, header=header) if detections else None,
        collision_objects=objects_to_collision_objects(objects, update.changes, meshes or {},
                                                       header=header)
        if collision_objects else [])
