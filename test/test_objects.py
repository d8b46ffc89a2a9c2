"""Core tests of the placed-object record, its box and the planning scene's changes (no ROS)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pix2voxpp_ros.core.objects import (CollisionChanges, ObjectRecordError, PlacedObject,
                                        check_unique_ids, collision_changes, object_box)
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.voxels import grid_to_points

D = 32


def block(lo: tuple[int, int, int], hi: tuple[int, int, int]) -> np.ndarray:
    """``(D, D, D)`` bool, ShapeNet axes, occupied on ``lo .. hi - 1``."""
    grid = np.zeros((D, D, D), bool)
    grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return grid


def pose(x: float = 0.0, y: float = 0.0, heading: float = 0.0, size: float = 0.32
         ) -> ObjectPose:
    return ObjectPose(position=(x, y, 0.1), heading_rad=heading, size_m=size)


def test_occupied_points_are_the_clouds_points_placed() -> None:
    grid = block((2, 3, 4), (9, 12, 6))
    probabilities = np.random.default_rng(1).random((D, D, D)).astype(np.float32)
    where = pose(0.5, -0.2, 1.1, 0.24)
    obj = PlacedObject(7, grid, where, probabilities=probabilities, category='mug')
    points, values = obj.occupied_points()
    local, _ = grid_to_points(grid, threshold=0.5, object_size_m=0.24, ros_axes=True)
    np.testing.assert_allclose(points, local @ where.rotation().T + where.position, atol=1e-6)
    np.testing.assert_array_equal(values, probabilities[grid])
    bare = PlacedObject(7, grid, where)
    np.testing.assert_array_equal(bare.occupied_points()[1], np.ones(grid.sum(), np.float32))


def test_box_is_tight_and_turns_with_the_grid() -> None:
    grid = block((0, 8, 16), (8, 32, 24))  # ShapeNet x 0..8, y 8..32, z 16..24
    box = object_box(PlacedObject(0, grid, pose(1.0, 2.0, math.pi / 2, 0.32)))
    # ROS axes of the grid: x = ShapeNet z (16..24), y = x (0..8), z = y (8..32); 1 cm voxels.
    np.testing.assert_allclose(box.size, (0.08, 0.08, 0.24), atol=1e-9)
    local = np.array([0.04, -0.12, 0.04])  # box centre in the grid frame, metres
    turned = np.array([-local[1], local[0], local[2]])  # a quarter turn about z
    np.testing.assert_allclose(box.centre, turned + [1.0, 2.0, 0.1], atol=1e-9)
    assert box.heading_rad == pytest.approx(math.pi / 2)
    empty = object_box(PlacedObject(0, np.zeros((D, D, D), bool), pose(size=0.2)))
    assert empty.size == (0.2, 0.2, 0.2) and empty.centre == (0.0, 0.0, 0.1)


@pytest.mark.parametrize('arguments', [
    dict(object_id=-1), dict(object_id=2 ** 31), dict(object_id=True), dict(object_id=1.0),
    dict(occupied=np.zeros((4, 4, 5), bool)), dict(probabilities=np.zeros((4, 4, 4))),
    dict(category=''), dict(category=3)])
def test_bad_records_are_refused(arguments: dict) -> None:
    record = dict(object_id=3, occupied=np.zeros((D, D, D), bool), pose=pose()) | arguments
    with pytest.raises(ObjectRecordError):
        PlacedObject(**record)


def test_repeated_ids_are_refused() -> None:
    grid = np.zeros((D, D, D), bool)
    check_unique_ids([PlacedObject(1, grid, pose()), PlacedObject(2, grid, pose())])
    with pytest.raises(ObjectRecordError, match=r'\[2\]'):
        check_unique_ids([PlacedObject(i, grid, pose()) for i in (2, 1, 2)])


def test_changes_add_move_remove_and_keep() -> None:
    previous = {1: pose(0.0), 2: pose(1.0), 3: pose(2.0), 4: pose(3.0), 5: pose(4.0)}
    current = {
        1: pose(0.001),                      # within 5 mm: unchanged
        2: pose(1.1),                        # moved 10 cm
        3: pose(2.0, heading=0.2),           # turned
        5: pose(4.0, size=0.4),              # grew 25 %: its mesh must be sent again
        6: pose(5.0),                        # new
    }
    changes = collision_changes(previous, current)
    assert changes == CollisionChanges(add=(5, 6), move=(2, 3), remove=(4,), unchanged=(1,),
                                       scene={1: previous[1], 2: current[2], 3: current[3],
                                              5: current[5], 6: current[6]})
    assert collision_changes(previous, current, reshaped={1}).add == (1, 5, 6)


def test_slow_drift_adds_up_to_a_move_and_headings_wrap() -> None:
    scene = {1: pose(0.0, heading=math.pi - 0.01)}
    for step in range(1, 4):  # 3 mm a view set: unchanged twice, then a move
        changes = collision_changes(scene, {1: pose(0.003 * step, heading=-math.pi + 0.01)})
        scene = changes.scene
        assert changes.move == ((1,) if step == 2 else ())
    assert collision_changes({}, {}) == CollisionChanges((), (), (), (), {})
    assert collision_changes(scene, {}).remove == (1,)
