"""``pix2voxpp-bag`` with ``placement: calibrated``: a recorded tabletop placed in the world.

The simulated rig records a tabletop scene straight into a bag (two objects at random positions,
headings and real sizes; camera infos, masks, the cameras on ``/tf`` and the truth on
``~/true_placement``). The tool, in this process with the shipped weights, must publish every
cloud in ``world`` on the true object, ``~/object_pose`` and the object's frame on ``/tf``, and
write placed PLY files. A copy of the recording with calibration removed or broken, frames in
unknown TF frames and hostile TF messages must give the node's drop reasons, counted, and the
remaining sets placed, without a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import pytest

from bag_helpers import TS, read_bag, stamp_of, transform_message, write_bag
from placement_helpers import share_on_object
from pix2voxpp_ros.cli import bag as bag_cli
from pix2voxpp_ros.core.calibration import PoseUnavailableError
from pix2voxpp_ros.core.clouds import cloud_points
from pix2voxpp_ros.core.geometry import pose_matrix
from pix2voxpp_ros.core.metrics import cloud_to_voxels
from pix2voxpp_ros.core.placement import ObjectPose
from pix2voxpp_ros.core.transforms import (MAX_DEPTH, MAX_TF_MESSAGE_BYTES, ResolvedPoses,
                                           TransformTree)
from pix2voxpp_ros.core.views import NS_PER_S, Frame
from pix2voxpp_ros.core.voxels import read_ply
from pix2voxpp_ros.ros.rig_bag import (TF_TOPIC, TRUE_PLACEMENT_TOPIC, TRUTH_TOPIC,
                                       image_topic, info_topic, mask_topic, record_rig_bag)

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'
T0 = 1_700_000_000 * NS_PER_S
TICK_NS = NS_PER_S // 2  # the rig's 2 Hz
TICKS = 6  # three per object
MASKS = ', '.join(f"'{mask_topic(i)}'" for i in range(3))
CALIBRATED = ['-p', 'placement:=calibrated', '-p', 'fixed_frame:=world',
              '-p', f'mask_topics:=[{MASKS}]']
TF = 'tf2_msgs/msg/TFMessage'


class Recording(NamedTuple):
    bag: Path
    truths: dict  # stamp ns -> (32, 32, 32) bool, ROS axes
    poses: dict  # stamp ns -> ObjectPose (the true placement)


@pytest.fixture(scope='module')
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    bag = tmp_path_factory.mktemp('placed') / 'tabletop'
    record_rig_bag(bag, objects=2, start_ns=T0, overrides={
        'scene': 'tabletop', 'object_switch_s': 1.5, 'categories': ['car', 'mug']})
    recorded = read_bag(bag)
    truths = {stamp_of(m): cloud_to_voxels(cloud_points(m), 0.5) for _, m in recorded[TRUTH_TOPIC]}
    poses = {}
    for _, marker in recorded[TRUE_PLACEMENT_TOPIC]:
        p, q = marker.pose.position, marker.pose.orientation
        poses[stamp_of(marker)] = ObjectPose((p.x, p.y, p.z), 2 * math.atan2(q.z, q.w),
                                             marker.scale.x)
    assert sorted(poses) == sorted(truths) == [T0 + k * TICK_NS for k in range(TICKS)]
    yield Recording(bag, truths, poses)


def run_tool(bag: Path, out: Path, *extra: str, capsys: pytest.CaptureFixture
             ) -> tuple[int, str]:
    code = bag_cli.main([str(bag), '--params', str(REPO / 'config' / 'demo_node.yaml'),
                         '--weights', str(WEIGHTS), '--out', str(out), '--quiet',
                         '--device', 'cpu', '-p', 'backend:=torch', *CALIBRATED, *extra])
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    return code, err


def on_the_object(points: np.ndarray, truth: np.ndarray, pose: ObjectPose) -> float:
    """Share of the points (fixed frame, metres) within a voxel of the true grid (ROS axes)."""
    return share_on_object(points, truth, pose, ros_axes=True)


def test_every_set_is_placed_on_the_true_object(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'out'
    code, err = run_tool(recording.bag, out, '--ply-dir', str(tmp_path / 'ply'), capsys=capsys)
    assert code == 0, err
    written = read_bag(out)
    stamps = [stamp_of(m) for _, m in written['/pix2voxpp/occupancy']]
    assert stamps == sorted(recording.poses)  # every tick placed, none dropped
    plys = sorted((tmp_path / 'ply').glob('*.ply'))
    assert len(plys) == len(stamps)
    for (_, cloud), (_, pose_msg), (_, tf), (_, grid), ply in zip(
            written['/pix2voxpp/occupancy'], written['/pix2voxpp/object_pose'],
            written['/tf'], written['/pix2voxpp/grid'], plys):
        stamp = stamp_of(cloud)
        truth = recording.poses[stamp]
        assert cloud.header.frame_id == pose_msg.header.frame_id == grid.header.frame_id == \
            'world'
        assert stamp_of(pose_msg) == stamp_of(grid) == stamp
        points = cloud_points(cloud)
        assert len(points) > 50
        share = on_the_object(points, recording.truths[stamp], truth)
        assert share > 0.8, f'{share:.2f} of the voxels on the true object at {stamp}'
        position = np.array([getattr(pose_msg.pose.position, a) for a in 'xyz'])
        assert np.linalg.norm(position - truth.position) < 0.05 * truth.size_m
        # The object's frame on /tf: fixed_frame -> frame_id at the pose.
        (transform,) = tf.transforms
        assert (transform.header.frame_id, transform.child_frame_id) == ('world', 'object')
        assert stamp_of(transform) == stamp
        assert transform.transform.translation.x == pose_msg.pose.position.x
        # The PLY file holds the published cloud: metres in fixed_frame.
        assert ply.name.endswith(f'_{stamp}.ply')
        vertices = read_ply(ply)
        np.testing.assert_array_equal(np.stack([vertices[a] for a in 'xyz'], axis=1), points)
    summary = json.loads((out / 'summary.json').read_text())
    placement = summary['placement']
    assert placement['camera_poses'] == 'recorded TF'
    assert placement['tf'] == {'messages': TICKS, 'transforms': 3 * TICKS}  # each tick's
    sizes = [row['size_m'] / recording.poses[row['stamp_ns']].size_m - 1
             for row in placement['placed']]
    assert len(sizes) == TICKS and max(abs(s) for s in sizes) < 0.1, sizes
    assert summary['frames']['dropped'] == {}


def _hostile_tf() -> list[tuple[str, int, Any]]:
    """Return /tf messages a robot never sends: over 1 MiB, non-finite, a long name, a loop."""
    identity = (0.0, 0.0, 0.0, 1.0)
    huge = TS.types[TF](transforms=[transform_message(
        'world', 'j' * MAX_TF_MESSAGE_BYTES, (0.0, 0.0, 0.0), identity, T0)])
    raw = bytes(TS.serialize_cdr(huge, TF))
    assert len(raw) > MAX_TF_MESSAGE_BYTES
    bad = TS.types[TF](transforms=[
        transform_message('world', 'nan', (float('nan'), 0.0, 0.0), identity, T0),
        transform_message('world', 'zero_q', (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0), T0),
        transform_message('world', 'x' * 10_000, (0.0, 0.0, 0.0), identity, T0),
        # world under a camera whose parent is world: a loop, refused
        transform_message('rig/camera_0_optical', 'world', (0.0, 0.0, 0.0), identity, T0)])
    return [('/tf', T0 + 1, raw), ('/tf', T0 + 2, bad)]  # after the first tick's /tf


def test_missing_calibration_is_counted_and_the_rest_placed(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Each frame without calibration gets the node's drop reason; hostile TF is refused."""
    types = {image_topic(i): 'sensor_msgs/msg/Image' for i in range(3)}
    types.update({info_topic(i): 'sensor_msgs/msg/CameraInfo' for i in range(3)})
    types.update({mask_topic(i): 'sensor_msgs/msg/Image' for i in range(3)})
    types[TF_TOPIC] = TF
    messages = _hostile_tf()
    for topic, stamp, msg in _recorded(recording.bag, set(types)):
        tick = (stamp - T0) // TICK_NS
        if topic == info_topic(0) and tick == 0:
            continue  # camera 0's first frame comes before any of its camera_info
        if topic == info_topic(1) and tick == 1:
            msg.k = np.zeros(9)  # an uncalibrated camera
        elif topic in (image_topic(2), image_topic(1)) and (tick == 4 or (
                tick == 3 and topic == image_topic(2))):
            msg.header.frame_id = 'rig/nowhere'  # a frame TF does not know
        messages.append((topic, stamp, msg))
    messages.sort(key=lambda m: m[1])  # stable: the recorded order within a stamp
    bag = write_bag(tmp_path / 'broken', messages, types=types)
    out = tmp_path / 'out'
    code, err = run_tool(bag, out, capsys=capsys)
    assert code == 0, err
    summary = json.loads((out / 'summary.json').read_text())
    # ticks 0, 1: a camera without calibration, no complete set (min_views 3); tick 3: placed
    # from two views; tick 4: two frames without a pose, fewer than two views: not placed.
    assert summary['frames']['dropped'] == {'no_camera_info': 1, 'bad_camera_info': 1,
                                            'no_transform': 3}
    assert summary['sets']['dropped'] == {'placement_failed': 1}
    placed = [row['stamp_ns'] for row in summary['placement']['placed']]
    assert placed == [T0 + k * TICK_NS for k in (2, 3, 5)]
    # every tick's cameras (6 x 3) and the four hostile transforms that are not too large
    assert summary['placement']['tf'] == {'messages': TICKS + 2, 'transforms': 3 * TICKS + 4,
                                          'too_large': 1, 'refused': 4}
    for words in ('no camera_info received', 'not calibrated', 'at most 1048576',
                  'refusing a transform', 'placement of the 3 view(s)'):
        assert words in err, words
    written = read_bag(out)
    for _, cloud in written['/pix2voxpp/occupancy']:
        stamp = stamp_of(cloud)
        assert on_the_object(cloud_points(cloud), recording.truths[stamp],
                             recording.poses[stamp]) > 0.8


