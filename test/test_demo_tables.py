"""The demo's tables of several objects (``--objects-per-scene``): setup, markers read, report.

The pure parts run everywhere: the setup's parameters and refusals, the node's markers read back
into placed grids (built with the node's own marker builder), the printed lines, the picture and
``summary.json``. The end-to-end run (rig, node and scorer over DDS, the cameras over TF) needs
tf2_ros.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from std_msgs.msg import Header

from ros_helpers import isolate_ros_domain
from pix2voxpp_ros.core.objects import PlacedObject
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.scene_scoring import PlacedGrid, score_table
from pix2voxpp_ros.core.voxels import grid_to_ros_axes
from pix2voxpp_ros.ros.conversions.objects import objects_to_markers
from pix2voxpp_ros.ros.demo import demo_setup
from pix2voxpp_ros.ros.demo.collector import found_objects
from pix2voxpp_ros.ros.demo.report import (table_lines, table_picture, tables_summary_line,
                                           write_tables_report)


def test_tables_run_the_node_on_instance_masks_and_are_refused_where_they_cannot() -> None:
    tables = demo_setup('tabletop', placement='calibrated', tf=True, objects_per_scene=3)
    assert tables.objects_per_scene == 3 and tables.placed
    assert set(tables.rig_parameters) == {'scene:=tabletop', 'objects:=3'}
    assert {'mask_mode:=instances', 'placement:=calibrated', 'fixed_frame:=world',
            "mask_topics:=['/rig/camera_0/instance_mask', '/rig/camera_1/instance_mask', "
            "'/rig/camera_2/instance_mask']"} <= set(tables.node_parameters)
    assert demo_setup('tabletop', placement='calibrated').objects_per_scene == 1
    for kwargs, why in (({'scene': 'wrist'}, 'needs --scene tabletop, not wrist'),
                        ({'masks': False}, 'needs the instance masks'),
                        ({'placement': 'canonical'}, 'needs --placement calibrated'),
                        ({'tf': False}, 'needs tf2_ros'),
                        ({'objects_per_scene': 6}, 'must be 1 (one object a scene) or 2 to 5')):
        arguments = dict({'scene': 'tabletop', 'placement': 'calibrated', 'tf': True,
                          'objects_per_scene': 3}, **kwargs)
        with pytest.raises(ValueError, match=re.escape(why)):
            demo_setup(**arguments)


def _objects() -> list[PlacedObject]:
    mug = np.zeros((32, 32, 32), bool)
    mug[8:24, 0:20, 8:24] = True  # ShapeNet axes (y up)
    lamp = np.zeros((32, 32, 32), bool)
    lamp[14:18, 0:30, 14:18] = True
    return [PlacedObject(4, mug, ObjectPose((0.3, -0.1, 0.08), 0.7, 0.16)),
            PlacedObject(9, lamp, ObjectPose((-0.2, 0.25, 0.12), -2.5, 0.24))]


def test_the_node_markers_give_back_each_object_s_grid_and_pose() -> None:
    header = Header(frame_id='world')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    stamp, found = found_objects(objects_to_markers(_objects(), header=header).markers)
    assert stamp == 12_000_000_345
    assert [f.label for f in found] == ['4', '9']
    for mine, obj in zip(found, _objects()):
        np.testing.assert_array_equal(mine.grid, grid_to_ros_axes(obj.occupied))
        assert mine.pose.position == pytest.approx(obj.pose.position)
        assert mine.pose.heading_rad == pytest.approx(obj.pose.heading_rad)
        assert mine.pose.size_m == pytest.approx(obj.pose.size_m)
    # A set without objects: its DELETEALLs still carry the stamp.
    assert found_objects(objects_to_markers([], header=header).markers) == (12_000_000_345, [])
    assert found_objects([]) == (None, [])


def _scored_table():
    objects = _objects()
    truths = [PlacedGrid('mug/0', grid_to_ros_axes(objects[0].occupied), objects[0].pose),
              PlacedGrid('lamp/0', grid_to_ros_axes(objects[1].occupied), objects[1].pose),
              PlacedGrid('car/0', grid_to_ros_axes(objects[0].occupied),
                         ObjectPose((1.0, 1.0, 0.1), 0.0, 0.3))]
    found = [PlacedGrid('4', truths[0].grid, ObjectPose((0.3016, -0.1, 0.08), 0.75, 0.168)),
             PlacedGrid('9', truths[1].grid, truths[1].pose),
             PlacedGrid('11', truths[1].grid, ObjectPose((-1.0, -1.0, 0.1), 0.0, 0.2))]
    table = score_table(found, truths, name='mug/0 lamp/0 car/0', stamp_ns=77, latency_s=1.25)
    table.views = [np.full((48, 64, 3), 90, np.uint8)] * 3
    table.labels = [np.pad(np.full((10, 10), 7, np.uint8), 19)[:48, :64]] * 3
    return table


def test_a_table_is_printed_drawn_and_summarized(tmp_path: Path) -> None:
    table = _scored_table()
    first, mug, lamp = table_lines(table)
    assert first == ('  table mug/0 lamp/0 car/0: found 2/3, missed car/0, invented 1, '
                     'latency 1250 ms')
    assert re.match(r'\s+mug/0\s+id 4\s+IoU 1\.000\s+world IoU \d\.\d{3}\s+position 1\.0 % '
                    r'of 0\.16 m\s+size \+5\.0 %', mug), mug
    assert 'lamp/0' in lamp and 'world IoU 1.000' in lamp
    picture = table_picture(table)
    assert picture.ndim == 3 and picture.shape[0] > 3 * 200  # views, labels, three truths
    setup = demo_setup('tabletop', placement='calibrated', tf=True, objects_per_scene=3)
    summary = write_tables_report(tmp_path, [table], [1.25, 0.5], weights=Path('w.pth'),
                                  setup=setup, unscored=[('sofa/0', 'bottle/0', 'chair/0')])
    assert json.loads((tmp_path / 'summary.json').read_text()) == summary
    assert cv2.imread(str(tmp_path / '00_mug0_lamp0_car0.png')).shape == picture.shape
    totals = summary['totals']
    assert (totals['objects'], totals['found'], totals['missed'], totals['invented']) == \
        (6, 2, 4, 1)
    assert summary['unscored_tables'] == ['sofa/0 bottle/0 chair/0']
    assert summary['tables'][0]['objects'][0]['object_id'] == '4'
    assert summary['objects_per_scene'] == 3 and summary['masks'] == 'instances'
    assert summary['latency_s'] == {'median': 0.875, 'p95': 0.5, 'sets': 2}
    line = tables_summary_line(summary)
    assert line.startswith('2 of 6 objects found (33.3 %), 1 invented; mean world IoU ')
    assert 'position 0.5/0.9 % of the size' in line


@pytest.mark.robot_tools('tf2_ros')
def test_the_first_table_of_three_is_scored_object_by_object(tmp_path: Path) -> None:
    """The shipped weights on the rig's first table (a round table, a chair and a lamp)."""
    domain = isolate_ros_domain()
    out = tmp_path / 'tables'
    demo = subprocess.run(
        [sys.executable, '-m', 'pix2voxpp_ros.ros.demo', '--scene', 'tabletop', '--objects',
         '1', '--objects-per-scene', '3', '--out', str(out), '--domain-id', str(domain),
         '--device', 'cpu', '--timeout-s', '240'], capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    summary = json.loads((out / 'summary.json').read_text())
    (table,) = summary['tables']
    assert table['name'] == 'table/0 chair/0 lamp/0'
    assert summary['totals']['objects'] == 3 and table['invented'] == []
    # Measured: the table (world IoU 0.64) and the lamp (0.78) within 2 % of their size; the
    # chair's placement (silhouette IoU 0.40) is refused by min_placement_iou: missed.
    assert len(table['objects']) >= 2
    for scored in table['objects']:
        assert scored['position_error_rel'] < 0.05 and abs(scored['size_error']) < 0.1
        assert scored['world_iou'] > 0.4
    assert re.search(r'found \d/3', demo.stdout) and 'objects found' in demo.stdout
    assert (out / '00_table0_chair0_lamp0.png').is_file()


def test_tables_are_recorded_for_the_bag_tool(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    from bag_helpers import read_bag
    from pix2voxpp_ros.ros import demo
    bag = tmp_path / 'tables'
    assert demo.main(['--record', str(bag), '--objects', '1', '--object-switch-s', '0.5',
                      '--scene', 'tabletop', '--objects-per-scene', '2']) == 0
    recorded = read_bag(bag)
    assert {f'/rig/camera_{i}/instance_mask' for i in range(3)} <= set(recorded)
    assert len(recorded['/rig/sim_camera_rig/true_placements'][0][1].markers) == 2
    out = capsys.readouterr().out
    assert '-p mask_mode:=instances' in out and 'instance_mask' in out
