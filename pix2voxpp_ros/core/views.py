"""View buffering: which camera frames go into a reconstruction.

Owns two things, both free of ROS:

* :class:`ViewBuffer` keeps the newest frame of each camera (several static cameras) or a short
  history of key frames (one moving camera), drops frames that are out of order, in the future or
  too old, starts afresh when the clock jumps back (a looping bag, a simulator reset), and
  answers whether a *complete* view set exists:

  - **several cameras**: at least ``min_views`` cameras have a fresh frame and those frames lie
    within ``sync_slop_s`` of each other; the largest such group wins, the newest on a tie;
  - **one moving camera**: ``views_per_reconstruction`` key frames, each at least
    ``min_view_interval_s`` after the previous one, all fresh.

  A set is *new* when it holds at least one frame that no earlier taken set used, so a camera that
  stops publishing never makes the same frames be reconstructed again.
* The small value types :class:`Frame`, :class:`ViewSet` and :class:`BufferStatus`.

A refused frame is answered with its :class:`~.drops.DropReason`. What feeds the buffer is
:class:`~.intake.FrameIntake`; the one-slot queue after it is :mod:`.pending_slot`.

Stamps are integer nanoseconds (exact, as ROS stamps are); "now" is passed in by the caller, so the
same code runs on wall time, simulated time and in tests.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .clock import NS_PER_S, seconds_to_ns
from .drops import BUFFER_DROP_REASONS, DropReason


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera frame as the buffer stores it.

    :param camera: index of the camera in the configured camera list.
    :param stamp_ns: capture time in nanoseconds (the message header stamp).
    :param image: ``(H, W, C)`` or ``(H, W)`` uint8 pixels, layout as ``encoding`` says.
    :param encoding: image encoding (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``).
    :param received_ns: monotonic arrival time in nanoseconds, for latency measurements.
    :param mask: the object's mask (``(H, W)`` uint8, nonzero on the object), or None.
    :param frame_id: the image's ``header.frame_id`` (its camera's optical frame, for TF).
    :param intrinsics: ``(3, 3)`` K from the camera's ``camera_info`` (``placement:
        calibrated``), or None.
    """

    camera: int
    stamp_ns: int
    image: np.ndarray
    encoding: str = 'rgb8'
    received_ns: int = 0
    mask: Optional[np.ndarray] = None
    frame_id: str = ''
    intrinsics: Optional[np.ndarray] = None


@dataclass(frozen=True, eq=False)
class ViewSet:
    """A complete set of views for one reconstruction.

    :param frames: the frames, ordered by camera index (several cameras) or by time (one camera).
    """

    frames: tuple[Frame, ...]

    @property
    def newest_stamp_ns(self) -> int:
        """Stamp of the newest frame: the stamp the reconstruction is published with."""
        return max(frame.stamp_ns for frame in self.frames)

    @property
    def oldest_stamp_ns(self) -> int:
        """Stamp of the oldest frame."""
        return min(frame.stamp_ns for frame in self.frames)

    @property
    def newest_received_ns(self) -> int:
        """Monotonic arrival time of the frame that arrived last."""
        return max(frame.received_ns for frame in self.frames)

    @property
    def cameras(self) -> tuple[int, ...]:
        """Camera index of each frame, in frame order."""
        return tuple(frame.camera for frame in self.frames)

    @property
    def key(self) -> tuple[tuple[int, int], ...]:
        """``(camera, stamp_ns)`` of every frame: identifies the set."""
        return tuple((frame.camera, frame.stamp_ns) for frame in self.frames)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class ViewBufferConfig:
    """How frames are grouped into view sets.

    :param num_cameras: number of cameras; exactly 1 selects moving-camera mode.
    :param min_views: cameras needed for a complete set (several cameras); 0 means all of them.
    :param views_per_reconstruction: key frames per set (moving camera).
    :param min_view_interval_s: least time between two key frames (moving camera).
    :param sync_slop_s: largest stamp difference between frames of one set (several cameras).
    :param max_frame_age_s: frames older than this (now minus stamp) are discarded.
    :param future_tolerance_s: frames stamped further than this after now are dropped.
    :raises ValueError: a value out of range, or a moving-camera set that could never be complete
        (its key frames would span more than ``max_frame_age_s``).
    """

    num_cameras: int = 1
    min_views: int = 0
    views_per_reconstruction: int = 3
    min_view_interval_s: float = 0.5
    sync_slop_s: float = 0.1
    max_frame_age_s: float = 2.0
    future_tolerance_s: float = 0.5

    def __post_init__(self) -> None:
        if self.num_cameras < 1:
            raise ValueError(f'num_cameras must be at least 1, got {self.num_cameras}')
        if not 0 <= self.min_views <= self.num_cameras:
            raise ValueError(f'min_views must be in [0, {self.num_cameras}] (0 = all cameras), '
                             f'got {self.min_views}')
        if self.views_per_reconstruction < 1:
            raise ValueError('views_per_reconstruction must be at least 1, '
                             f'got {self.views_per_reconstruction}')
        for name in ('min_view_interval_s', 'sync_slop_s', 'future_tolerance_s'):
            if not getattr(self, name) >= 0.0:  # also refuses NaN
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if not self.max_frame_age_s > 0.0:
            raise ValueError(f'max_frame_age_s must be > 0, got {self.max_frame_age_s}')
        span = (self.views_per_reconstruction - 1) * self.min_view_interval_s
        if self.moving and span >= self.max_frame_age_s:
            raise ValueError(f'{self.views_per_reconstruction} views at least '
                             f'{self.min_view_interval_s} s apart span {span:g} s, which is not '
                             f'less than max_frame_age_s {self.max_frame_age_s}: a set could '
                             'never be complete')

    @property
    def moving(self) -> bool:
        """True in moving-camera mode (one camera, several key frames per set)."""
        return self.num_cameras == 1

    @property
    def required_views(self) -> int:
        """Frames a complete set needs."""
        if self.moving:
            return self.views_per_reconstruction
        return self.min_views or self.num_cameras


