"""ROS time stamps <-> integer nanoseconds (the core's unit of time)."""

from __future__ import annotations

from builtin_interfaces.msg import Time

from ...core.clock import NS_PER_S


def stamp_to_ns(stamp: Time) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Return integer nanoseconds as a ``builtin_interfaces/Time``."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)
