"""Scoring every object of a table (the multi-object demo's core): pairing, scores, totals."""

from __future__ import annotations

import numpy as np
import pytest

from pix2voxpp_ros.core.metrics import ros_grid_to_shapenet, score_placement
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.scene_scoring import (PlacedGrid, TableStampScorer, pair_objects,
                                              score_table, tables_summary, truth_grids)

SIZE_M = 0.5


def _box(low: tuple[int, int, int], high: tuple[int, int, int]) -> np.ndarray:
    grid = np.zeros((32, 32, 32), dtype=bool)
    grid[low[0]:high[0], low[1]:high[1], low[2]:high[2]] = True
    return grid


def _table() -> list[PlacedGrid]:
    """Three true objects, 0.2-0.3 m, about 0.3 m apart on a table."""
    return [PlacedGrid('mug/0', _box((10, 10, 0), (22, 20, 16)),
                       ObjectPose((0.0, 0.0, 0.1), 0.3, 0.2)),
            PlacedGrid('car/0', _box((4, 8, 0), (28, 24, 12)),
                       ObjectPose((0.3, 0.05, 0.12), -1.0, 0.3)),
            PlacedGrid('lamp/0', _box((12, 12, 0), (20, 20, 30)),
                       ObjectPose((0.1, -0.3, 0.15), 2.0, 0.25))]


def _moved(pose: ObjectPose, dx: float, size: float = 1.0) -> ObjectPose:
    x, y, z = pose.position
    return ObjectPose((x + dx, y, z), pose.heading_rad, pose.size_m * size)


def test_objects_pair_nearest_first_within_a_share_of_the_true_size() -> None:
    truths = [t.pose for t in _table()]
    found = [_moved(truths[2], 0.01), _moved(truths[0], 0.004), _moved(truths[1], 0.5)]
    # The car's found object is 0.5 m (1.7 of its size) away: too far to be it.
    assert pair_objects(found, truths) == [(1, 0), (0, 2)]
    assert pair_objects(found, truths, tolerance=2.0) == [(1, 0), (2, 1), (0, 2)]
    # Two found objects near one truth: the nearer one gets it, the other none.
    twins = [_moved(truths[0], 0.05), _moved(truths[0], 0.01)]
    assert pair_objects(twins, truths) == [(1, 0)]
    assert pair_objects([], truths) == pair_objects(found, []) == []


def test_a_table_counts_found_missed_and_invented_and_scores_each_pair() -> None:
    truths = _table()
    mug, car, lamp = truths
    found = [PlacedGrid('7', lamp.grid, _moved(lamp.pose, 0.005, size=1.04)),
             PlacedGrid('3', mug.grid, mug.pose),
             PlacedGrid('9', car.grid, ObjectPose((1.5, 1.5, 0.1), 0.0, 0.3))]  # nothing there
    table = score_table(found, truths, name='mug/0 car/0 lamp/0', stamp_ns=5, latency_s=0.7)
    assert [(o.name, o.found) for o in table.objects] == [('mug/0', '3'), ('lamp/0', '7')]
    assert table.missed == ['car/0'] and table.invented == ['9'] and table.total == 3
    exact, off = table.objects
    assert exact.iou == 1.0 and exact.placement.world_iou == 1.0
    assert exact.placement.position_error_m == 0.0 and exact.placement.size_error == 0.0
    assert off.placement == score_placement(ros_grid_to_shapenet(lamp.grid),
                                            found[0].pose, ros_grid_to_shapenet(lamp.grid),
                                            lamp.pose)
    assert off.placement.position_error_rel == pytest.approx(0.005 / 0.25)
    assert off.placement.size_error == pytest.approx(0.04)
    assert off.iou == 1.0 and off.placement.world_iou < 1.0
    row = off.as_dict()
    assert (row['name'], row['object_id'], row['position_error_rel']) == ('lamp/0', '7', 0.02)


def test_truth_grids_split_a_cloud_by_instance() -> None:
    truths = _table()
    points, instances = [], []
    for k, truth in enumerate(truths):
        centres = ((np.argwhere(truth.grid) + 0.5) / 32 - 0.5) * SIZE_M  # ROS axes, metres
        points.append(centres)
        instances.append(np.full(len(centres), k, np.uint32))
    grids = truth_grids(np.concatenate(points), np.concatenate(instances), 4, SIZE_M)
    for grid, truth in zip(grids, truths):
        np.testing.assert_array_equal(grid, truth.grid)
    assert not grids[3].any()  # an object without points: an empty grid


