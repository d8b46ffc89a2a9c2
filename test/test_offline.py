"""Offline view-set assembly on recorded time, batching, the background reader (core, no ROS)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from pix2voxpp_ros.core.clock import RateLimiter, seconds_to_ns
from pix2voxpp_ros.core.drops import DropReason
from pix2voxpp_ros.core.intake import FrameIntake
from pix2voxpp_ros.core.masks import MaskedFrames
from pix2voxpp_ros.core.offline import (Batcher, OfflineAssembler, PreparedSet, PreparedViews,
                                        in_background, stack_batch)
from pix2voxpp_ros.core.views import NS_PER_S, Frame, ViewBuffer, ViewBufferConfig, ViewSet

T0 = 1_700_000_000 * NS_PER_S
MS = 1_000_000


def frame(camera: int, t_ms: int) -> Frame:
    return Frame(camera=camera, stamp_ns=T0 + t_ms * MS, image=np.zeros((2, 2, 3), np.uint8))


def feed(assembler: OfflineAssembler, frames: list[Frame]) -> list[tuple[int, tuple]]:
    """Feed frames; return (index of the frame that released it, set key) per released set."""
    out = []
    for i, f in enumerate(frames):
        sets, _ = assembler.add(f)
        out += [(i, tuple((c, (s - T0) // MS) for c, s in v.key)) for v in sets]
    out += [(len(frames), tuple((c, (s - T0) // MS) for c, s in v.key))
            for v in assembler.finish()[0]]
    return out


def three_cameras(ticks_ms: list[int]) -> list[Frame]:
    return [frame(c, t) for t in ticks_ms for c in range(3)]


def test_every_tick_is_a_set_without_a_rate_limit() -> None:
    assembler = OfflineAssembler(ViewBufferConfig(num_cameras=3), max_rate_hz=0.0)
    released = feed(assembler, three_cameras([0, 500, 1000]))
    assert released == [(2, ((0, 0), (1, 0), (2, 0))), (5, ((0, 500), (1, 500), (2, 500))),
                        (8, ((0, 1000), (1, 1000), (2, 1000)))]
    assert assembler.sets_found == 3 and assembler.sets_rate_dropped == 0


def test_rate_limit_runs_on_recorded_time_and_keeps_the_newest_set() -> None:
    # Ticks every 400 ms, at most one set per second of recorded time: the node's one-slot queue
    # takes the first set at once, then the newest waiting one when the second is up.
    assembler = OfflineAssembler(ViewBufferConfig(num_cameras=3), max_rate_hz=1.0)
    released = feed(assembler, three_cameras([0, 400, 800, 1200, 1600, 2000, 2400]))
    stamps = [key[0][1] for _, key in released]
    # 0 taken; 400 waits, replaced by 800, taken at 1000 (seen with the first frame stamped
    # 1200); 1200 waits, replaced by 1600, taken at 2000; 2000 waits, replaced by 2400, which is
    # left waiting when the recording ends.
    assert stamps == [0, 800, 1600, 2400]
    assert [i for i, _ in released] == [2, 9, 15, 21]
    assert assembler.sets_found == 7
    assert assembler.sets_rate_dropped == 3  # 400, 1200 and 2000 were replaced


def test_drop_reasons_count_and_serialise_as_their_values() -> None:
    # summary.json and the diagnostics' keys are written from counters keyed by the reasons.
    counts = {DropReason.RATE: 2, DropReason.STALE: 1}
    assert json.loads(json.dumps(counts, indent=2)) == {'rate': 2, 'stale': 1}
    keys = [f'frames_dropped.{r}' for r in counts]
    assert keys == ['frames_dropped.rate', 'frames_dropped.stale']
    assert counts['stale'] == 1 and sorted(counts) == ['rate', 'stale']


def test_frame_age_is_judged_against_the_newest_stamp_seen() -> None:
    assembler = OfflineAssembler(ViewBufferConfig(num_cameras=2, max_frame_age_s=1.0))
    assert assembler.add(frame(0, 5000)) == ([], [])
    sets, drops = assembler.add(frame(1, 3500))  # 1.5 s older than camera 0's frame
    assert sets == [] and [(d.camera, d.reason) for d in drops] == [(1, DropReason.STALE)]
    assert 'older than max_frame_age_s' in drops[0].message('/cam1')
    assert assembler.now_ns == T0 + 5000 * MS  # the clock never runs backwards
    sets, drops = assembler.add(frame(1, 4950))
    assert drops == []
    assert [v.key for v in sets] == [((0, T0 + 5000 * MS), (1, T0 + 4950 * MS))]


def test_receive_time_can_be_the_clock() -> None:
    assembler = OfflineAssembler(ViewBufferConfig(num_cameras=1, views_per_reconstruction=1,
                                                  max_frame_age_s=1.0))
    sets, drops = assembler.add(frame(0, 0), now_ns=T0 + 2000 * MS)  # arrived 2 s late
    assert sets == [] and [d.reason for d in drops] == [DropReason.STALE]


def test_masked_frames_wait_for_their_mask_on_the_mask_clock() -> None:
    config = ViewBufferConfig(num_cameras=2, max_frame_age_s=1.0)
    assembler = OfflineAssembler(config, masks=MaskedFrames(2, timeout_s=0.1))
    on = np.full((2, 2), 255, np.uint8)
    assert assembler.add(frame(0, 0)) == ([], [])
    assert assembler.add(frame(1, 0)) == ([], [])  # both wait for their masks
    assert assembler.add_mask(0, T0, on, now_ns=T0 + 50 * MS) == ([], [])
    sets, drops = assembler.add_mask(1, T0, on, now_ns=T0 + 60 * MS)
    assert drops == [] and [v.key for v in sets] == [((0, T0), (1, T0))]
    assert all(f.mask is not None for f in sets[0].frames)
    # A frame whose mask never comes is dropped at the end of the recording.
    assert assembler.add(frame(0, 500)) == ([], [])
    assert [(d.camera, d.reason) for d in assembler.finish()[1]] == [(0, DropReason.NO_MASK)]


def test_moving_camera_key_frames() -> None:
    config = ViewBufferConfig(num_cameras=1, views_per_reconstruction=3, min_view_interval_s=0.5,
                              max_frame_age_s=5.0)
    released = feed(OfflineAssembler(config), [frame(0, t) for t in range(0, 2001, 200)])
    # key frames at 0, 600, 1200, 1800 (each >= 500 ms after the previous one)
    assert [key for _, key in released] == [((0, 0), (0, 600), (0, 1200)),
                                            ((0, 600), (0, 1200), (0, 1800))]


def test_prepared_views_prepare_each_frame_once() -> None:
    calls = []

    def prepare(f: Frame) -> np.ndarray:
        calls.append(f.stamp_ns)
        return np.full((3, 4, 4), f.stamp_ns - T0, np.float32)
    prepared = PreparedViews(prepare, capacity=4)
    a, b, c = frame(0, 1), frame(0, 2), frame(0, 3)
    first = prepared.views(ViewSet((a, b)))
    second = prepared.views(ViewSet((b, c)))
    assert first.shape == (2, 3, 4, 4) and second[0, 0, 0, 0] == 2 * MS
    assert calls == [a.stamp_ns, b.stamp_ns, c.stamp_ns] and prepared.prepared == 3


def test_batcher_groups_sets_of_one_view_count() -> None:
    def item(views: int) -> PreparedSet:
        return PreparedSet(ViewSet(tuple(frame(c, 0) for c in range(views))),
                           np.zeros((views, 3, 2, 2), np.float32))
    batcher = Batcher(2)
    out = [batch for v in (3, 3, 3, 2, 3) for batch in batcher.add(item(v))] + batcher.flush()
    assert [[len(i.view_set) for i in batch] for batch in out] == [[3, 3], [3], [2], [3]]
    assert stack_batch(out[0]).shape == (2, 3, 3, 2, 2)
    with pytest.raises(ValueError):
        Batcher(0)


def test_in_background_keeps_order_and_raises_where_it_failed() -> None:
    def produce():
        yield from range(5)
        raise RuntimeError('bag broke')
    got = []
    with pytest.raises(RuntimeError, match='bag broke'):
        for value in in_background(produce(), depth=2):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_in_background_runs_ahead_on_another_thread_and_stops_early() -> None:
    threads, produced = set(), []

    def produce():
        for i in range(100):
            threads.add(threading.current_thread().name)
            produced.append(i)
            yield i
    items = in_background(produce(), depth=2)
    assert next(items) == 0
    items.close()  # the consumer stops: so does the producer
    assert threads == {'pix2voxpp_offline_reader'}
    assert len(produced) < 10


def test_frame_intake_hands_back_sets_drops_accepted_frames_and_clock_jumps() -> None:
    buffer = ViewBuffer(ViewBufferConfig(num_cameras=2, max_frame_age_s=1.0))
    intake = FrameIntake(buffer)
    first = intake.add_frame(frame(0, 0), now_ns=T0)
    assert first.sets == [] and first.drops == [] and first.clock_reset is None
    assert [f.camera for f in first.accepted] == [0]
    second = intake.add_frame(frame(1, 10), now_ns=T0 + 10 * MS)
    assert [v.key for v in second.sets] == [((0, T0), (1, T0 + 10 * MS))]
    late = intake.add_frame(frame(1, 20), now_ns=T0 + 5000 * MS)  # 5 s after its stamp
    assert late.accepted == [] and [d.reason for d in late.drops] == [DropReason.STALE]
    assert late.drops[0].frame.stamp_ns == T0 + 20 * MS
    # The clock jumps back (a looping bag): the buffer starts afresh and says which camera saw it.
    again = intake.add_frame(frame(0, 0), now_ns=T0 - 60_000 * MS)
    assert again.clock_reset == 0 and again.drops[0].reason is DropReason.FUTURE


def test_frame_intake_with_service_trigger_takes_no_sets() -> None:
    intake = FrameIntake(ViewBuffer(ViewBufferConfig(num_cameras=1, views_per_reconstruction=1)),
                         take_sets=False)
    result = intake.add_frame(frame(0, 0), now_ns=T0)
    assert result.sets == [] and len(result.accepted) == 1
    with pytest.raises(RuntimeError, match='no masks'):
        intake.add_mask(0, T0, np.ones((2, 2), np.uint8), now_ns=T0)


def test_rate_limiter_counts_on_the_clock_it_is_given() -> None:
    seconds = RateLimiter(2.0)  # at most 2 per second, times in seconds
    assert seconds.allowed(10.0) and seconds.next_allowed is None
    seconds.mark(10.0)
    assert seconds.wait(10.2) == pytest.approx(0.3) and not seconds.allowed(10.2)
    assert seconds.allowed(10.5) and seconds.next_allowed == 10.5
    nanoseconds = RateLimiter(3.0, to_ticks=seconds_to_ns)
    nanoseconds.mark(T0)
    assert nanoseconds.next_allowed == T0 + 333_333_333  # whole nanoseconds
    nanoseconds.set_rate(0.0)  # no limit
    assert nanoseconds.allowed(T0)
    with pytest.raises(ValueError):
        RateLimiter(float('nan'))