def _recorded(bag: Path, topics: set, *, until_ns: int = 2 ** 63
              ) -> Iterator[tuple[str, int, Any]]:
    for topic, stamp, msg in ((t, s, m) for t, messages in read_bag(bag).items()
                              for s, m in messages if t in topics and s < until_ns):
        yield topic, stamp, msg


def test_without_tf_camera_poses_place_and_without_camera_info_the_tool_says_so(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    types = {image_topic(i): 'sensor_msgs/msg/Image' for i in range(3)}
    types.update({mask_topic(i): 'sensor_msgs/msg/Image' for i in range(3)})
    with_infos = dict(types, **{info_topic(i): 'sensor_msgs/msg/CameraInfo' for i in range(3)})
    first = T0 + 3 * TICK_NS  # the first object only: its cameras stand still
    no_tf = write_bag(tmp_path / 'no_tf', sorted(_recorded(recording.bag, set(with_infos),
                                                           until_ns=first),
                                                 key=lambda m: m[1]), types=with_infos)
    code, err = run_tool(no_tf, tmp_path / 'out', capsys=capsys)
    assert code == 1 and 'no /tf or /tf_static; record them, or give camera_poses' in err
    assert not (tmp_path / 'out').exists()
    # camera_poses, as the node takes them without TF: the first tick's poses on /tf.
    (_, first_tf), *_ = read_bag(recording.bag)[TF_TOPIC]
    numbers = []
    for t in sorted(first_tf.transforms, key=lambda t: t.child_frame_id):
        v, q = t.transform.translation, t.transform.rotation
        numbers += [v.x, v.y, v.z, q.x, q.y, q.z, q.w]
    code, err = run_tool(no_tf, tmp_path / 'fixed', '-p', f'camera_poses:={numbers}',
                         capsys=capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / 'fixed' / 'summary.json').read_text())
    assert summary['placement']['camera_poses'] == 'camera_poses'
    clouds = read_bag(tmp_path / 'fixed')['/pix2voxpp/occupancy']
    assert [stamp_of(c) for _, c in clouds] == [T0 + k * TICK_NS for k in range(3)]
    for _, cloud in clouds:
        stamp = stamp_of(cloud)
        assert on_the_object(cloud_points(cloud), recording.truths[stamp],
                             recording.poses[stamp]) > 0.8
    no_info = write_bag(tmp_path / 'no_info', sorted(_recorded(recording.bag, set(types)),
                                                     key=lambda m: m[1]), types=types)
    code, err = run_tool(no_info, tmp_path / 'out', capsys=capsys)
    assert code == 1 and 'camera_info topic (placement calibrated) /rig/camera_0/camera_info ' \
        'is not in the bag' in err


