"""Outputs in message packages a robot may lack: detections (vision_msgs) and MoveIt objects.

``vision_msgs`` and ``moveit_msgs`` (with ``shape_msgs``) are imported lazily, once per
process, so this module and every other output work without them. :class:`OptionalOutputs` is
what the node asks: whether an output can be built here, and, once per output, the sentence to
log when it cannot.

* ``detections``: ``vision_msgs/Detection3DArray`` (Humble and later layout), one
  Detection3D per object: ``id`` the object's id, ``bbox`` the tight box of its voxels
  (centre, heading, size), and where a category is given one result with ``class_id`` the
  category, score 1 (the category was given, not estimated) and the grid's pose.
* ``collision_objects``: ``moveit_msgs/CollisionObject`` per change of
  :func:`~...core.objects.collision_changes`: ADD with the object's pose in the fixed frame and
  its surface as one ``shape_msgs/Mesh`` (vertices in metres in the grid's frame, at the
  identity mesh pose), MOVE with the new pose only, REMOVE with the id only. Ids are
  ``<id_prefix><object id>``, stable while the object is tracked.
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping, Optional, Sequence

from std_msgs.msg import Header

from ...core.mesh import TriangleMesh, mesh_in_grid_frame
from ...core.objects import CollisionChanges, PlacedObject, object_box
from .objects import object_pose_message, pose_message

#: Each optional output and the message packages it needs.
OPTIONAL_OUTPUTS: dict[str, tuple[str, ...]] = {
    'detections': ('vision_msgs',),
    'collision_objects': ('moveit_msgs', 'shape_msgs'),
}
COLLISION_ID_PREFIX = 'pix2voxpp_object_'

_imports: dict[str, Optional[str]] = {}  # package -> None (imports) or why it does not


def _import_error(package: str) -> Optional[str]:
    """Try ``<package>.msg`` once per process: None when it imports, else the error's text."""
    if package not in _imports:
        try:
            importlib.import_module(f'{package}.msg')
            _imports[package] = None
        except ImportError as exc:
            _imports[package] = str(exc) or type(exc).__name__
    return _imports[package]


def unavailable_reason(output: str) -> Optional[str]:
    """None when ``output`` can be built here, else one sentence saying why it is not published.

    :raises ValueError: ``output`` is not one of :data:`OPTIONAL_OUTPUTS`.
    """
    if output not in OPTIONAL_OUTPUTS:
        raise ValueError(f'output must be one of {tuple(OPTIONAL_OUTPUTS)}, got {output!r}')
    missing = [(p, e) for p in OPTIONAL_OUTPUTS[output] if (e := _import_error(p)) is not None]
    if not missing:
        return None
    names = ' and '.join(p for p, _ in missing)
    return (f'{output} are not published: {names} does not import here '
            f'({"; ".join(e for _, e in missing)}); the other outputs go on')


class OptionalOutputs:
    """Which optional outputs a node builds, and each missing one's notice, said once."""

    def __init__(self) -> None:
        self._told: set[str] = set()

    def available(self, output: str) -> bool:
        """Whether ``output``'s message packages import here."""
        return unavailable_reason(output) is None

    def notice(self, output: str) -> Optional[str]:
        """Return why ``output`` is not published, the first time only; None after, or if it is."""
        reason = unavailable_reason(output)
        if reason is None or output in self._told:
            return None
        self._told.add(output)
        return reason


def objects_to_detections(objects: Sequence[PlacedObject], *, header: Header) -> Any:
    """Build a ``vision_msgs/Detection3DArray`` of ``objects``.

    :raises ImportError: vision_msgs does not import (ask :func:`unavailable_reason` first).
    """
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
    detections = []
    for obj in objects:
        box = object_box(obj)
        detection = Detection3D(header=header, id=str(obj.object_id))
        detection.bbox.center = pose_message(box.centre, box.heading_rad)
        detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z = box.size
        if obj.category is not None:
            result = ObjectHypothesisWithPose()
            result.hypothesis.class_id, result.hypothesis.score = obj.category, 1.0
            result.pose.pose = object_pose_message(obj.pose)
            detection.results = [result]
        detections.append(detection)
    return Detection3DArray(header=header, detections=detections)


def _shape_mesh(mesh: TriangleMesh, size_m: float) -> Any:
    from geometry_msgs.msg import Point
    from shape_msgs.msg import Mesh, MeshTriangle
    return Mesh(vertices=[Point(x=x, y=y, z=z)
                          for x, y, z in mesh_in_grid_frame(mesh, size_m).tolist()],
                triangles=[MeshTriangle(vertex_indices=corners)
                           for corners in mesh.triangles.astype('uint32').tolist()])


def objects_to_collision_objects(
    objects: Sequence[PlacedObject],
    changes: CollisionChanges,
    meshes: Mapping[int, TriangleMesh],
    *,
    header: Header,
    id_prefix: str = COLLISION_ID_PREFIX,
) -> list[Any]:
    """Build the ``moveit_msgs/CollisionObject`` messages that apply ``changes`` to a scene.

    :param meshes: each object's surface by id (:func:`.objects.object_meshes`); an object to
        add without triangles is left out (MoveIt takes no empty shape).
    :raises ImportError: moveit_msgs or shape_msgs does not import.
    """
    from geometry_msgs.msg import Pose
    from moveit_msgs.msg import CollisionObject
    by_id = {obj.object_id: obj for obj in objects}
    messages = []
    for object_id in changes.add:
        obj, mesh = by_id[object_id], meshes[object_id]
        if len(mesh) == 0:
            continue
        identity = Pose()
        identity.orientation.w = 1.0
        messages.append(CollisionObject(
            header=header, id=f'{id_prefix}{object_id}', pose=object_pose_message(obj.pose),
            meshes=[_shape_mesh(mesh, obj.pose.size_m)], mesh_poses=[identity],
            operation=CollisionObject.ADD))
    messages.extend(CollisionObject(header=header, id=f'{id_prefix}{object_id}',
                                    pose=object_pose_message(by_id[object_id].pose),
                                    operation=CollisionObject.MOVE)
                    for object_id in changes.move)
    messages.extend(CollisionObject(header=header, id=f'{id_prefix}{object_id}',
                                    operation=CollisionObject.REMOVE)
                    for object_id in changes.remove)
    return messages
