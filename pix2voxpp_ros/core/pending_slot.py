"""The one-slot queue between the node's producers and its single inference worker.

Producers (subscription callbacks, the ``~/reconstruct`` service) put items; a newer item replaces
a pending one (counted as dropped), and the consumer takes at most ``max_rate_hz`` items per
second (the core's :class:`~pix2voxpp_ros.core.clock.RateLimiter` on an injectable clock).
Thread-safe, free of ROS.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Optional, TypeVar

from .clock import RateLimiter
from .errors import Pix2VoxError

T = TypeVar('T')


class SlotClosedError(Pix2VoxError, RuntimeError):
    """An item was offered to a closed :class:`PendingSlot` (its consumer is stopping)."""


class PendingSlot(Generic[T]):
    """A one-slot queue: the newest item waits for the consumer; a newer one replaces it.

    :param max_rate_hz: at most this many :meth:`take` results per second; 0 means unlimited.
    :param merge: called as ``merge(replaced, newer)`` under the lock when an item is replaced,
        e.g. to hand the replaced request's waiters over to the newer one.
    :param clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        *,
        max_rate_hz: float = 0.0,
        merge: Optional[Callable[[T, T], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False
        self._merge = merge
        self._clock = clock
        self._limit = RateLimiter()  # on self._clock, in seconds
        self._dropped = 0
        self._taken = 0
        self.set_max_rate(max_rate_hz)

    def set_max_rate(self, max_rate_hz: float) -> None:
        """Change the rate limit; applies to the next :meth:`take` at once.

        :raises ValueError: a negative or non-finite rate.
        """
        with self._cond:
            self._limit.set_rate(max_rate_hz)
            self._cond.notify_all()

    def put(self, item: T) -> bool:
        """Offer an item; return True when it replaced (dropped) a pending one.

        :raises SlotClosedError: the slot is closed.
        """
        with self._cond:
            if self._closed:
                raise SlotClosedError('PendingSlot is closed')
            replaced = self._item is not None
            if replaced:
                self._dropped += 1
                if self._merge is not None:
                    self._merge(self._item, item)
            self._item = item
            self._cond.notify_all()
            return replaced

    def _pop(self, now: float) -> T:
        item, self._item = self._item, None
        self._limit.mark(now)
        self._taken += 1
        return item  # type: ignore[return-value]

    def poll(self) -> Optional[T]:
        """Take the pending item if there is one and the rate limit allows it; never blocks."""
        with self._cond:
            now = self._clock()
            if self._closed or self._item is None or self._limit.wait(now) > 0.0:
                return None
            return self._pop(now)

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """Block until an item may be taken, then return it; None on timeout or when closed."""
        with self._cond:
            deadline = None if timeout is None else self._clock() + timeout
            while not self._closed:
                now = self._clock()
                wait: Optional[float] = None
                if self._item is not None:
                    wait = self._limit.wait(now)
                    if wait <= 0.0:
                        return self._pop(now)
                if deadline is not None:
                    remaining = deadline - now
                    if remaining <= 0.0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._cond.wait(wait)
            return None

    def close(self) -> Optional[T]:
        """Close the slot, wake every waiting consumer, and return the item left pending."""
        with self._cond:
            self._closed = True
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        with self._cond:
            return self._closed

    @property
    def pending(self) -> bool:
        """True while an item waits."""
        with self._cond:
            return self._item is not None

    @property
    def dropped(self) -> int:
        """Items replaced before the consumer took them."""
        with self._cond:
            return self._dropped

    @property
    def taken(self) -> int:
        """Items handed to the consumer."""
        with self._cond:
            return self._taken