def test_the_transform_tree_and_resolved_poses_are_bounded() -> None:
    tree = TransformTree(max_history=3, max_transforms=4)
    identity = np.eye(4)
    assert all(tree.add('world', 'a', k, identity) for k in range(5))  # history: oldest go
    assert len(tree) == 3
    assert tree.add('world', 'b', 0, identity)
    assert not tree.add('world', 'b', 1, identity)  # four kept in all: a new one is refused
    assert tree.add('world', 'b', 0, pose_matrix((1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)))
    assert not tree.add('world', 'y' * 300, 0, identity)
    assert tree.refused == 2 and len(tree) == 4
    chain = TransformTree()  # a chain deeper than MAX_DEPTH: the frame below it is refused
    assert all(chain.add(f'f{k}', f'f{k + 1}', 0, identity, static=True)
               for k in range(MAX_DEPTH))
    assert not chain.add(f'f{MAX_DEPTH}', 'deeper', 0, identity, static=True)
    np.testing.assert_array_equal(chain.lookup('f0', f'f{MAX_DEPTH}', 0), identity)
    frame = Frame(camera=0, stamp_ns=3, image=np.zeros((2, 2), np.uint8), frame_id='a')
    lost = Frame(camera=1, stamp_ns=3, image=np.zeros((2, 2), np.uint8), frame_id='c')

    class Tree:
        def frame_pose(self, f: Frame, *, timeout_s: float) -> np.ndarray:
            return tree.lookup('world', f.frame_id, f.stamp_ns)
    resolved = ResolvedPoses(Tree(), [frame, lost])
    tree.add('world', 'a', 3, 2 * identity)  # later transforms do not change what was found
    np.testing.assert_array_equal(resolved.frame_pose(frame), identity)
    with pytest.raises(PoseUnavailableError, match='not connected'):
        resolved.frame_pose(lost)


