"""The one frame cache: what was made from a frame (its network input), kept for the next set.

A frame can be in several view sets (a moving camera's key frames, a camera that stopped
publishing), so its preprocessing is kept for the latest ``capacity`` frames. The node's
preparer keeps futures of a thread pool in it, ``pix2voxpp-bag`` the arrays themselves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

from .views import Frame

V = TypeVar('V')


class FrameCache(Generic[V]):
    """A thread-safe least-recently-used map from frames (by identity) to what was made of them.

    :param capacity: frames whose value is kept (the least recently used is forgotten first).
    """

    def __init__(self, *, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._lock = threading.Lock()
        # Keyed by id(frame); the entry holds the frame, so the id cannot be reused meanwhile.
        self._entries: OrderedDict[int, tuple[Frame, V]] = OrderedDict()
        self.made = 0  # values actually made

    def get(self, frame: Frame, make: Callable[[Frame], V]) -> V:
        """Return the value of ``frame``, made with ``make`` when it is not kept.

        ``make`` runs under the cache's lock: it should be quick (submit to a pool) or the cache
        used from one thread. What ``make`` raises comes out here, and nothing is kept.
        """
        with self._lock:
            entry = self._entries.get(id(frame))
            if entry is not None:
                self._entries.move_to_end(id(frame))
                return entry[1]
            value = make(frame)
            self.made += 1
            self._entries[id(frame)] = (frame, value)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._entries.clear()
