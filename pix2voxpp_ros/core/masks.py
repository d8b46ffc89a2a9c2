"""Pairing camera frames with object masks of the same stamp (a segmenter's output).

A segmentation node publishes one mask per frame, stamped like the frame, a little later.
:class:`MaskPairing` holds each camera's unpaired frames and masks by stamp and hands out a pair
as soon as both halves are there; a frame whose mask has not come within ``timeout_s`` of its
arrival is expired (the node counts it as ``no_mask``). Pure Python: no ROS.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Generic, Optional, TypeVar

from .views import NS_PER_S

DROP_NO_MASK = 'no_mask'  # no mask of the frame's stamp came within mask_timeout_s
DROP_EMPTY_MASK = 'empty_mask'  # the mask marks no pixel
DROP_BAD_MASK = 'bad_mask'  # the mask has another size or encoding than mono8 of the image's size
MASK_DROP_REASONS = (DROP_NO_MASK, DROP_EMPTY_MASK, DROP_BAD_MASK)

F = TypeVar('F')


class MaskPairing(Generic[F]):
    """Pair frames and masks of one stamp per camera.

    :param num_cameras: cameras (indices 0 .. num_cameras - 1).
    :param timeout_s: how long a frame waits for its mask after it arrived.
    :param capacity: unpaired frames and masks kept per camera (the oldest go first; a frame
        pushed out that way counts as expired).
    """

    def __init__(self, num_cameras: int, *, timeout_s: float, capacity: int = 16) -> None:
        if timeout_s < 0:
            raise ValueError(f'timeout_s must be >= 0, got {timeout_s}')
        self._timeout_ns = int(timeout_s * NS_PER_S)
        self._capacity = max(1, capacity)
        self._lock = threading.Lock()
        # Per camera: stamp -> (arrival ns, frame) and stamp -> (arrival ns, mask).
        self._frames: list[OrderedDict[int, tuple[int, F]]] = [
            OrderedDict() for _ in range(num_cameras)]
        self._masks: list[OrderedDict[int, tuple[int, Any]]] = [
            OrderedDict() for _ in range(num_cameras)]

    def _expire(self, camera: int, now_ns: int) -> list[F]:
        frames, masks = self._frames[camera], self._masks[camera]
        expired = [f for stamp, (t, f) in frames.items() if now_ns - t > self._timeout_ns]
        for stamp in [s for s, (t, _) in frames.items() if now_ns - t > self._timeout_ns]:
            del frames[stamp]
        # A mask waits as long as a frame would: a late frame of its stamp may still come.
        for stamp in [s for s, (t, _) in masks.items() if now_ns - t > self._timeout_ns]:
            del masks[stamp]
        while len(frames) > self._capacity:
            expired.append(frames.popitem(last=False)[1][1])
        while len(masks) > self._capacity:
            masks.popitem(last=False)
        return expired

    def add_frame(self, camera: int, stamp_ns: int, frame: F, *, now_ns: int
                  ) -> tuple[Optional[tuple[F, Any]], list[F]]:
        """Offer a frame.

        :returns: ``(frame, mask)`` when its mask was already there (else None), and the frames
            of this camera that waited too long for theirs.
        """
        with self._lock:
            expired = self._expire(camera, now_ns)
            waiting = self._masks[camera].pop(stamp_ns, None)
            if waiting is not None:
                return (frame, waiting[1]), expired
            self._frames[camera][stamp_ns] = (now_ns, frame)
            return None, expired

    def add_mask(self, camera: int, stamp_ns: int, mask: Any, *, now_ns: int
                 ) -> tuple[Optional[tuple[F, Any]], list[F]]:
        """Offer a mask (or whatever stands for a bad one); return as :meth:`add_frame`."""
        with self._lock:
            expired = self._expire(camera, now_ns)
            waiting = self._frames[camera].pop(stamp_ns, None)
            if waiting is not None:
                return (waiting[1], mask), expired
            self._masks[camera][stamp_ns] = (now_ns, mask)
            return None, expired
