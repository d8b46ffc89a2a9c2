"""Camera poses from TF (``tf2_ros``) at an image's stamp, as the core's 4×4 matrices.

A moving wrist camera's pose changes between frames, so every frame's pose is looked up at its
own stamp in a ``tf2_ros.Buffer`` that a ``TransformListener`` fills from ``/tf`` and
``/tf_static``. ``tf2_ros`` comes with every robot's ROS; where it does not import (the PyPI
wheels), :func:`tf_available` says so and the node falls back to fixed ``camera_poses``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..core.calibration import PoseUnavailableError
from ..core.geometry import PoseError, pose_matrix
from ..core.views import Frame

__all__ = ['PoseUnavailableError', 'TfPoses', 'tf_available', 'transform_to_matrix']


def tf_available() -> bool:
    """Whether ``tf2_ros`` can be imported here."""
    return importlib.util.find_spec('tf2_ros') is not None


def transform_to_matrix(transform: Any) -> np.ndarray:
    """``(4, 4)`` pose of a ``geometry_msgs/Transform`` (or the ``.transform`` of a stamped one).

    :raises PoseError: non-finite numbers or a zero quaternion.
    """
    t, q = transform.translation, transform.rotation
    return pose_matrix((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))


class TfPoses:
    """Look up frames' poses in ``fixed_frame`` from TF, on ``node``.

    The listener subscribes on ``node`` (its executor delivers ``/tf``); look-ups wait at most
    ``timeout_s`` for a transform that has not arrived yet, and only from a thread other than the
    one spinning ``node`` (a wait would otherwise block the very messages it waits for).

    :param node: an rclpy node.
    :param fixed_frame: the frame poses are expressed in (e.g. ``base_link``).
    :raises ImportError: tf2_ros is not installed.
    """

    def __init__(self, node: Any, fixed_frame: str) -> None:
        from tf2_ros import Buffer, TransformListener
        self.fixed_frame = fixed_frame
        self.buffer = Buffer(node=node)
        self._listener = TransformListener(self.buffer, node, spin_thread=False)

    def pose(self, frame: str, stamp_ns: int, *, timeout_s: float = 0.0) -> np.ndarray:
        """Pose ``(4, 4)`` of ``frame`` in the fixed frame at ``stamp_ns`` (0: the latest).

        :raises PoseUnavailableError: no transform within ``timeout_s``, with TF's reason.
        """
        from rclpy.duration import Duration
        from rclpy.time import Time
        from tf2_ros import TransformException
        when = Time(nanoseconds=stamp_ns)  # 0: the latest TF has
        try:
            stamped = self.buffer.lookup_transform(self.fixed_frame, frame, when,
                                                   timeout=Duration(seconds=timeout_s))
            return transform_to_matrix(stamped.transform)
        except TransformException as exc:
            raise PoseUnavailableError(f'no transform {self.fixed_frame} -> {frame} at '
                                       f'{stamp_ns / 1e9:.3f}: {exc}') from exc
        except PoseError as exc:
            raise PoseUnavailableError(f'transform {self.fixed_frame} -> {frame}: {exc}') from exc

    def frame_pose(self, frame: Frame, *, timeout_s: float) -> np.ndarray:
        """Look a frame's camera up at its stamp (:class:`~..core.calibration.PoseSource`)."""
        return self.pose(frame.frame_id, frame.stamp_ns, timeout_s=timeout_s)

    def close(self) -> None:
        """Unsubscribe from ``/tf`` and ``/tf_static``."""
        self._listener.unregister()