def test_a_set_waits_tf_timeout_s_of_recorded_time_for_its_transforms(
        recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """TF recorded after the images: 50 ms late is in time (tf_timeout_s 0.1), 300 ms is not."""
    types = {image_topic(i): 'sensor_msgs/msg/Image' for i in range(3)}
    types.update({info_topic(i): 'sensor_msgs/msg/CameraInfo' for i in range(3)})
    types.update({mask_topic(i): 'sensor_msgs/msg/Image' for i in range(3)})
    first = T0 + 3 * TICK_NS  # the first object's three ticks
    messages = list(_recorded(recording.bag, set(types), until_ns=first))
    # Each tick's recorded camera poses (stamped like its frames), written later than them.
    for (stamp, tf), late_ms in zip(read_bag(recording.bag)[TF_TOPIC][:3], (50, 300, 50)):
        assert all(stamp_of(t) == stamp for t in tf.transforms)
        messages.append((TF_TOPIC, stamp + late_ms * 1_000_000, tf))
    messages.sort(key=lambda m: m[1])
    bag = write_bag(tmp_path / 'late_tf', messages, types=dict(types, **{TF_TOPIC: TF}))
    code, err = run_tool(bag, tmp_path / 'out', '-p', 'tf_timeout_s:=0.1', capsys=capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert [row['stamp_ns'] for row in summary['placement']['placed']] == [T0, T0 + 2 * TICK_NS]
    assert summary['frames']['dropped'] == {'no_transform': 3}
    assert summary['sets']['dropped'] == {'placement_failed': 1}
    for _, cloud in read_bag(tmp_path / 'out')['/pix2voxpp/occupancy']:
        stamp = stamp_of(cloud)
        assert on_the_object(cloud_points(cloud), recording.truths[stamp],
                             recording.poses[stamp]) > 0.8
