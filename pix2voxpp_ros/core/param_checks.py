"""The value checks of the node's parameter schema (:mod:`.node_config`), with their bounds.

Each check takes a type-checked value and returns why it is refused, or None. The upper bounds
are :mod:`.limits`' (far beyond what a real robot sets) and each refusal says why the bound
exists. Pure Python.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Optional

from .geometry import POSE_NUMBERS, PoseError, poses_from_numbers
from .limits import (MAX_DURATION_S, MAX_RATE_HZ, MAX_ROI_MARGIN, MAX_ROI_PX, MAX_VIEWS,
                     MIN_RATE_HZ, short_repr)

Check = Callable[[Any], Optional[str]]
_DEVICE_RE = re.compile(r'^(auto|cpu|cuda|cuda:\d+)$')
DURATION_REASON = 'longer than a day: no frame is kept, awaited or synced that long'


def one_of(choices: tuple[str, ...]) -> Check:
    """Refuse anything but one of ``choices``."""
    return lambda v: None if v in choices else f'must be one of {", ".join(choices)}'


def at_least(low: float) -> Check:
    """Refuse values below ``low``."""
    return lambda v: None if v >= low else f'must be >= {low:g}'


def between(low: float, high: float, why: str) -> Check:
    """Refuse values outside ``[low, high]``; ``why`` says why ``high`` is the bound."""
    def check(v: float) -> Optional[str]:
        if v < low:
            return f'must be >= {low:g}'
        if v > high:
            return f'must be <= {high:{"d" if isinstance(high, int) else "g"}} ({why}), got ' \
                f'{short_repr(v)}'
        return None
    return check


def duration(*, positive: bool = False) -> Check:
    """Check a time in seconds: >= 0 (or > 0) and at most :data:`MAX_DURATION_S`."""
    def check(v: float) -> Optional[str]:
        if positive and not v > 0:
            return 'must be > 0'
        return between(0.0, MAX_DURATION_S, DURATION_REASON)(v)
    return check


def check_rate(v: float) -> Optional[str]:
    """Check ``max_rate_hz``: 0 (no limit), else one a day to a million a second."""
    if v == 0.0:
        return None
    if v < 0.0:
        return 'must be >= 0'
    if v < MIN_RATE_HZ:
        return (f'must be 0 (no limit) or >= {MIN_RATE_HZ:.3g} (one a day: a longer period '
                f'overflows the clock arithmetic), got {short_repr(v)}')
    if v > MAX_RATE_HZ:
        return (f'must be <= {MAX_RATE_HZ:g} (no camera delivers more frames a second; '
                f'0 means no limit), got {short_repr(v)}')
    return None


def check_weights(path: str) -> Optional[str]:
    """Refuse a checkpoint path that names no file."""
    if not path:
        return 'is empty: set it to a Pix2Vox++ checkpoint file (.pth)'
    if not os.path.isfile(os.path.expanduser(path)):
        return f'file not found: {short_repr(path)}'
    return None


def check_threshold(v: float) -> Optional[str]:
    """Refuse a threshold outside (0, 1) unless negative (the weights' own)."""
    if v < 0.0 or 0.0 < v < 1.0:
        return None
    return "must be in (0, 1), or negative to use the weights' recommended threshold"


def check_topics(topics: tuple[str, ...]) -> Optional[str]:
    """Check topics: one or more, distinct, non-empty, at most :data:`MAX_VIEWS`."""
    if not topics:
        return 'needs at least one topic'
    if len(topics) > MAX_VIEWS:
        return (f'lists {len(topics)} topics, more than {MAX_VIEWS} (views of one '
                'reconstruction: the network was trained with up to 20)')
    if any(not t.strip() for t in topics):
        return 'holds an empty topic name'
    if len(set(topics)) != len(topics):
        return 'lists a topic twice'
    return None


def check_device(v: str) -> Optional[str]:
    """Check a device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    return None if _DEVICE_RE.match(v) else "must be 'auto', 'cpu', 'cuda' or 'cuda:N'"


def check_rois(values: tuple[int, ...]) -> Optional[str]:
    """Check ROIs: 4 integers per camera, sizes >= 0, each within :data:`MAX_ROI_PX`."""
    if len(values) % 4:
        return f'needs 4 integers (x, y, width, height) per camera, got {len(values)}'
    for i in range(0, len(values), 4):
        if values[i + 2] < 0 or values[i + 3] < 0:
            return f'camera {i // 4}: width and height must be >= 0, got {values[i:i + 4]}'
        if any(abs(v) > MAX_ROI_PX for v in values[i:i + 4]):
            return (f'camera {i // 4}: values must lie within +-{MAX_ROI_PX} pixels (wider '
                    f'than any camera sensor), got {short_repr(values[i:i + 4])}')
    return None


def check_roi_margin(v: float) -> Optional[str]:
    """Check a margin: negative (the training framing), else <= :data:`MAX_ROI_MARGIN`."""
    if v > MAX_ROI_MARGIN:
        return (f'must be <= {MAX_ROI_MARGIN:g} (a crop {MAX_ROI_MARGIN + 1:g} times the '
                f'region; the object would be a few pixels of the network input), got '
                f'{short_repr(v)}')
    return None


def check_no_duplicates(topics: tuple[str, ...]) -> Optional[str]:
    """Refuse a topic listed twice (mask, camera_info topics; the count is checked elsewhere)."""
    return 'lists a topic twice' if len(set(topics)) != len(topics) else None


def non_empty(v: str) -> Optional[str]:
    """Refuse an empty or blank string."""
    return None if v.strip() else 'must not be empty'


def check_camera_poses(values: tuple[float, ...]) -> Optional[str]:
    """Every group of 7 numbers must be a rigid pose (their count is checked with the cameras)."""
    if len(values) % POSE_NUMBERS:
        return (f'must hold {POSE_NUMBERS} numbers per camera (x y z qx qy qz qw), got '
                f'{len(values)}')
    try:
        poses_from_numbers(list(values), len(values) // POSE_NUMBERS)
    except PoseError as exc:
        return str(exc)
    return None
