"""Core tier: frames paired with their mask by stamp and the mask checked (no ROS, no clock).

:class:`MaskedFrames` is what the node's mask subscriptions and ``pix2voxpp-bag`` share; here it
is driven with hand-made frames and explicit times, as both drive it with their own clocks.
"""

from __future__ import annotations

import numpy as np

from pix2voxpp_ros.core.drops import DropReason
from pix2voxpp_ros.core.masks import MaskedFrames
from pix2voxpp_ros.core.preprocess import MaskError
from pix2voxpp_ros.core.views import NS_PER_S, Frame

MS = NS_PER_S // 1000


def frame(camera: int, stamp_ns: int) -> Frame:
    return Frame(camera=camera, stamp_ns=stamp_ns, image=np.zeros((6, 8, 3), np.uint8))


def mask(*, height: int = 6, width: int = 8, on: bool = True) -> np.ndarray:
    out = np.zeros((height, width), np.uint8)
    out[2:4, 3:5] = 255 if on else 0
    return out


def test_a_frame_goes_on_with_the_mask_of_its_stamp_whichever_comes_first() -> None:
    masks = MaskedFrames(2, timeout_s=0.5)
    first, second = frame(0, 100 * MS), frame(1, 100 * MS)
    assert masks.add_frame(first, now_ns=100 * MS) == ([], [])
    # Another camera's mask, or another stamp's, is not this frame's.
    assert masks.add_mask(1, 100 * MS, mask(), now_ns=110 * MS) == ([], [])
    assert masks.add_mask(0, 50 * MS, mask(), now_ns=120 * MS) == ([], [])
    ready, drops = masks.add_mask(0, 100 * MS, mask(), now_ns=130 * MS)
    assert drops == [] and len(ready) == 1
    assert ready[0].stamp_ns == 100 * MS and ready[0].image is first.image
    np.testing.assert_array_equal(ready[0].mask, mask())
    ready, drops = masks.add_frame(second, now_ns=140 * MS)  # its mask came before it
    assert drops == [] and [f.camera for f in ready] == [1]
    assert masks.finish() == []


def test_frames_without_a_good_mask_are_dropped_with_the_reason() -> None:
    masks = MaskedFrames(1, timeout_s=0.5)
    results = [masks.add_frame(frame(0, k * 100 * MS), now_ns=k * 100 * MS) for k in range(4)]
    assert all(r == ([], []) for r in results)
    cases = [(mask(on=False), DropReason.EMPTY_MASK, 'marks no pixel'),
             (mask(height=5), DropReason.BAD_MASK, 'bad mask: mask is 8×5, its image 8×6'),
             (MaskError("mask encoding is 'rgb8', not mono8"), DropReason.BAD_MASK, 'rgb8')]
    for k, (bad, reason, detail) in enumerate(cases):
        ready, drops = masks.add_mask(0, k * 100 * MS, bad, now_ns=400 * MS)
        assert ready == [] and [(d.frame.stamp_ns, d.reason) for d in drops] == \
            [(k * 100 * MS, reason)]
        assert detail in drops[0].detail
    # The frame of 300 ms waited for its mask until 800 ms: no longer than mask_timeout_s...
    assert masks.add_frame(frame(0, 800 * MS), now_ns=800 * MS) == ([], [])
    # ...but 1 ns more is too long, whatever the stamp of what comes then.
    ready, drops = masks.add_mask(0, 900 * MS, mask(), now_ns=800 * MS + 1)
    assert ready == [] and [(d.frame.stamp_ns, d.reason) for d in drops] == \
        [(300 * MS, DropReason.NO_MASK)]
    assert 'mask_timeout_s 0.5 s' in drops[0].detail
    # At the end of the input the frames still waiting never get theirs.
    assert [(d.frame.stamp_ns, d.reason) for d in masks.finish()] == \
        [(800 * MS, DropReason.NO_MASK)]
    assert masks.finish() == []
