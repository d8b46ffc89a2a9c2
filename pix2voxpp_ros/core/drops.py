"""Why a frame or a view set was dropped: the one list of reasons, and the words logged for each.

The node's diagnostics (``frames_dropped.<reason>``) and ``pix2voxpp-bag``'s ``summary.json``
count drops by these values, so they never change. :class:`FrameDrop` is one dropped frame with
its reason and a detail; :meth:`FrameDrop.message` words it as both the node and the bag tool log
it. Pure Python: no ROS.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional

from .clock import NS_PER_S
from .limits import short_repr
from .preprocess import ImageTooLargeError


class DropReason(str, enum.Enum):
    """Why a frame (or, for :attr:`RATE`, a view set) did not reach the network.

    Members are strings (``DropReason.STALE == 'stale'``), so they index counters and JSON as
    their values do.
    """

    # Before the view buffer: the message could not become a frame.
    UNDECODABLE = 'undecodable'  # recorded bytes that are no message of the type (bag tool)
    ENCODING = 'encoding'  # an encoding the network cannot take
    BAD_IMAGE = 'bad_image'  # size, step or data length do not fit; corrupt compressed data
    TOO_LARGE = 'too_large'  # declares more than max_image_pixels pixels (refused undecoded)
    # Refused by the view buffer.
    OUT_OF_ORDER = 'out_of_order'  # not newer than the newest frame already seen from its camera
    FUTURE = 'future'  # stamped further in the future than future_tolerance_s
    STALE = 'stale'  # already older than max_frame_age_s when it arrived
    UNKNOWN_CAMERA = 'unknown_camera'  # camera index outside the configured cameras
    # With mask_topics: the frame's mask.
    NO_MASK = 'no_mask'  # no mask of the frame's stamp came within mask_timeout_s
    EMPTY_MASK = 'empty_mask'  # the mask marks no pixel
    BAD_MASK = 'bad_mask'  # the mask has another size or encoding than mono8 of the image's size
    # With placement: calibrated: the frame's calibration.
    NO_CAMERA_INFO = 'no_camera_info'  # no camera_info of its camera received yet
    BAD_CAMERA_INFO = 'bad_camera_info'  # K zero or non-finite, or for another image size
    NO_TRANSFORM = 'no_transform'  # no camera pose in fixed_frame at its stamp within tf_timeout_s
    # A whole view set, offline: replaced by a newer one before max_rate_hz allowed it to run.
    RATE = 'rate'
    # A whole view set: its reconstruction could not be placed (or fitted below
    # min_placement_iou) and was not published.
    PLACEMENT_FAILED = 'placement_failed'
    # With mask_mode: instances, one object of a view set: matched in fewer than min_views
    # cameras (an instance no other camera matched counts once per instance). An object whose
    # placement failed counts as PLACEMENT_FAILED.
    UNMATCHED = 'unmatched'

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


BUFFER_DROP_REASONS = (DropReason.OUT_OF_ORDER, DropReason.FUTURE, DropReason.STALE,
                       DropReason.UNKNOWN_CAMERA)
MASK_DROP_REASONS = (DropReason.NO_MASK, DropReason.EMPTY_MASK, DropReason.BAD_MASK)
CALIBRATION_DROP_REASONS = (DropReason.NO_CAMERA_INFO, DropReason.BAD_CAMERA_INFO,
                            DropReason.NO_TRANSFORM)
#: What one object of a view set (``mask_mode: instances``) can be left out for.
OBJECT_DROP_REASONS = (DropReason.UNMATCHED, DropReason.PLACEMENT_FAILED)
# Every reason a single frame is counted under, in the order diagnostics list them.
FRAME_DROP_REASONS = ((DropReason.ENCODING, DropReason.BAD_IMAGE) + BUFFER_DROP_REASONS
                      + MASK_DROP_REASONS + (DropReason.UNDECODABLE, DropReason.TOO_LARGE)
                      + CALIBRATION_DROP_REASONS)

_CLOCK_HINT = 'are the clocks synchronised, and use_sim_time set alike on camera and node?'
_BUFFER_HINTS = {
    DropReason.FUTURE: 'stamped more than future_tolerance_s ahead of the node clock; '
                       + _CLOCK_HINT,
    DropReason.STALE: 'older than max_frame_age_s on arrival; ' + _CLOCK_HINT,
    DropReason.OUT_OF_ORDER: 'not newer than the newest frame already received from this camera '
                             '(out of order or repeated)',
}
_SUPPORTED = 'rgb8, bgr8, rgba8, bgra8 or mono8'


@dataclass(frozen=True)
class FrameDrop:
    """One dropped frame of ``camera``: the reason and what follows "dropping ... on <topic>: ".

    :param frame: the dropped frame (a core ``Frame``), or None when no frame could be made.
    :param key: what repeats of one kind of drop share (for a throttled or once-only log).
    """

    camera: int
    reason: DropReason
    detail: str
    frame: Any = None
    key: tuple = ()

    def message(self, topic: str, *, mask_topic: Optional[str] = None) -> str:
        """Word the drop for the log, e.g. ``dropping frames on /cam0: <detail>``."""
        if self.reason is DropReason.BAD_IMAGE:
            return f'dropping a malformed frame on {topic}: {self.detail}'
        if self.reason is DropReason.TOO_LARGE:
            return f'dropping an oversized frame on {topic}: {self.detail}'
        if self.reason is DropReason.UNDECODABLE:
            return f'dropping undecodable frames on {topic}: {self.detail}'
        suffix = f' (masks on {mask_topic})' if mask_topic and self.reason in \
            MASK_DROP_REASONS else ''
        return f'dropping frames on {topic}: {self.detail}{suffix}'

    @property
    def log_key(self) -> tuple:
        """Drops with one log key are logged once per throttle period (or once per run)."""
        return (self.camera, self.reason) + self.key


def encoding_drop(camera: int, encoding: str) -> FrameDrop:
    """Drop a frame whose encoding the network cannot take.

    The encoding is the sender's text: it is shown cut short and kept out of the log key, so
    frames of ever new encodings share one throttled line per camera.
    """
    return FrameDrop(camera, DropReason.ENCODING,
                     f'encoding {short_repr(encoding)} is not supported (use {_SUPPORTED})')


def bad_image_drop(camera: int, problem: Any) -> FrameDrop:
    """Drop a malformed image (``problem``: the conversion's error or its text).

    An :class:`~.preprocess.ImageTooLargeError` (more than ``max_image_pixels``) is counted as
    :attr:`DropReason.TOO_LARGE`.
    """
    reason = DropReason.TOO_LARGE if isinstance(problem, ImageTooLargeError) else \
        DropReason.BAD_IMAGE
    return FrameDrop(camera, reason, str(problem))


def undecodable_drop(camera: int, problem: Any) -> FrameDrop:
    """Drop recorded bytes that do not decode to a message of the camera's type."""
    return FrameDrop(camera, DropReason.UNDECODABLE, str(problem))


def buffer_drop(frame: Any, reason: DropReason, *, now_ns: int) -> FrameDrop:
    """Drop a frame the view buffer refused at ``now_ns``: its stamp and the likely cause."""
    stamp_ns = frame.stamp_ns
    return FrameDrop(frame.camera, reason,
                     f'stamp {stamp_ns / NS_PER_S:.3f} (node clock minus stamp '
                     f'{(now_ns - stamp_ns) / NS_PER_S:+.3f} s) is '
                     f'{_BUFFER_HINTS.get(reason, reason)}', frame=frame)
