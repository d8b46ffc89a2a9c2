"""Offline reconstruction: view sets from recorded frames on the recording's clock, in batches.

The live node judges frames against its clock and reconstructs at most ``max_rate_hz`` sets per
second of wall time. Offline (``pix2voxpp-bag``) there is no wall time that matters: the same
:class:`~pix2voxpp_ros.core.views.ViewBuffer` is fed in recorded order with "now" = the newest
stamp seen so far, and the rate limit is applied to the recorded stamps, so a bag gives the same
view sets however fast the machine reads it. What this module adds to the node's pieces:

* :class:`OfflineAssembler`: the node's frame intake (masks, buffer, ``trigger: auto``) + the
  one-slot queue's rate limit, on bag time (sets replaced while waiting count as ``rate``);
* :class:`PreparedViews`: each frame preprocessed once, in the core's frame cache (moving-camera
  key frames and a camera that stopped publishing reappear in later sets);
* :class:`Batcher`: consecutive sets of the same view count grouped for one forward pass;
* :func:`in_background`: run a producer (reading, decoding, preprocessing) on a thread while
  the caller runs the network, so reading overlaps inference.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, Optional, TypeVar, Union

import numpy as np

from .clock import RateLimiter, seconds_to_ns
from .drops import FrameDrop
from .frame_cache import FrameCache
from .intake import FrameIntake, Intake
from .masks import MaskedFrames
from .preprocess import MaskError
from .views import Frame, ViewBuffer, ViewBufferConfig, ViewSet

T = TypeVar('T')


class OfflineAssembler:
    """Turn frames (and masks) in recorded order into the view sets the node would reconstruct.

    The node's ``trigger: auto`` path (a :class:`~.intake.FrameIntake`), whose new sets then pass
    the node's one-slot queue: at most ``max_rate_hz`` per second, a newer set replacing a
    waiting one. Here "now" and the rate are measured in recorded time, and the queue's consumer
    is taken to be free as soon as the rate allows.

    :param config: the view-buffer rules (the node's parameters).
    :param max_rate_hz: most sets per second of recorded time; 0 means no limit.
    :param masks: pairs frames with their masks first (``mask_topics``), or None.
    :raises ValueError: a negative or non-finite rate.
    """

    def __init__(self, config: ViewBufferConfig, *, max_rate_hz: float = 0.0,
                 masks: Optional[MaskedFrames] = None) -> None:
        self._limit = RateLimiter(max_rate_hz, to_ticks=seconds_to_ns)
        self.buffer = ViewBuffer(config)
        self.intake = FrameIntake(self.buffer, masks=masks)
        self._now_ns: Optional[int] = None
        self._pending: Optional[ViewSet] = None
        self.sets_found = 0  # new complete sets, before the rate limit
        self.sets_rate_dropped = 0  # replaced while waiting for the rate limit

    @property
    def now_ns(self) -> Optional[int]:
        """The recorded clock: the newest time seen so far (None before the first frame)."""
        return self._now_ns

    def _tick(self, arrival_ns: int) -> int:
        self._now_ns = arrival_ns if self._now_ns is None else max(self._now_ns, arrival_ns)
        return self._now_ns

    def add(self, frame: Frame, *, now_ns: Optional[int] = None,
            wait_ns: Optional[int] = None) -> tuple[list[ViewSet], list[FrameDrop]]:
        """Feed one frame; return the sets due now (in order) and the frames dropped.

        :param frame: the next frame in recorded order.
        :param now_ns: the recorded time of its arrival; default its stamp. The clock never runs
            backwards: it is the newest time seen so far.
        :param wait_ns: the time its mask wait is measured on (default the clock).
        """
        now = self._tick(frame.stamp_ns if now_ns is None else now_ns)
        return self._rated(self.intake.add_frame(frame, now_ns=now, wait_ns=wait_ns), now)

    def add_mask(self, camera: int, stamp_ns: int, mask: Union[np.ndarray, MaskError], *,
                 now_ns: int, wait_ns: Optional[int] = None
                 ) -> tuple[list[ViewSet], list[FrameDrop]]:
        """Feed one mask (or its :class:`MaskError`); return as :meth:`add`."""
        now = self._tick(now_ns)
        return self._rated(self.intake.add_mask(camera, stamp_ns, mask, now_ns=now,
                                                wait_ns=wait_ns), now)

    def finish(self) -> tuple[list[ViewSet], list[FrameDrop]]:
        """End of the recording: drop frames still waiting for masks, release the waiting set."""
        drops: list[FrameDrop] = []
        if self._now_ns is not None:
            drops = self.intake.finish(now_ns=self._now_ns).drops
        pending, self._pending = self._pending, None
        return ([] if pending is None else [pending]), drops

    def _rated(self, intake: Intake, now: int) -> tuple[list[ViewSet], list[FrameDrop]]:
        due = self._release(now)
        for view_set in intake.sets:
            self.sets_found += 1
            if self._pending is None and self._limit.allowed(now):
                self._limit.mark(now)
                due.append(view_set)
            else:
                if self._pending is not None:
                    self.sets_rate_dropped += 1
                self._pending = view_set
        return due, intake.drops

    def _release(self, now: int) -> list[ViewSet]:
        """Release the waiting set when its turn came before ``now`` (as the node's worker)."""
        next_allowed = self._limit.next_allowed
        if self._pending is None or next_allowed is None or now < next_allowed:
            return []
        self._limit.mark(next_allowed)  # the node's worker takes it at that moment
        pending, self._pending = self._pending, None
        return [pending]


class PreparedViews:
    """Preprocess each frame once; remember the latest ``capacity`` results.

    :param prepare: turns a frame into the network's input, ``(3, S, S)`` float32.
    :param capacity: frames whose result is kept (the least recently used is forgotten first).
    """

    def __init__(self, prepare: Callable[[Frame], np.ndarray], *, capacity: int) -> None:
        self._prepare = prepare
        self._cache: FrameCache[np.ndarray] = FrameCache(capacity=capacity)

    @property
    def prepared(self) -> int:
        """Frames actually preprocessed."""
        return self._cache.made

    def views(self, view_set: ViewSet) -> np.ndarray:
        """Return the set's views stacked, ``(V, 3, S, S)``; raises what ``prepare`` raises."""
        return np.stack([self._cache.get(frame, self._prepare) for frame in view_set.frames])


@dataclass(frozen=True, eq=False)
class PreparedSet:
    """A view set with its network input, ``views`` ``(V, 3, S, S)``."""

    view_set: ViewSet
    views: np.ndarray


class Batcher:
    """Group consecutive prepared sets with the same view count into batches of ``size``.

    :param size: sets per batch (one forward pass), at least 1.
    :raises ValueError: a size below 1.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f'batch size must be at least 1, got {size}')
        self.size = size
        self._items: list[PreparedSet] = []

    def add(self, item: PreparedSet) -> list[list[PreparedSet]]:
        """Add a set; return the batches that are complete now (zero, one or two)."""
        done = []
        if self._items and len(self._items[0].view_set) != len(item.view_set):
            done.append(self._items)  # a different view count cannot share the pass
            self._items = []
        self._items.append(item)
        if len(self._items) == self.size:
            done.append(self._items)
            self._items = []
        return done

    def flush(self) -> list[list[PreparedSet]]:
        """Return the last, possibly smaller, batch."""
        items, self._items = self._items, []
        return [items] if items else []


def stack_batch(batch: list[PreparedSet]) -> np.ndarray:
    """Stack a batch into the network's input ``(B, V, 3, S, S)``."""
    return np.stack([item.views for item in batch])


class _Failure(Generic[T]):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def in_background(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """Produce ``items`` on a daemon thread, at most ``depth`` ahead of the consumer.

    An exception of the producer is raised in the consumer, where the item would have come.
    Closing the returned generator early stops the producer at its next item.
    """
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer(_Failure(exc))
            return
        offer(_END)

    thread = threading.Thread(target=produce, name='pix2voxpp_offline_reader', daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)
