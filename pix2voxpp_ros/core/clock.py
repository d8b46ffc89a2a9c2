"""Time on whatever clock the caller reads: integer nanoseconds, and the one rate limiter.

Nothing here reads a clock itself: the node passes wall or simulated time, ``pix2voxpp-bag`` the
recorded time, tests a counter, so the same rules hold on each.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

NS_PER_S = 1_000_000_000

Time = Union[int, float]


def seconds_to_ns(seconds: float) -> int:
    """Convert seconds to integer nanoseconds (rounded)."""
    return int(round(seconds * NS_PER_S))


class RateLimiter:
    """At most ``max_rate_hz`` events per second, on a clock whose readings the caller passes.

    :param max_rate_hz: 0 means no limit.
    :param to_ticks: converts seconds to the clock's unit (identity for seconds,
        :func:`seconds_to_ns` for nanoseconds).
    :raises ValueError: a negative or non-finite rate.
    """

    def __init__(self, max_rate_hz: float = 0.0, *,
                 to_ticks: Callable[[float], Time] = float) -> None:
        self._to_ticks = to_ticks
        self._last: Optional[Time] = None
        self.period: Time = 0
        self.set_rate(max_rate_hz)

    def set_rate(self, max_rate_hz: float) -> None:
        """Change the limit; applies to the next event at once.

        :raises ValueError: a negative or non-finite rate.
        """
        if not (max_rate_hz >= 0.0 and math.isfinite(max_rate_hz)):
            raise ValueError(f'max_rate_hz must be finite and >= 0, got {max_rate_hz}')
        self.period = self._to_ticks(1.0 / max_rate_hz) if max_rate_hz > 0.0 else 0

    def wait(self, now: Time) -> Time:
        """Time until the next event is allowed (0 when it is allowed at ``now``)."""
        if self._last is None or self.period <= 0:
            return 0
        return max(0, self._last + self.period - now)

    def allowed(self, now: Time) -> bool:
        """Return True when an event at ``now`` keeps to the limit."""
        return self.wait(now) <= 0

    @property
    def next_allowed(self) -> Optional[Time]:
        """The earliest time of the next event; None before the first one."""
        return None if self._last is None else self._last + self.period

    def mark(self, at: Time) -> None:
        """Record that an event happened at ``at``."""
        self._last = at
