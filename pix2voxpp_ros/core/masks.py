"""Pairing camera frames with object masks of the same stamp (a segmenter's output).

A segmentation node publishes one mask per frame, stamped like the frame, a little later.
:class:`MaskPairing` holds each camera's unpaired frames and masks by stamp and hands out a pair
as soon as both halves are there; a frame whose mask has not come within ``timeout_s`` of its
arrival is expired (the node counts it as ``no_mask``). :class:`MaskedFrames` adds the check of
each pair's mask against its frame: what the node and ``pix2voxpp-bag`` do with ``mask_topics``,
on whatever clock each has. With ``mask_mode: instances`` a mask is a label image (0
background, ``k > 0`` instance ``k`` of that camera) checked by :func:`check_label_image`.
Pure Python: no ROS.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any, Generic, Optional, TypeVar, Union

import numpy as np

from .clock import NS_PER_S
from .drops import DropReason, FrameDrop
from .instances import MAX_INSTANCES, MIN_PIXELS, InstanceError, instance_ids
from .preprocess import EmptyMaskError, MaskError, mask_box
from .views import Frame

F = TypeVar('F')
MASK_MODES = ('binary', 'instances')


def check_label_image(labels: np.ndarray, *, height: int, width: int,
                      max_instances: int = MAX_INSTANCES, min_pixels: int = MIN_PIXELS) -> int:
    """Check an instance label image against its frame; return how many instances it holds.

    :param labels: ``(H, W)`` (or ``(H, W, 1)``) uint8 or uint16, 0 background.
    :raises MaskError: another size or dtype, or more than ``max_instances`` instances (a flood
        of ids: refused in one ``bincount`` pass, whatever the ids).
    :raises EmptyMaskError: no instance of ``min_pixels`` pixels or more.
    """
    if labels.ndim == 3 and labels.shape[2] == 1:
        labels = labels[:, :, 0]
    if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise MaskError(f'a label image must be (H, W) uint8 or uint16, got {labels.dtype} '
                        f'{labels.shape}')
    if labels.shape != (height, width):
        raise MaskError(f'label image is {labels.shape[1]}×{labels.shape[0]}, its image '
                        f'{width}×{height}')
    try:
        count = len(instance_ids(labels, max_instances=max_instances, min_pixels=min_pixels))
    except InstanceError as exc:
        raise MaskError(str(exc)) from exc
    if count == 0:
        raise EmptyMaskError(f'the label image holds no instance of {min_pixels} pixels or more')
    return count


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
    :param instances: masks are instance label images (``mask_mode: instances``).
    :param max_instances: most instances a label image may hold.
    """

    def __init__(self, num_cameras: int, *, timeout_s: float, capacity: int = 16,
                 instances: bool = False, max_instances: int = MAX_INSTANCES) -> None:
        self._pairing: MaskPairing[Frame] = MaskPairing(num_cameras, timeout_s=timeout_s,
                                                        capacity=capacity)
        self.instances = instances
        self._max_instances = max_instances
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
            height, width = frame.image.shape[:2]
            if self.instances:
                check_label_image(mask, height=height, width=width,
                                  max_instances=self._max_instances)
                if mask.ndim == 3:
                    mask = mask[:, :, 0]
            else:
                mask_box(mask, height=height, width=width)
        except EmptyMaskError as exc:
            detail = (f'{exc} (the segmenter found no object)' if self.instances else
                      'their mask marks no pixel (the segmenter did not find the object)')
            drops.append(FrameDrop(frame.camera, DropReason.EMPTY_MASK, detail, frame=frame))
            return [], drops
        except MaskError as exc:
            drops.append(FrameDrop(frame.camera, DropReason.BAD_MASK, f'bad mask: {exc}',
                                   frame=frame))
            return [], drops
        return [dataclasses.replace(frame, mask=mask)], drops
