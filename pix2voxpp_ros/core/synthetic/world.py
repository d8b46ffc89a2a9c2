"""The synthetic world: where the rig puts a scene in the robot's fixed frame, and at what size.

A :class:`~.scenes.TabletopScene` is built in the target's canonical frame (ShapeNet axes, y up,
one unit = the edge of its 32³ grid). The rig places that whole scene in a fixed frame (REP 103,
z up; the table's surface is the plane z = 0) by an :class:`~..placement.ObjectPose`: the target's
grid centre stands at a random position on the table, turned by a random heading, at a metric
size drawn from :data:`CATEGORY_SIZES_M`. Scaling the scene and its cameras together leaves every
image unchanged, so the same renderings serve any placement: only the cameras' poses in the
fixed frame (TF) and the truth change.
"""

from __future__ import annotations

import math

import numpy as np

from ..placement import ObjectPose
from ..voxels import SHAPENET_TO_ROS
from .camera import Camera

#: Largest extent of real objects of each category, metres (low, high): a mug 8–13 cm, a bottle
#: 20–33 cm, a desk lamp 30–70 cm, a chair 0.75–1.1 m, a table 0.8–1.8 m, a sofa 1.6–2.4 m, a
#: car 3.6–4.9 m, a light aircraft 7–12 m. The target's grid edge (its ``size_m``) is drawn
#: uniformly from its category's range.
CATEGORY_SIZES_M = {
    'mug': (0.08, 0.13),
    'bottle': (0.20, 0.33),
    'lamp': (0.30, 0.70),
    'chair': (0.75, 1.10),
    'table': (0.80, 1.80),
    'sofa': (1.60, 2.40),
    'car': (3.60, 4.90),
    'airplane': (7.0, 12.0),
}
#: The target's centre is placed within this many grid edges of the table's centre (x and y).
POSITION_RANGE = 1.5


def random_object_pose(rng: np.random.Generator, category: str, table_y: float) -> ObjectPose:
    """Draw where the target stands: position on the table, heading, metric size.

    :param category: the target's category (a key of :data:`CATEGORY_SIZES_M`).
    :param table_y: the table's height in the canonical frame (the target's lowest point).
    :raises KeyError: a category without a size range.
    """
    low, high = CATEGORY_SIZES_M[category]
    size = float(rng.uniform(low, high))
    x, y = (float(v) * size for v in rng.uniform(-POSITION_RANGE, POSITION_RANGE, size=2))
    heading = float(rng.uniform(-math.pi, math.pi))
    # The table's surface (canonical y = table_y) is the fixed plane z = 0.
    return ObjectPose(position=(x, y, -table_y * size), heading_rad=heading, size_m=size)


def camera_to_fixed(camera: Camera, pose: ObjectPose) -> np.ndarray:
    """Return the ``(4, 4)`` pose of a scene camera's optical frame in the fixed frame, metres.

    Scene points map to the fixed frame by ``p = c + s R_z(heading) SHAPENET_TO_ROS p_scene``;
    the camera's axes turn by the same rotation and its centre moves with the scene.
    """
    turn = pose.rotation() @ SHAPENET_TO_ROS  # (3, 3) canonical -> fixed directions
    result = np.eye(4)
    result[:3, :3] = turn @ np.asarray(camera.rotation).T
    result[:3, 3] = np.asarray(pose.position) + pose.size_m * turn @ np.asarray(camera.centre)
    return result
