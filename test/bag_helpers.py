"""Recordings for the bag tool's tests, written and read with ``rosbags`` (not rclpy).

``rosbags`` serializes independently of rclpy, so a bag written here checks the tool's reading,
and a bag read here checks what the tool wrote. Shared by the ``test_bag*`` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from pix2voxpp_ros.core.clock import NS_PER_S

TS = get_typestore(Stores.ROS2_HUMBLE)
IMAGE = 'sensor_msgs/msg/Image'
STORAGE = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


def header_message(stamp_ns: int, frame_id: str) -> Any:
    """Build a rosbags std_msgs/Header."""
    return TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=stamp_ns // NS_PER_S,
                                                      nanosec=stamp_ns % NS_PER_S),
        frame_id=frame_id)


def image_message(array: np.ndarray, stamp_ns: int, encoding: str, *,
                  frame_id: str = 'camera') -> Any:
    """Build a rosbags sensor_msgs/Image (not rclpy: an independent serializer).

    :param array: ``(H, W)`` or ``(H, W, C)`` uint8, or uint16 (stored little-endian).
    """
    channels = 1 if array.ndim == 2 else array.shape[2]
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<')).view(np.uint8)
    return TS.types[IMAGE](header=header_message(stamp_ns, frame_id), height=array.shape[0],
                           width=array.shape[1], encoding=encoding, is_bigendian=0,
                           step=array.shape[1] * channels * array.itemsize,
                           data=data.reshape(-1))


def transform_message(parent: str, child: str, xyz: tuple, quaternion: tuple,
                      stamp_ns: int) -> Any:
    """Build a rosbags geometry_msgs/TransformStamped (for a recorded /tf)."""
    types = TS.types
    return types['geometry_msgs/msg/TransformStamped'](
        header=header_message(stamp_ns, parent), child_frame_id=child,
        transform=types['geometry_msgs/msg/Transform'](
            translation=types['geometry_msgs/msg/Vector3'](x=xyz[0], y=xyz[1], z=xyz[2]),
            rotation=types['geometry_msgs/msg/Quaternion'](x=quaternion[0], y=quaternion[1],
                                                           z=quaternion[2], w=quaternion[3])))


def write_bag(path: Path, messages: list[tuple[str, int, Any]], *, storage: str = 'mcap',
              types: Optional[dict[str, str]] = None) -> Path:
    """Write ``(topic, time ns, rosbags message or raw bytes)`` in order; types per topic."""
    types = dict(types or {})
    with Writer(path, version=9, storage_plugin=STORAGE[storage]) as writer:
        connections = {}
        for topic, _, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, types.get(topic, IMAGE),
                                                           typestore=TS)
        for topic, stamp, msg in messages:
            raw = msg if isinstance(msg, bytes) else TS.serialize_cdr(
                msg, types.get(topic, IMAGE))
            writer.write(connections[topic], stamp, raw)
    return path


def read_bag(path: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every message of a bag decoded with rosbags, by topic: ``[(time ns, message)]``."""
    out: dict[str, list] = {}
    with Reader(path) as reader:
        for connection, stamp, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (stamp, TS.deserialize_cdr(raw, connection.msgtype)))
    return out


def stamp_of(msg: Any) -> int:
    return msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
