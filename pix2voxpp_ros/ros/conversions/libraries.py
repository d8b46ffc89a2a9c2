"""Which implementation converts: ``cv_bridge`` / ``sensor_msgs_py`` where installed, or ours.

The libraries are imported lazily, once; a conversion's ``backend`` argument is one of
:data:`CONVERSION_BACKENDS`: ``auto`` (the library when importable), ``own`` or ``library``.
"""

from __future__ import annotations

from typing import Any

CONVERSION_BACKENDS = ('auto', 'own', 'library')

_cv_bridge: Any = None  # CvBridge instance, False once its import failed
_point_cloud2: Any = None  # sensor_msgs_py.point_cloud2 module, False once its import failed


def cv_bridge() -> Any:
    """Return the shared ``CvBridge``, or False when cv_bridge cannot be imported."""
    global _cv_bridge
    if _cv_bridge is None:
        try:
            from cv_bridge import CvBridge
            _cv_bridge = CvBridge()
        except ImportError:
            _cv_bridge = False
    return _cv_bridge


def point_cloud2() -> Any:
    """Return ``sensor_msgs_py.point_cloud2``, or False when it cannot be imported."""
    global _point_cloud2
    if _point_cloud2 is None:
        try:
            from sensor_msgs_py import point_cloud2 as module
            _point_cloud2 = module
        except ImportError:
            _point_cloud2 = False
    return _point_cloud2


def library_available(kind: str) -> bool:
    """Whether ``'cv_bridge'`` or ``'sensor_msgs_py'`` can be imported here."""
    if kind == 'cv_bridge':
        return bool(cv_bridge())
    if kind == 'sensor_msgs_py':
        return bool(point_cloud2())
    raise ValueError(f"kind must be 'cv_bridge' or 'sensor_msgs_py', got {kind!r}")


def use_library(backend: str, kind: str) -> bool:
    """Whether a conversion with ``backend`` uses the library ``kind``.

    :raises ValueError: ``backend`` is not one of :data:`CONVERSION_BACKENDS`.
    :raises ImportError: ``library`` asked for, but the library is not importable.
    """
    if backend not in CONVERSION_BACKENDS:
        raise ValueError(f'backend must be one of {CONVERSION_BACKENDS}, got {backend!r}')
    if backend == 'own':
        return False
    available = library_available(kind)
    if backend == 'library' and not available:
        raise ImportError(f'{kind} is not importable here')
    return available
