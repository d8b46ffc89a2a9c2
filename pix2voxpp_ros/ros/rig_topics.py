"""The simulated rig's node name and topic names, defined once (pure Python, no rclpy).

``sim_camera_rig`` publishes these names relative to its namespace; the demo runs it in
:data:`NAMESPACE` and subscribes to them, ``rig_bag`` writes them into a bag, and tests and
benchmarks listen to them. Each function takes the namespace: ``'/rig'`` (the demo's, the
default) gives absolute names, ``'/'`` names at the root, ``''`` the relative names the rig's own
publishers use. A compressed image topic is :func:`~.conversions.compressed_topic` of the image's.
"""

from __future__ import annotations

RIG_NODE_NAME = 'sim_camera_rig'
NAMESPACE = '/rig'  # where the demo and demo.launch.py run the rig


def _under(namespace: str, name: str) -> str:
    return f'{namespace.rstrip("/")}/{name}' if namespace else name


def image_topic(camera: int, namespace: str = NAMESPACE) -> str:
    """Return camera ``camera``'s raw image topic (sensor_msgs/Image, rgb8)."""
    return _under(namespace, f'camera_{camera}/image_raw')


def mask_topic(camera: int, namespace: str = NAMESPACE) -> str:
    """Return camera ``camera``'s object mask topic (sensor_msgs/Image, mono8)."""
    return _under(namespace, f'camera_{camera}/object_mask')


def instance_mask_topic(camera: int, namespace: str = NAMESPACE) -> str:
    """Return camera ``camera``'s instance label topic (sensor_msgs/Image, mono8; objects >= 2)."""
    return _under(namespace, f'camera_{camera}/instance_mask')


def info_topic(camera: int, namespace: str = NAMESPACE) -> str:
    """Return camera ``camera``'s camera info topic (sensor_msgs/CameraInfo)."""
    return _under(namespace, f'camera_{camera}/camera_info')


def truth_topic(namespace: str = NAMESPACE) -> str:
    """Return the ground-truth cloud's topic (sensor_msgs/PointCloud2, private to the rig)."""
    return _under(namespace, f'{RIG_NODE_NAME}/ground_truth') if namespace else '~/ground_truth'


def object_topic(namespace: str = NAMESPACE) -> str:
    """Return the object name's topic (std_msgs/String ``<name> <stamp ns>``, private)."""
    return _under(namespace, f'{RIG_NODE_NAME}/object') if namespace else '~/object'


def true_placement_topic(namespace: str = NAMESPACE) -> str:
    """Return the true placement's topic (visualization_msgs/Marker CUBE, private)."""
    return _under(namespace, f'{RIG_NODE_NAME}/true_placement') if namespace \
        else '~/true_placement'


def true_placements_topic(namespace: str = NAMESPACE) -> str:
    """Return every target's true placement (visualization_msgs/MarkerArray, objects >= 2)."""
    return _under(namespace, f'{RIG_NODE_NAME}/true_placements') if namespace \
        else '~/true_placements'


TRUTH_TOPIC = truth_topic()
OBJECT_TOPIC = object_topic()