def _feed_truth(scores: TableStampScorer, stamp: int, names: list[str]) -> None:
    truths = [t for t in _table() if t.label in names]
    scores.add_names(stamp, names)
    scores.add_truths(stamp, [t.grid for t in truths])
    scores.add_true_poses(stamp, {k: t.pose for k, t in enumerate(truths)})


def test_the_first_set_of_each_table_is_scored_once_its_truth_is_known() -> None:
    scores = TableStampScorer()
    mug, car, lamp = _table()
    scores.add_found(100, [PlacedGrid('1', mug.grid, mug.pose)], 0.5)
    scores.add_names(100, ['mug/0', 'car/0'])
    scores.add_truths(100, [mug.grid, car.grid])
    assert scores.score() == []  # the true placements of that stamp have not come yet
    scores.add_true_poses(100, {0: mug.pose, 1: car.pose})
    scores.add_view(100, 1, np.ones((2, 2, 3), np.uint8))
    scores.add_view(100, 0, np.zeros((2, 2, 3), np.uint8))
    [table] = scores.score()
    assert (table.name, table.stamp_ns, table.latency_s) == ('mug/0 car/0', 100, 0.5)
    assert table.missed == ['car/0'] and [v.max() for v in table.views] == [0, 1]
    # A later set of the same table does not replace the first one; the next table is scored.
    _feed_truth(scores, 200, ['mug/0', 'car/0'])
    scores.add_found(200, [PlacedGrid('1', mug.grid, mug.pose),
                           PlacedGrid('2', car.grid, car.pose)], 0.4)
    _feed_truth(scores, 300, ['lamp/0'])
    scores.add_found(300, [PlacedGrid('3', lamp.grid, lamp.pose)], 0.3)
    assert [(t.stamp_ns, len(t.objects)) for t in scores.score()] == [(100, 1), (300, 1)]
    assert scores.latencies == [0.5, 0.4, 0.3]


def test_tables_without_a_set_and_sets_too_old_for_their_truth() -> None:
    scores = TableStampScorer()
    for stamp, names in ((1, ['mug/0']), (2, ['car/0']), (3, ['car/0']), (4, ['lamp/0'])):
        _feed_truth(scores, stamp, names)
    assert scores.missed_tables() == []
    lamp = _table()[2]
    scores.add_found(4, [PlacedGrid('5', lamp.grid, lamp.pose)], 0.1)
    scores.add_found(0, [], 0.1)  # older than every truth kept: never scored, forgotten
    scores.add_found(9, [], 0.1)  # its truth may still come
    assert [t.name for t in scores.score()] == ['lamp/0']
    assert [stamp for stamp, _, _ in scores.found] == [9] and scores.forgotten == 1
    assert scores.missed_tables() == [('mug/0',), ('car/0',)]


def test_totals_count_every_object_shown() -> None:
    truths = _table()
    mug, car, lamp = truths
    first = score_table([PlacedGrid('1', mug.grid, mug.pose),
                         PlacedGrid('2', car.grid, _moved(car.pose, 0.003, 0.98))], truths)
    second = score_table([PlacedGrid('1', lamp.grid, lamp.pose),
                          PlacedGrid('4', mug.grid, ObjectPose((3.0, 0.0, 0.0), 0.0, 0.2))],
                         [lamp])
    summary = tables_summary([first, second], unscored=[('bottle/0', 'sofa/0')])
    assert {k: summary[k] for k in ('tables', 'objects', 'found', 'missed', 'invented',
                                    'tables_without_output')} == {
        'tables': 2, 'objects': 6, 'found': 3, 'missed': 3, 'invented': 1,
        'tables_without_output': 1}
    assert summary['found_share'] == 0.5
    world = [o.placement.world_iou for o in first.objects + second.objects]
    assert summary['mean_world_iou'] == pytest.approx(np.mean(world))
    assert summary['world']['size_error_abs']['median'] == pytest.approx(0.0)
    assert summary['world']['position_error_rel']['p90'] == pytest.approx(0.8 * 0.01)
    empty = tables_summary([])
    assert empty['found_share'] is None and empty['mean_world_iou'] is None
