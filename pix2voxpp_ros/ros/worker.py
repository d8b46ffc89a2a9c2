"""The inference worker: one thread that takes view sets from the one-slot queue and runs them.

Plain Python (no rclpy), so the node's threading is testable without ROS. Producers (image
callbacks, the ``~/reconstruct`` service) put :class:`Job` objects into a
:class:`~pix2voxpp_ros.core.pending_slot.PendingSlot` built with :func:`merge_jobs`; a newer job
replaces a pending one and inherits its waiters, so a service call is answered by whichever newer
reconstruction ran instead. The worker never dies on an exception in the processing function:
the error handler turns it into a failed :class:`Outcome`.

:class:`ViewPreparer` preprocesses every frame once: ahead of time (while the worker is idle the
node hands it frames as they arrive, so only the newest one is left when a set completes), in
parallel (OpenCV and numpy release the GIL), and reused by the next set that holds the same frame
(the core's :class:`~pix2voxpp_ros.core.frame_cache.FrameCache`, as ``pix2voxpp-bag`` keeps it).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..core.errors import Pix2VoxError
from ..core.frame_cache import FrameCache
from ..core.pending_slot import PendingSlot, SlotClosedError
from ..core.views import Frame, ViewSet


@dataclass(frozen=True)
class Outcome:
    """The result of one job, as a service answers it."""

    success: bool
    message: str


class Waiter:
    """Someone (a service call) waiting for the outcome of a job."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.outcome: Optional[Outcome] = None

    def resolve(self, outcome: Outcome) -> None:
        """Hand over the outcome (the first one wins) and wake the waiting thread."""
        if not self._event.is_set():
            self.outcome = outcome
            self._event.set()

    def wait(self, timeout: Optional[float] = None) -> Optional[Outcome]:
        """Block until resolved; return the outcome, or None on timeout."""
        self._event.wait(timeout)
        return self.outcome


@dataclass(eq=False)
class Job:
    """A view set to reconstruct, with the callers waiting for it.

    :param views: the frames to reconstruct from.
    :param created_ns: monotonic time the job was made (service latency is measured from it).
    :param waiters: callers to resolve when the job ends or is given up.
    """

    views: ViewSet
    created_ns: int = field(default_factory=time.monotonic_ns)
    waiters: list[Waiter] = field(default_factory=list)

    def resolve(self, outcome: Outcome) -> None:
        """Resolve every waiter with ``outcome``."""
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.resolve(outcome)


def merge_jobs(replaced: Job, newer: Job) -> None:
    """:class:`PendingSlot` merge hook: the newer job answers the replaced job's waiters."""
    newer.waiters.extend(replaced.waiters)
    replaced.waiters = []


def submit_and_wait(slot: PendingSlot['Job'], view_set: ViewSet, *,
                    timeout: float) -> Optional[Outcome]:
    """Queue a set for the worker and wait for its outcome (what a service call does).

    :returns: the outcome of this set or of a newer one that replaced it; None on timeout. A
        slot closed meanwhile (the node is deactivating) gives a failed outcome that says so.
    """
    waiter = Waiter()
    try:
        slot.put(Job(view_set, waiters=[waiter]))
    except SlotClosedError:
        return Outcome(False, 'the node is deactivating: no reconstruction now; call again '
                              'once it is active')
    return waiter.wait(timeout)


class WorkerBusyError(Pix2VoxError, RuntimeError):
    """A worker abandoned by an earlier stop is still running; a second one must not start."""


class Worker:
    """One daemon thread running ``process`` on each job taken from ``slot``.

    :param slot: the one-slot queue to take jobs from; :meth:`stop` closes it.
    :param process: runs one job and returns its outcome; may raise.
    :param on_error: turns an exception of ``process`` into an outcome (log and count it there).
    :param name: thread name, shown in debuggers and thread dumps.
    """

    def __init__(
        self,
        slot: PendingSlot[Job],
        process: Callable[[Job], Outcome],
        *,
        on_error: Callable[[Job, Exception], Outcome],
        name: str = 'pix2voxpp_worker',
    ) -> None:
        self._slot = slot
        self._process = process
        self._on_error = on_error
        self._busy = threading.Event()
        # Daemon: a hung inference must not keep the process alive after the node shut down.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Close the slot, fail a job left pending, and wait for the running one to finish.

        :returns: True when the thread ended within ``timeout``.
        """
        pending = self._slot.close()
        if pending is not None:
            pending.resolve(Outcome(False, 'the node stopped before this reconstruction ran'))
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """True while a job is being processed."""
        return self._busy.is_set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            job = self._slot.take()
            if job is None:
                if self._slot.closed:
                    return
                continue
            self._busy.set()
            try:
                outcome = self._process(job)
            except Exception as exc:  # noqa: BLE001 - one bad job must not end the worker
                try:
                    outcome = self._on_error(job, exc)
                except Exception:  # noqa: BLE001 - nor a failing error handler
                    outcome = Outcome(False, f'{type(exc).__name__}: {exc}')
            finally:
                self._busy.clear()
            job.resolve(outcome)


class WorkerHandle:
    """The node's worker: at most one thread at any time, even after a stop gave up waiting.

    A stop that times out (a reconstruction hangs) keeps the thread here, so a later
    :meth:`start` refuses to run a second worker beside it until it has ended.
    """

    def __init__(self) -> None:
        self._worker: Optional[Worker] = None

    def start(self, slot: PendingSlot[Job], process: Callable[[Job], Outcome], *,
              on_error: Callable[[Job, Exception], Outcome]) -> Worker:
        """Start a worker on ``slot``.

        :raises WorkerBusyError: the previous worker's thread is still running.
        """
        if self._worker is not None and self._worker.alive:
            raise WorkerBusyError('a reconstruction started before the last deactivate is still '
                                  'running; activate again once it has ended')
        self._worker = Worker(slot, process, on_error=on_error)
        self._worker.start()
        return self._worker

    def stop(self, *, timeout: float) -> bool:
        """Stop the worker; True when no thread is left running (see :meth:`Worker.stop`)."""
        worker = self._worker
        if worker is None:
            return True
        if worker.stop(timeout=timeout):
            self._worker = None
            return True
        return False

    @property
    def alive(self) -> bool:
        """True while a worker thread (current or abandoned) runs."""
        return self._worker is not None and self._worker.alive


class ViewPreparer:
    """Preprocess each frame once, possibly ahead of time, on a few threads.

    :param prepare: turns a frame into the network's input (``(3, 224, 224)`` float32); may raise,
        the exception then comes out of :meth:`views`.
    :param threads: preprocessing threads.
    :param capacity: frames whose result is kept (the oldest is forgotten first).
    """

    def __init__(self, prepare: Callable[[Frame], np.ndarray], *, threads: int,
                 capacity: int) -> None:
        self._prepare = prepare
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads),
                                        thread_name_prefix='pix2voxpp_prepare')
        self._cache: FrameCache[Future] = FrameCache(capacity=capacity)

    def _claim(self, frame: Frame) -> Future:
        return self._cache.get(frame, lambda f: self._pool.submit(self._prepare, f))

    def prefetch(self, frame: Frame) -> None:
        """Start preparing ``frame`` now (it is likely to be in the next set)."""
        try:
            self._claim(frame)
        except RuntimeError:  # closed by a concurrent cleanup: nothing left to prepare for
            pass

    def views(self, frames: Sequence[Frame]) -> list[np.ndarray]:
        """Return the prepared views of ``frames`` in order; missing ones are made in parallel."""
        futures = [self._claim(frame) for frame in frames]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the threads (a running preparation finishes) and forget every result."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._cache.clear()
