"""Offline reconstruction: view sets from recorded frames on the recording's clock, in batches.

The live node judges frames against its clock and reconstructs at most ``max_rate_hz`` sets per
second of wall time. Offline (``pix2voxpp-bag``) there is no wall time that matters: the same
:class:`~pix2voxpp_ros.core.views.ViewBuffer` is fed in recorded order with "now" = the newest
stamp seen so far, and the rate limit is applied to the recorded stamps, so a bag gives the same
view sets however fast the machine reads it. What this module adds to the node's pieces:

* :class:`OfflineAssembler`: buffer + ``trigger: auto`` + the one-slot rate limit, on bag time;
* :class:`PreparedViews`: each frame preprocessed once (moving-camera key frames and a camera
  that stopped publishing reappear in later sets);
* :class:`Batcher`: consecutive sets of the same view count grouped for one forward pass;
* :func:`in_background`: run a producer (reading, decoding, preprocessing) on a thread while
  the caller runs the network, so reading overlaps inference.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, Optional, TypeVar

import numpy as np

from .views import Frame, ViewBuffer, ViewBufferConfig, ViewSet, seconds_to_ns

DROP_RATE = 'rate'  # a set replaced by a newer one before max_rate_hz allowed it to run

T = TypeVar('T')


class OfflineAssembler:
    """Turn frames in recorded order into the view sets the node would reconstruct.

    The node's ``trigger: auto`` path: after each accepted frame, take a new complete set; the
    sets then pass a one-slot queue that releases at most ``max_rate_hz`` per second and lets a
    newer set replace a waiting one. Here "now" and the rate are measured in recorded time.

    :param config: the view-buffer rules (the node's parameters).
    :param max_rate_hz: most sets per second of recorded time; 0 means no limit.
    :raises ValueError: a negative or non-finite rate.
    """

    def __init__(self, config: ViewBufferConfig, *, max_rate_hz: float = 0.0) -> None:
        if not (max_rate_hz >= 0.0 and np.isfinite(max_rate_hz)):
            raise ValueError(f'max_rate_hz must be finite and >= 0, got {max_rate_hz}')
        self.buffer = ViewBuffer(config)
        self._period_ns = seconds_to_ns(1.0 / max_rate_hz) if max_rate_hz > 0.0 else 0
        self._now_ns: Optional[int] = None
        self._pending: Optional[ViewSet] = None
        self._last_take_ns: Optional[int] = None
        self.sets_found = 0  # new complete sets, before the rate limit
        self.sets_rate_dropped = 0  # replaced while waiting for the rate limit

    @property
    def now_ns(self) -> Optional[int]:
        """The recorded clock: the newest time seen so far (None before the first frame)."""
        return self._now_ns

    def add(self, frame: Frame, *,
            now_ns: Optional[int] = None) -> tuple[list[ViewSet], Optional[str]]:
        """Feed one frame; return the sets due now (in order) and the frame's drop reason.

        :param frame: the next frame in recorded order.
        :param now_ns: the recorded time of its arrival; default its stamp. The clock never runs
            backwards: it is the newest time seen so far.
        :returns: ``(sets, reason)``: sets released by the rate limit or completed by this frame,
            and None when the buffer stored the frame, else why it refused it.
        """
        arrival = frame.stamp_ns if now_ns is None else now_ns
        self._now_ns = arrival if self._now_ns is None else max(self._now_ns, arrival)
        now = self._now_ns
        due = self._release(now)
        reason = self.buffer.add(frame, now_ns=now)
        if reason is not None:
            return due, reason
        view_set = self.buffer.take_new_set(now_ns=now)
        if view_set is None:
            return due, None
        self.sets_found += 1
        if self._pending is None and self._allowed(now):
            self._last_take_ns = now
            due.append(view_set)
        else:
            if self._pending is not None:
                self.sets_rate_dropped += 1
            self._pending = view_set
        return due, None

    def finish(self) -> list[ViewSet]:
        """End of the recording: release the set still waiting for the rate limit, if any."""
        pending, self._pending = self._pending, None
        return [] if pending is None else [pending]

    def _allowed(self, now: int) -> bool:
        return self._last_take_ns is None or now >= self._last_take_ns + self._period_ns

    def _release(self, now: int) -> list[ViewSet]:
        """Release the waiting set when its turn came before ``now`` (as the node's worker)."""
        if self._pending is None or not self._allowed(now):
            return []
        assert self._last_take_ns is not None  # a set waits only after one was taken
        self._last_take_ns += self._period_ns  # the node's worker takes it at that moment
        pending, self._pending = self._pending, None
        return [pending]


class PreparedViews:
    """Preprocess each frame once; remember the latest ``capacity`` results.

    :param prepare: turns a frame into the network's input, ``(3, S, S)`` float32.
    :param capacity: frames whose result is kept (the least recently used is forgotten first).
    """

    def __init__(self, prepare: Callable[[Frame], np.ndarray], *, capacity: int) -> None:
        self._prepare = prepare
        self._capacity = max(1, capacity)
        # Keyed by id(frame); the entry holds the frame, so the id cannot be reused meanwhile.
        self._entries: OrderedDict[int, tuple[Frame, np.ndarray]] = OrderedDict()
        self.prepared = 0  # frames actually preprocessed

    def views(self, view_set: ViewSet) -> np.ndarray:
        """Return the set's views stacked, ``(V, 3, S, S)``; raises what ``prepare`` raises."""
        out = []
        for frame in view_set.frames:
            entry = self._entries.get(id(frame))
            if entry is None:
                entry = (frame, self._prepare(frame))
                self.prepared += 1
                self._entries[id(frame)] = entry
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(id(frame))
            out.append(entry[1])
        return np.stack(out)  # (V, 3, S, S)


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
