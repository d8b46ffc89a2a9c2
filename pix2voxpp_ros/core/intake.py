"""The one frame pipeline of the node and ``pix2voxpp-bag``: frame → mask → view buffer → sets.

Both feed :class:`FrameIntake` with frames they decoded and masks of their stamps, and pass the
time: the node its clock, the bag tool the recorded one. Each call answers with an
:class:`Intake`: the new complete view sets (``trigger: auto``), the frames dropped with their
reason and words (:class:`~pix2voxpp_ros.core.drops.FrameDrop`), the frames the buffer accepted,
and whether the clock jumped back. Callers only convert messages, log and count. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from .drops import FrameDrop, buffer_drop
from .limits import DEFAULT_MAX_IMAGE_PIXELS
from .masks import MaskedFrames
from .preprocess import MaskError, Roi, preprocess_frame
from .views import Frame, ViewBuffer, ViewSet

if TYPE_CHECKING:  # the model (torch) is not needed to pair frames
    from .inference import Reconstructor


def frame_preparer(reconstructor: Reconstructor, *, rois: Sequence[Optional[Roi]],
                   roi_margin: float, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
                   ) -> Callable[[Frame], np.ndarray]:
    """Return what turns a buffered frame into the network's input, ``(3, S, S)`` float32.

    :param rois: per camera, its region of interest or None (``camera_rois``).
    :param roi_margin: the ``roi_margin`` parameter.
    :param max_pixels: ``max_image_pixels``: the largest crop reaching beyond a frame.
    """
    metadata = reconstructor.metadata

    def prepare(frame: Frame) -> np.ndarray:
        return preprocess_frame(frame.image, encoding=frame.encoding, roi=rois[frame.camera],
                                roi_margin=roi_margin, mask=frame.mask, metadata=metadata,
                                max_pixels=max_pixels)
    return prepare


@dataclass
class Intake:
    """What one frame or mask led to.

    :param sets: new complete view sets, oldest first (only when the intake takes sets).
    :param drops: frames dropped, for their mask or by the view buffer.
    :param accepted: frames the view buffer stored.
    :param clock_reset: the camera whose frame found the clock jumped back (the buffer then
        started afresh), else None.
    """

    sets: list[ViewSet] = field(default_factory=list)
    drops: list[FrameDrop] = field(default_factory=list)
    accepted: list[Frame] = field(default_factory=list)
    clock_reset: Optional[int] = None


class FrameIntake:
    """Frames (and, with ``mask_topics``, their masks) into the view buffer; new sets out.

    :param buffer: the view buffer (the node shares it with its service and diagnostics).
    :param masks: pairs frames with their masks first; None without ``mask_topics``.
    :param take_sets: take a new complete set after each accepted frame (``trigger: auto``).
    """

    def __init__(self, buffer: ViewBuffer, *, masks: Optional[MaskedFrames] = None,
                 take_sets: bool = True) -> None:
        self.buffer = buffer
        self.masks = masks
        self.take_sets = take_sets
        self._clock_resets = buffer.clock_resets

    def add_frame(self, frame: Frame, *, now_ns: int, wait_ns: Optional[int] = None) -> Intake:
        """Offer a decoded frame.

        :param now_ns: the time the view buffer judges stamps against.
        :param wait_ns: the time ``mask_timeout_s`` is measured on (default ``now_ns``).
        """
        if self.masks is None:
            return self._store([frame], [], now_ns)
        wait = now_ns if wait_ns is None else wait_ns
        return self._store(*self.masks.add_frame(frame, now_ns=wait), now_ns)

    def add_mask(self, camera: int, stamp_ns: int, mask: Union[np.ndarray, MaskError], *,
                 now_ns: int, wait_ns: Optional[int] = None) -> Intake:
        """Offer a mask of ``camera`` (or the :class:`MaskError` its message gave).

        :raises RuntimeError: the intake has no masks.
        """
        if self.masks is None:
            raise RuntimeError('this intake pairs no masks (mask_topics is empty)')
        wait = now_ns if wait_ns is None else wait_ns
        return self._store(*self.masks.add_mask(camera, stamp_ns, mask, now_ns=wait), now_ns)

    def finish(self, *, now_ns: int) -> Intake:
        """End of the input: frames still waiting for their mask are dropped."""
        return self._store([], [] if self.masks is None else self.masks.finish(), now_ns)

    def _store(self, ready: list[Frame], drops: list[FrameDrop], now_ns: int) -> Intake:
        out = Intake(drops=list(drops))
        for frame in ready:
            reason = self.buffer.add(frame, now_ns=now_ns)
            resets = self.buffer.clock_resets
            if resets != self._clock_resets:
                self._clock_resets = resets
                out.clock_reset = frame.camera
            if reason is not None:
                out.drops.append(buffer_drop(frame, reason, now_ns=now_ns))
                continue
            out.accepted.append(frame)
            if self.take_sets:
                view_set = self.buffer.take_new_set(now_ns=now_ns)
                if view_set is not None:
                    out.sets.append(view_set)
        return out
