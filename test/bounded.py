"""A test helper: assert that a block of code stays within a time and peak-memory budget."""

from __future__ import annotations

import contextlib
import resource
import time
from typing import Iterator


@contextlib.contextmanager
def within(*, seconds: float, grown_mib: float) -> Iterator[None]:
    """Fail unless the block runs under ``seconds`` and grows peak RSS by under ``grown_mib``.

    ``seconds`` is a bound against hangs and unbounded work (an old decoder took minutes), not
    a speed target: keep it many times the expected time, so a busy machine cannot fail it.

    An exception from the block passes through unchecked (wrap ``pytest.raises`` inside).
    """
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    assert elapsed < seconds, f'took {elapsed:.2f} s'
    assert grown < grown_mib, f'peak RSS grew by {grown:.0f} MiB'