@dataclass(frozen=True)
class BufferStatus:
    """What the buffer holds, for diagnostics and for explaining why no set is complete.

    :param ages_s: per camera, age (now minus stamp) of its newest fresh frame, None if none.
    :param key_frames: fresh key frames held (moving camera; else 0).
    :param required: frames a complete set needs.
    :param complete_views: frames in the best complete set now, 0 if none is complete.
    """

    ages_s: tuple[Optional[float], ...]
    key_frames: int
    required: int
    complete_views: int


class ViewBuffer:
    """Thread-safe store of the newest frames and selector of complete view sets.

    :param config: grouping rules, see :class:`ViewBufferConfig`.
    """

    def __init__(self, config: ViewBufferConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._max_age_ns = seconds_to_ns(config.max_frame_age_s)
        self._future_ns = seconds_to_ns(config.future_tolerance_s)
        self._slop_ns = seconds_to_ns(config.sync_slop_s)
        self._interval_ns = seconds_to_ns(config.min_view_interval_s)
        self._drops = dict.fromkeys(BUFFER_DROP_REASONS, 0)
        self._accepted = [0] * config.num_cameras
        self._clock_resets = 0
        self._clear()

    def _clear(self) -> None:
        n = self.config.num_cameras
        self._newest: list[Optional[Frame]] = [None] * n
        self._newest_stamp: list[Optional[int]] = [None] * n  # kept when the frame expires
        self._used_stamp: list[Optional[int]] = [None] * n  # newest stamp a taken set used
        self._key_frames: deque[Frame] = deque(maxlen=self.config.views_per_reconstruction)

    def add(self, frame: Frame, *, now_ns: int) -> Optional[DropReason]:
        """Store a frame; return None when stored, else the drop reason (and count it).

        :param frame: the frame; ``frame.camera`` indexes the configured cameras.
        :param now_ns: the current time on the clock the stamps use.
        """
        with self._lock:
            camera = frame.camera
            if not 0 <= camera < self.config.num_cameras:
                return self._drop(DropReason.UNKNOWN_CAMERA)
            self._detect_clock_jump(now_ns)
            if frame.stamp_ns > now_ns + self._future_ns:
                return self._drop(DropReason.FUTURE)
            if now_ns - frame.stamp_ns > self._max_age_ns:
                return self._drop(DropReason.STALE)
            newest = self._newest_stamp[camera]
            if newest is not None and frame.stamp_ns <= newest:
                return self._drop(DropReason.OUT_OF_ORDER)
            self._newest_stamp[camera] = frame.stamp_ns
            self._newest[camera] = frame
            self._accepted[camera] += 1
            if self.config.moving:
                last = self._key_frames[-1].stamp_ns if self._key_frames else None
                if last is None or frame.stamp_ns - last >= self._interval_ns:
                    self._key_frames.append(frame)
            return None

    def _detect_clock_jump(self, now_ns: int) -> None:
        """Start afresh when the clock is behind a stamp already accepted (it jumped back).

        Accepted stamps are at most ``future_tolerance_s`` ahead of the clock when they come, so
        a clock further behind than that went backwards (``ros2 bag play --loop`` with
        ``/clock``, a simulator reset): every old stamp would make new frames "out of order".
        """
        stamps = [s for s in self._newest_stamp if s is not None]
        if stamps and max(stamps) - now_ns > self._future_ns:
            self._clear()
            self._clock_resets += 1

    def _drop(self, reason: DropReason) -> DropReason:
        self._drops[reason] += 1
        return reason

    def _expire(self, now_ns: int) -> None:
        """Forget frames older than max_frame_age_s (frees their pixels)."""
        for camera, frame in enumerate(self._newest):
            if frame is not None and now_ns - frame.stamp_ns > self._max_age_ns:
                self._newest[camera] = None
        while self._key_frames and now_ns - self._key_frames[0].stamp_ns > self._max_age_ns:
            self._key_frames.popleft()

    def _best_set(self, now_ns: int) -> Optional[ViewSet]:
        self._expire(now_ns)
        required = self.config.required_views
        if self.config.moving:
            if len(self._key_frames) < required:
                return None
            return ViewSet(tuple(self._key_frames)[-required:])
        fresh = sorted((f for f in self._newest if f is not None), key=lambda f: f.stamp_ns)
        best: list[Frame] = []
        for anchor in fresh:  # ascending, so '>=' prefers the newest window on a tie
            window = [f for f in fresh if anchor.stamp_ns - self._slop_ns <= f.stamp_ns
                      <= anchor.stamp_ns]
            if len(window) >= len(best):
                best = window
        if len(best) < required:
            return None
        return ViewSet(tuple(sorted(best, key=lambda f: f.camera)))

    def complete_set(self, *, now_ns: int) -> Optional[ViewSet]:
        """Return the best complete set now, new or not, or None (for on-demand triggers)."""
        with self._lock:
            return self._best_set(now_ns)

    def take_new_set(self, *, now_ns: int) -> Optional[ViewSet]:
        """Return the best complete set if a frame of it is in no taken set; mark it taken."""
        with self._lock:
            view_set = self._best_set(now_ns)
            if view_set is None or not self._is_new(view_set):
                return None
            self._mark_used(view_set)
            return view_set

    def mark_taken(self, view_set: ViewSet) -> None:
        """Record that ``view_set`` was reconstructed (for sets from :meth:`complete_set`)."""
        with self._lock:
            self._mark_used(view_set)

    def _is_new(self, view_set: ViewSet) -> bool:
        return any(self._used_stamp[f.camera] is None or f.stamp_ns > self._used_stamp[f.camera]
                   for f in view_set.frames)

    def _mark_used(self, view_set: ViewSet) -> None:
        for frame in view_set.frames:
            used = self._used_stamp[frame.camera]
            if used is None or frame.stamp_ns > used:
                self._used_stamp[frame.camera] = frame.stamp_ns

    def status(self, *, now_ns: int) -> BufferStatus:
        """Describe what is held now (ages per camera, key frames, completeness)."""
        with self._lock:
            best = self._best_set(now_ns)
            ages = tuple(None if f is None else (now_ns - f.stamp_ns) / NS_PER_S
                         for f in self._newest)
            return BufferStatus(ages_s=ages, key_frames=len(self._key_frames),
                                required=self.config.required_views,
                                complete_views=0 if best is None else len(best))

    def reset(self) -> None:
        """Forget every frame and stamp (counters are kept): the next frames start afresh."""
        with self._lock:
            self._clear()

    @property
    def clock_resets(self) -> int:
        """Times the buffer started afresh because the clock had jumped back."""
        with self._lock:
            return self._clock_resets

    @property
    def drops(self) -> dict[str, int]:
        """Frames dropped so far, per reason (a copy)."""
        with self._lock:
            return dict(self._drops)

    @property
    def accepted(self) -> tuple[int, ...]:
        """Frames stored so far, per camera."""
        with self._lock:
            return tuple(self._accepted)
