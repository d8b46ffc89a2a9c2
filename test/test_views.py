"""Unit tests of the view buffer, the one-slot pending queue and the inference worker (no ROS)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pix2voxpp_ros.core.drops import DropReason
from pix2voxpp_ros.core.pending_slot import PendingSlot
from pix2voxpp_ros.core.views import NS_PER_S, Frame, ViewBuffer, ViewBufferConfig, ViewSet
from pix2voxpp_ros.ros.worker import (Job, Outcome, ViewPreparer, Waiter, Worker, WorkerBusyError,
                                      WorkerHandle, merge_jobs, submit_and_wait)

S = NS_PER_S
NOW = 1_000 * S  # an arbitrary "now" far from zero
IMAGE = np.zeros((4, 4, 3), dtype=np.uint8)


def frame(camera: int, t_s: float) -> Frame:
    """Return a frame of ``camera`` stamped ``t_s`` seconds after NOW."""
    return Frame(camera=camera, stamp_ns=NOW + round(t_s * S), image=IMAGE)


def multi(**overrides: object) -> ViewBuffer:
    values = {'num_cameras': 3, 'sync_slop_s': 0.1, 'max_frame_age_s': 1.0}
    values.update(overrides)
    return ViewBuffer(ViewBufferConfig(**values))


def at(t_s: float) -> int:
    return NOW + round(t_s * S)


def stamps(view_set: ViewSet) -> list[tuple[int, float]]:
    return [(c, round((s - NOW) / S, 3)) for c, s in view_set.key]


# ------------------------------------------------------------------ several cameras


def test_set_completes_when_all_cameras_are_within_slop() -> None:
    buffer = multi()
    assert buffer.add(frame(0, 0.00), now_ns=at(0.0)) is None
    assert buffer.add(frame(1, 0.05), now_ns=at(0.05)) is None
    assert buffer.complete_set(now_ns=at(0.05)) is None  # min_views 0 means all three
    assert buffer.add(frame(2, 0.10), now_ns=at(0.1)) is None
    view_set = buffer.complete_set(now_ns=at(0.1))
    assert stamps(view_set) == [(0, 0.0), (1, 0.05), (2, 0.1)]
    assert view_set.newest_stamp_ns == at(0.1) and view_set.oldest_stamp_ns == at(0.0)


def test_frames_outside_the_slop_do_not_make_a_set() -> None:
    buffer = multi()
    buffer.add(frame(0, 0.0), now_ns=at(0.0))
    buffer.add(frame(1, 0.05), now_ns=at(0.05))
    buffer.add(frame(2, 0.16), now_ns=at(0.16))  # 0.16 s after camera 0: outside 0.1 s
    assert buffer.complete_set(now_ns=at(0.16)) is None
    buffer.add(frame(0, 0.12), now_ns=at(0.17))  # camera 0 catches up
    buffer.add(frame(1, 0.14), now_ns=at(0.17))
    assert stamps(buffer.complete_set(now_ns=at(0.17))) == [(0, 0.12), (1, 0.14), (2, 0.16)]


def test_min_views_takes_the_largest_group_and_the_newest_on_a_tie() -> None:
    buffer = multi(min_views=2)
    buffer.add(frame(0, 0.0), now_ns=at(0.0))
    assert buffer.complete_set(now_ns=at(0.0)) is None
    buffer.add(frame(1, 0.3), now_ns=at(0.3))
    assert buffer.complete_set(now_ns=at(0.3)) is None  # two frames, but 0.3 s apart
    buffer.add(frame(2, 0.35), now_ns=at(0.35))
    assert stamps(buffer.complete_set(now_ns=at(0.35))) == [(1, 0.3), (2, 0.35)]
    buffer.add(frame(0, 0.38), now_ns=at(0.38))  # all three within 0.08 s: the largest group
    assert len(buffer.complete_set(now_ns=at(0.38))) == 3

    tie = multi(min_views=1, sync_slop_s=0.05)
    tie.add(frame(0, 0.0), now_ns=at(0.0))
    tie.add(frame(1, 0.5), now_ns=at(0.5))
    assert stamps(tie.complete_set(now_ns=at(0.5))) == [(1, 0.5)]  # one each: the newer


def test_min_views_config_is_checked() -> None:
    with pytest.raises(ValueError, match='min_views'):
        ViewBufferConfig(num_cameras=2, min_views=3)
    assert ViewBufferConfig(num_cameras=3, min_views=0).required_views == 3
    assert ViewBufferConfig(num_cameras=3, min_views=2).required_views == 2


def test_frames_older_than_max_age_are_discarded() -> None:
    buffer = multi()
    assert buffer.add(frame(0, -1.5), now_ns=at(0.0)) == DropReason.STALE
    for camera in range(3):
        buffer.add(frame(camera, 0.0), now_ns=at(0.0))
    assert buffer.complete_set(now_ns=at(1.0)) is not None  # exactly max age: still fresh
    assert buffer.complete_set(now_ns=at(1.01)) is None
    status = buffer.status(now_ns=at(1.01))
    assert status.ages_s == (None, None, None) and status.complete_views == 0
    assert buffer.drops[DropReason.STALE] == 1


def test_a_silent_camera_does_not_make_old_frames_new_again() -> None:
    buffer = multi(min_views=2, max_frame_age_s=1.0)
    for camera in range(3):
        buffer.add(frame(camera, 0.0), now_ns=at(0.0))
    assert len(buffer.take_new_set(now_ns=at(0.0))) == 3
    assert buffer.take_new_set(now_ns=at(0.1)) is None  # nothing new
    buffer.add(frame(0, 0.9), now_ns=at(0.9))
    buffer.add(frame(1, 0.9), now_ns=at(0.9))  # camera 2 has gone silent
    assert stamps(buffer.take_new_set(now_ns=at(0.9))) == [(0, 0.9), (1, 0.9)]
    assert buffer.take_new_set(now_ns=at(1.5)) is None  # camera 2 expired: still nothing new


def test_a_late_camera_makes_a_new_larger_set() -> None:
    buffer = multi(min_views=2)
    buffer.add(frame(0, 0.0), now_ns=at(0.0))
    buffer.add(frame(1, 0.0), now_ns=at(0.0))
    assert len(buffer.take_new_set(now_ns=at(0.0))) == 2
    buffer.add(frame(2, 0.0), now_ns=at(0.05))  # same capture, arrives late
    assert stamps(buffer.take_new_set(now_ns=at(0.05))) == [(0, 0.0), (1, 0.0), (2, 0.0)]


def test_complete_set_then_mark_taken() -> None:
    buffer = multi()
    for camera in range(3):
        buffer.add(frame(camera, 0.0), now_ns=at(0.0))
    view_set = buffer.complete_set(now_ns=at(0.0))
    assert buffer.complete_set(now_ns=at(0.0)) is not None  # on demand: new or not
    buffer.mark_taken(view_set)
    assert buffer.take_new_set(now_ns=at(0.0)) is None


# ------------------------------------------------------------------ stamps


def test_out_of_order_and_repeated_stamps_are_dropped_and_counted() -> None:
    buffer = multi()
    assert buffer.add(frame(0, 0.5), now_ns=at(0.5)) is None
    assert buffer.add(frame(0, 0.4), now_ns=at(0.5)) == DropReason.OUT_OF_ORDER
    assert buffer.add(frame(0, 0.5), now_ns=at(0.5)) == DropReason.OUT_OF_ORDER
    assert buffer.add(frame(1, 0.4), now_ns=at(0.5)) is None  # order is per camera
    assert buffer.drops[DropReason.OUT_OF_ORDER] == 2
    assert buffer.accepted == (1, 1, 0)


def test_future_stamps_beyond_the_tolerance_are_dropped() -> None:
    buffer = multi(future_tolerance_s=0.2)
    assert buffer.add(frame(0, 0.2), now_ns=at(0.0)) is None  # at the tolerance: kept
    assert buffer.add(frame(1, 0.21), now_ns=at(0.0)) == DropReason.FUTURE
    assert buffer.add(frame(2, 3600.0), now_ns=at(0.0)) == DropReason.FUTURE
    assert buffer.drops[DropReason.FUTURE] == 2
    # A future frame does not poison the camera: a correct one is accepted afterwards.
    assert buffer.add(frame(1, 0.0), now_ns=at(0.0)) is None


def test_unknown_camera_is_dropped() -> None:
    buffer = multi()
    assert buffer.add(frame(3, 0.0), now_ns=at(0.0)) == DropReason.UNKNOWN_CAMERA
    assert buffer.add(frame(-1, 0.0), now_ns=at(0.0)) == DropReason.UNKNOWN_CAMERA
    assert buffer.drops[DropReason.UNKNOWN_CAMERA] == 2


def test_reset_clears_frames_and_stamps_but_keeps_counters() -> None:
    buffer = multi()
    for camera in range(3):
        buffer.add(frame(camera, 0.5), now_ns=at(0.5))
    buffer.add(frame(0, 0.1), now_ns=at(0.5))  # out of order
    buffer.reset()
    assert buffer.complete_set(now_ns=at(0.5)) is None
    # After a reset (a bag loop, a clock jump) older stamps are accepted again.
    for camera in range(3):
        assert buffer.add(frame(camera, 0.2), now_ns=at(0.5)) is None
    assert buffer.take_new_set(now_ns=at(0.5)) is not None
    assert buffer.drops[DropReason.OUT_OF_ORDER] == 1


def test_a_clock_that_jumps_back_starts_the_buffer_afresh() -> None:
    buffer = multi(future_tolerance_s=0.5)
    for t in (10.0, 10.5):  # a bag plays ...
        for camera in range(3):
            assert buffer.add(frame(camera, t), now_ns=at(t)) is None
    assert buffer.take_new_set(now_ns=at(10.5)) is not None
    # ... and loops: clock and stamps start again at 0. Without a reset every frame would be
    # "out of order" until the stamps passed 10.5 s.
    for camera in range(3):
        assert buffer.add(frame(camera, 0.0), now_ns=at(0.0)) is None
    assert buffer.clock_resets == 1 and buffer.drops[DropReason.OUT_OF_ORDER] == 0
    assert stamps(buffer.take_new_set(now_ns=at(0.0))) == [(0, 0.0), (1, 0.0), (2, 0.0)]


def test_a_stamp_jumping_back_alone_is_out_of_order_not_a_clock_jump() -> None:
    buffer = multi(future_tolerance_s=0.5)
    assert buffer.add(frame(0, 10.0), now_ns=at(10.0)) is None
    # The clock goes on; one camera repeats an old stamp (a driver glitch): dropped as before.
    assert buffer.add(frame(0, 9.95), now_ns=at(10.1)) == DropReason.OUT_OF_ORDER
    # The clock is behind the newest stamp, but within the future tolerance: no jump either.
    assert buffer.add(frame(1, 9.6), now_ns=at(9.6)) is None
    assert buffer.clock_resets == 0


def test_a_moving_camera_after_a_clock_jump_collects_new_key_frames() -> None:
    buffer = ViewBuffer(ViewBufferConfig(num_cameras=1, views_per_reconstruction=2,
                                         min_view_interval_s=0.5, max_frame_age_s=2.0))
    for t in (20.0, 20.5):
        buffer.add(frame(0, t), now_ns=at(t))
    assert buffer.take_new_set(now_ns=at(20.5)) is not None
    for t in (0.0, 0.5):  # a simulator reset
        assert buffer.add(frame(0, t), now_ns=at(t)) is None
    assert stamps(buffer.take_new_set(now_ns=at(0.5))) == [(0, 0.0), (0, 0.5)]


# ------------------------------------------------------------------ one moving camera


def moving(**overrides: object) -> ViewBuffer:
    values = {'num_cameras': 1, 'views_per_reconstruction': 3, 'min_view_interval_s': 0.5,
              'max_frame_age_s': 2.0}
    values.update(overrides)
    return ViewBuffer(ViewBufferConfig(**values))


def test_moving_camera_takes_key_frames_at_least_the_interval_apart() -> None:
    buffer = moving()
    for t in (0.0, 0.1, 0.3, 0.5, 0.7, 0.99):
        assert buffer.add(frame(0, t), now_ns=at(t)) is None
    assert buffer.complete_set(now_ns=at(0.99)) is None  # key frames 0.0 and 0.5 only
    buffer.add(frame(0, 1.0), now_ns=at(1.0))
    view_set = buffer.take_new_set(now_ns=at(1.0))
    assert stamps(view_set) == [(0, 0.0), (0, 0.5), (0, 1.0)]
    buffer.add(frame(0, 1.2), now_ns=at(1.2))
    assert buffer.take_new_set(now_ns=at(1.2)) is None  # not a key frame: nothing new
    buffer.add(frame(0, 1.6), now_ns=at(1.6))
    assert stamps(buffer.take_new_set(now_ns=at(1.6))) == [(0, 0.5), (0, 1.0), (0, 1.6)]


def test_moving_camera_key_frames_expire() -> None:
    buffer = moving(max_frame_age_s=1.5)
    for t in (0.0, 0.5, 1.0):
        buffer.add(frame(0, t), now_ns=at(t))
    assert buffer.complete_set(now_ns=at(1.5)) is not None
    assert buffer.complete_set(now_ns=at(1.6)) is None  # the first key frame is too old
    assert buffer.status(now_ns=at(1.6)).key_frames == 2


def test_moving_camera_span_must_fit_in_max_age() -> None:
    with pytest.raises(ValueError, match='never be complete'):
        ViewBufferConfig(num_cameras=1, views_per_reconstruction=5, min_view_interval_s=0.5,
                         max_frame_age_s=2.0)
    ViewBufferConfig(num_cameras=3, views_per_reconstruction=5, min_view_interval_s=0.5,
                     max_frame_age_s=2.0)  # several cameras: the key-frame rule is unused


def test_single_view_reconstruction_from_every_new_frame() -> None:
    buffer = moving(views_per_reconstruction=1, min_view_interval_s=0.0)
    buffer.add(frame(0, 0.0), now_ns=at(0.0))
    assert len(buffer.take_new_set(now_ns=at(0.0))) == 1
    buffer.add(frame(0, 0.03), now_ns=at(0.03))
    assert stamps(buffer.take_new_set(now_ns=at(0.03))) == [(0, 0.03)]


# ------------------------------------------------------------------ thread safety


def test_concurrent_producers_and_consumer() -> None:
    buffer = multi(min_views=1, max_frame_age_s=1000.0)
    taken: list[ViewSet] = []
    errors: list[BaseException] = []

    def produce(camera: int) -> None:
        try:
            for i in range(2000):
                buffer.add(frame(camera, i * 0.001), now_ns=at(2.0))
                buffer.take_new_set(now_ns=at(2.0))
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    def consume() -> None:
        for _ in range(2000):
            view_set = buffer.complete_set(now_ns=at(2.0))
            if view_set is not None:
                taken.append(view_set)

    threads = [threading.Thread(target=produce, args=(c,)) for c in range(3)]
    threads.append(threading.Thread(target=consume))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert buffer.accepted == (2000, 2000, 2000)
    assert all(1 <= len(s) <= 3 for s in taken)


# ------------------------------------------------------------------ the one-slot queue


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_slot_replaces_the_pending_item_and_counts_drops() -> None:
    merged: list[tuple[str, str]] = []
    slot: PendingSlot[str] = PendingSlot(merge=lambda old, new: merged.append((old, new)))
    assert slot.put('a') is False
    assert slot.put('b') is True
    assert slot.put('c') is True
    assert slot.dropped == 2 and merged == [('a', 'b'), ('b', 'c')]
    assert slot.poll() == 'c'
    assert slot.poll() is None
    assert slot.taken == 1 and not slot.pending


def test_slot_rate_limit() -> None:
    clock = FakeClock()
    slot: PendingSlot[int] = PendingSlot(max_rate_hz=2.0, clock=clock)
    slot.put(1)
    assert slot.poll() == 1
    slot.put(2)
    assert slot.poll() is None  # 0.5 s must pass
    clock.t += 0.3
    slot.put(3)  # replaces 2 while waiting: the newest is what runs
    assert slot.poll() is None
    clock.t += 0.2
    assert slot.poll() == 3
    assert slot.dropped == 1
    slot.set_max_rate(0.0)  # unlimited from now on
    slot.put(4)
    assert slot.poll() == 4
    with pytest.raises(ValueError):
        slot.set_max_rate(-1.0)
    with pytest.raises(ValueError):
        slot.set_max_rate(float('nan'))


def test_slot_take_blocks_for_the_rate_limit_and_times_out() -> None:
    slot: PendingSlot[int] = PendingSlot(max_rate_hz=5.0)
    start = time.monotonic()
    assert slot.take(timeout=0.05) is None  # empty: times out
    assert time.monotonic() - start >= 0.04
    slot.put(1)
    assert slot.take(timeout=5.0) == 1
    slot.put(2)
    start = time.monotonic()
    assert slot.take(timeout=5.0) == 2
    assert time.monotonic() - start >= 0.15  # 0.2 s period, some slack for coarse clocks


def test_slot_close_wakes_a_blocked_consumer_and_returns_the_pending_item() -> None:
    slot: PendingSlot[int] = PendingSlot()
    result: list = []
    thread = threading.Thread(target=lambda: result.append(slot.take()))
    thread.start()
    time.sleep(0.05)  # let it block (not needed for correctness)
    assert slot.close() is None
    thread.join(10)
    assert result == [None] and slot.closed
    with pytest.raises(RuntimeError):
        slot.put(1)
    other: PendingSlot[int] = PendingSlot()
    other.put(7)
    assert other.close() == 7


# ------------------------------------------------------------------ the worker


def job(t_s: float) -> Job:
    return Job(ViewSet((frame(0, t_s),)))


def test_worker_runs_only_the_newest_pending_job_and_hands_waiters_over() -> None:
    gate = threading.Event()
    started = threading.Event()
    processed: list[float] = []

    def process(j: Job) -> Outcome:
        started.set()
        gate.wait(30)
        processed.append((j.views.newest_stamp_ns - NOW) / S)
        return Outcome(True, f'done {processed[-1]}')

    slot: PendingSlot[Job] = PendingSlot(merge=merge_jobs)
    worker = Worker(slot, process, on_error=lambda j, e: Outcome(False, str(e)))
    worker.start()
    slot.put(job(0.0))
    assert started.wait(30)
    assert worker.busy
    waiters = [Waiter() for _ in range(3)]
    for i, waiter in enumerate(waiters):  # arrive while the worker is busy
        slot.put(Job(ViewSet((frame(0, 1.0 + i),)), waiters=[waiter]))
    assert slot.dropped == 2
    gate.set()
    outcomes = [w.wait(30) for w in waiters]
    assert processed == [0.0, 3.0]
    assert all(o is not None and o.message == 'done 3.0' for o in outcomes)
    assert worker.stop(timeout=30)
    assert not worker.alive


def test_worker_survives_exceptions() -> None:
    errors: list[str] = []

    def process(j: Job) -> Outcome:
        if j.views.newest_stamp_ns == NOW:
            raise RuntimeError('boom')
        return Outcome(True, 'ok')

    def on_error(j: Job, exc: Exception) -> Outcome:
        errors.append(str(exc))
        return Outcome(False, f'failed: {exc}')

    slot: PendingSlot[Job] = PendingSlot(merge=merge_jobs)
    worker = Worker(slot, process, on_error=on_error)
    worker.start()
    first, second = Waiter(), Waiter()
    slot.put(Job(ViewSet((frame(0, 0.0),)), waiters=[first]))
    assert first.wait(30) == Outcome(False, 'failed: boom')
    slot.put(Job(ViewSet((frame(0, 1.0),)), waiters=[second]))
    assert second.wait(30) == Outcome(True, 'ok')
    assert errors == ['boom'] and worker.alive
    assert worker.stop(timeout=30)


def test_worker_stop_fails_the_pending_job() -> None:
    gate = threading.Event()
    slot: PendingSlot[Job] = PendingSlot(merge=merge_jobs)
    worker = Worker(slot, lambda j: (gate.wait(30), Outcome(True, 'ok'))[1],
                    on_error=lambda j, e: Outcome(False, str(e)))
    worker.start()
    running, pending = Waiter(), Waiter()
    slot.put(Job(ViewSet((frame(0, 0.0),)), waiters=[running]))
    deadline = time.monotonic() + 30
    while not worker.busy:  # the first job must be running before the second is queued
        assert time.monotonic() < deadline, 'the worker never started the first job'
        time.sleep(0.01)
    slot.put(Job(ViewSet((frame(0, 1.0),)), waiters=[pending]))
    threading.Timer(0.2, gate.set).start()
    assert worker.stop(timeout=30)
    assert running.wait(1) == Outcome(True, 'ok')
    outcome = pending.wait(1)
    assert outcome is not None and not outcome.success and 'stopped' in outcome.message


def test_a_request_to_a_stopping_worker_gets_a_readable_answer() -> None:
    slot: PendingSlot[Job] = PendingSlot(merge=merge_jobs)
    worker = Worker(slot, lambda j: Outcome(True, 'ok'), on_error=lambda j, e: Outcome(False, ''))
    worker.start()
    assert submit_and_wait(slot, ViewSet((frame(0, 0.0),)), timeout=30) == Outcome(True, 'ok')
    assert worker.stop(timeout=30)  # a deactivate closes the slot
    outcome = submit_and_wait(slot, ViewSet((frame(0, 1.0),)), timeout=30)
    assert outcome is not None and not outcome.success
    assert 'deactivating' in outcome.message and 'PendingSlot' not in outcome.message


def test_a_worker_abandoned_by_a_stop_blocks_a_second_one_until_it_ends() -> None:
    gate = threading.Event()
    started = threading.Event()

    def stuck(j: Job) -> Outcome:
        started.set()
        gate.wait(30)
        return Outcome(True, 'late')

    handle = WorkerHandle()
    first_slot: PendingSlot[Job] = PendingSlot(merge=merge_jobs)
    handle.start(first_slot, stuck, on_error=lambda j, e: Outcome(False, str(e)))
    first_slot.put(job(0.0))
    assert started.wait(30)
    assert not handle.stop(timeout=0.1)  # deactivate gives up on the hung reconstruction
    with pytest.raises(WorkerBusyError, match='still running'):
        handle.start(PendingSlot(merge=merge_jobs), stuck,
                     on_error=lambda j, e: Outcome(False, ''))
    gate.set()
    deadline = time.monotonic() + 30
    while handle.alive:
        assert time.monotonic() < deadline, 'the abandoned worker never ended'
        time.sleep(0.01)
    second = handle.start(PendingSlot(merge=merge_jobs), stuck,
                          on_error=lambda j, e: Outcome(False, ''))
    assert second.alive and handle.stop(timeout=30) and not handle.alive


# ------------------------------------------------------------------ the view preparer


def test_preparer_prepares_each_frame_once_and_reports_errors() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def prepare(f: Frame) -> np.ndarray:
        with lock:
            calls.append(f.stamp_ns)
        if f.camera == 9:
            raise ValueError('bad region of interest')
        return np.full(2, f.stamp_ns - NOW, dtype=np.int64)

    preparer = ViewPreparer(prepare, threads=2, capacity=3)
    frames = [frame(0, 0.0), frame(1, 1e-9), frame(2, 2e-9)]
    preparer.prefetch(frames[0])  # ahead of time, as the node does for an idle worker
    views = preparer.views(frames)
    assert [int(v[0]) for v in views] == [0, 1, 2]
    assert preparer.views(frames[1:])[0] is views[1]  # reused, not recomputed
    assert sorted(calls) == [NOW, NOW + 1, NOW + 2]
    preparer.views([frame(0, 5.0)])  # a fourth frame: the oldest result is forgotten
    preparer.views([frames[0]])
    assert calls.count(NOW) == 2
    with pytest.raises(ValueError, match='region of interest'):
        preparer.views([frame(9, 0.0)])
    preparer.close()
    preparer.prefetch(frame(0, 7.0))  # after close: ignored, no exception
