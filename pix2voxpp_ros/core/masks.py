"""Pairing camera frames with object masks of the same stamp (a segmenter's output).

A segmentation node publishes one mask per frame, stamped like the frame, a little later.
:class:`MaskPairing` holds each camera's unpaired frames and masks by stamp and hands out a pair
as soon as both halves are there; a frame whose mask has not come within ``timeout_s`` of its
arrival is expired (the node counts it as ``no_mask``). :class:`MaskedFrames` adds the check of
each pair's mask against its frame: what the node and ``pix2voxpp-bag`` do with ``mask_topics``,
on whatever clock each has. Pure Python: no ROS.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any, Generic, Optional, TypeVar, Union

import numpy as np

from .clock import NS_PER_S
from .drops import DropReason, FrameDrop
from .preprocess import EmptyMaskError, MaskError, mask_box
from .views import Frame

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

    def drain(self) -> list[F]:
        """Forget every waiting frame and mask; return the frames (the end of a recording)."""
        with self._lock:
            frames = [f for waiting in self._frames for _, f in waiting.values()]
            for waiting in self._frames + self._masks:
                waiting.clear()
            return frames


class MaskedFrames:
    """Frames that go on with a checked mask of their stamp, or are dropped with the reason.

    Pairs frames and masks in a :class:`MaskPairing`, then checks each pair's mask against its
    frame (:func:`~.preprocess.mask_box`). Every call answers with the frames that now carry a
    good mask, ready for the view buffer (at most one), and the frames dropped meanwhile.

    :param num_cameras: cameras (indices 0 .. num_cameras - 1).
    :param timeout_s: ``mask_timeout_s``: how long a frame waits for its mask after it arrived.
    :param capacity: unpaired frames and masks kept per camera.
    """

    def __init__(self, num_cameras: int, *, timeout_s: float, capacity: int = 16) -> None:
        self._pairing: MaskPairing[Frame] = MaskPairing(num_cameras, timeout_s=timeout_s,
                                                        capacity=capacity)
        self._no_mask = f'no mask of their stamp came within mask_timeout_s {timeout_s:g} s'

    def add_frame(self, frame: Frame, *, now_ns: int) -> tuple[list[Frame], list[FrameDrop]]:
        """Offer a frame that arrived at ``now_ns``; return ``(ready frames, drops)``."""
        return self._checked(*self._pairing.add_frame(frame.camera, frame.stamp_ns, frame,
                                                      now_ns=now_ns))

    def add_mask(self, camera: int, stamp_ns: int, mask: Union[np.ndarray, MaskError], *,
                 now_ns: int) -> tuple[list[Frame], list[FrameDrop]]:
        """Offer a mask, or the :class:`MaskError` its message gave; return as :meth:`add_frame`.

        :param mask: ``(H, W)`` uint8, nonzero on the object; a MaskError drops its frame as
            ``bad_mask`` once the frame is there.
        """
        return self._checked(*self._pairing.add_mask(camera, stamp_ns, mask, now_ns=now_ns))

    def finish(self) -> list[FrameDrop]:
        """End of the input: every frame still waiting for its mask is dropped (``no_mask``)."""
        return [self._no_mask_drop(f) for f in self._pairing.drain()]

    def _no_mask_drop(self, frame: Frame) -> FrameDrop:
        return FrameDrop(frame.camera, DropReason.NO_MASK, self._no_mask, frame=frame)

    def _checked(self, pair: Optional[tuple[Frame, Any]], expired: list[Frame]
                 ) -> tuple[list[Frame], list[FrameDrop]]:
        drops = [self._no_mask_drop(f) for f in expired]
        if pair is None:
            return [], drops
        frame, mask = pair
        try:
            if isinstance(mask, MaskError):
                raise mask
            mask_box(mask, height=frame.image.shape[0], width=frame.image.shape[1])
        except EmptyMaskError:
            drops.append(FrameDrop(frame.camera, DropReason.EMPTY_MASK,
                                   'their mask marks no pixel (the segmenter did not find the '
                                   'object)', frame=frame))
            return [], drops
        except MaskError as exc:
            drops.append(FrameDrop(frame.camera, DropReason.BAD_MASK, f'bad mask: {exc}',
                                   frame=frame))
            return [], drops
        return [dataclasses.replace(frame, mask=mask)], drops
