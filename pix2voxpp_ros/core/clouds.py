"""Reading the fields of a PointCloud2-shaped message without ROS.

Any object with a PointCloud2's ``data``, ``point_step`` and ``fields`` (each with ``name`` and
``offset``) will do: an rclpy message, or a ``rosbags`` one read from a recording. Only the
node's layout is read: float32 fields, little-endian, no padding between points.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def cloud_points(cloud: Any, fields: tuple[str, ...] = ('x', 'y', 'z')) -> np.ndarray:
    """Return ``fields`` of every point as ``(N, len(fields))`` float32.

    :raises KeyError: a field the cloud does not have.
    """
    rows = np.frombuffer(bytes(cloud.data), dtype=np.float32).reshape(-1, cloud.point_step // 4)
    offsets = {f.name: f.offset // 4 for f in cloud.fields}
    return rows[:, [offsets[name] for name in fields]]
