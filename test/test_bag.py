"""``pix2voxpp-bag`` on real rosbag2 files written here with ``rosbags`` (mcap and sqlite3).

Input bags are written with rosbags' own serializer and Humble's message definitions, as a robot's
recorder would, independently of the rclpy code that writes the outputs; outputs are read back
with rosbags too. The tool runs in this process (``main(argv)``), so a traceback would fail the
test; the clouds are compared with what the core reconstructs from the same frames. The last
section does the same with the node's robot inputs: object masks and compressed images.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional

import cv2
import numpy as np
import pytest
import torch
import yaml

from bag_helpers import IMAGE, TS, image_message, read_bag, stamp_of, write_bag
from ros_helpers import make_frames, write_checkpoint, write_params
from pix2voxpp_ros.cli import bag as bag_cli
from pix2voxpp_ros.cli import bag_input
from pix2voxpp_ros.core.clouds import cloud_points
from pix2voxpp_ros.core.geometry import pose_matrix
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.metrics import cloud_to_voxels, iou
from pix2voxpp_ros.core.params_file import ParamsFileError, read_params_file
from pix2voxpp_ros.core.preprocess import decode_image
from pix2voxpp_ros.core.rig_config import rig_config_from_values, rig_defaults
from pix2voxpp_ros.core.synthetic.world import camera_to_fixed
from pix2voxpp_ros.core.views import NS_PER_S
from pix2voxpp_ros.core.voxels import grid_to_ros_axes, read_ply
from pix2voxpp_ros.ros import demo
from pix2voxpp_ros.ros.bag_io import BagWriter
from pix2voxpp_ros.ros.conversions import reconstruction_messages
from pix2voxpp_ros.ros.rig_bag import TRUTH_TOPIC, image_topic, mask_topic, record_rig_bag
from pix2voxpp_ros.ros.sim_camera_rig import render_scene, scene_view

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/cam0/image_raw', '/cam1/image_raw', '/cam2/image_raw']
T0 = 1_700_000_000 * NS_PER_S
THRESHOLD = 0.5
SIZE_M = 0.5


class Setup(NamedTuple):
    weights: Path
    params: Path
    tmp: Path


@pytest.fixture(scope='module')
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp('bag')
    weights = write_checkpoint(tmp / 'f.pth', threshold=THRESHOLD)
    params = write_params(tmp / 'node.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'sync_slop_s': 0.1,
        'max_frame_age_s': 2.0, 'max_rate_hz': 0.0, 'frame_id': 'object',
        'object_size_m': SIZE_M, 'threshold': -1.0, 'device': 'cpu', 'num_threads': 1,
        'backend': 'torch', 'qos_reliability': 'reliable'})  # exact comparisons: PyTorch
    threads = torch.get_num_threads()
    yield Setup(weights, params, tmp)
    torch.set_num_threads(threads)  # the tool set one thread, as the parameters say


def run_tool(setup: Setup, bag: Path, out: Path, *extra: str,
             capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = bag_cli.main([str(bag), '--params', str(setup.params), '--out', str(out), '--quiet',
                         *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# Two complete sets of three cameras (0.5 s apart), with the colour encodings the node takes.
SET_FRAMES = [make_frames(3, seed=10), make_frames(3, seed=20)]
SET_FRAMES[1][2] = make_frames(1, seed=21, channels=1)[0]
ENCODINGS = [['rgb8', 'bgr8', 'rgb8'], ['bgr8', 'rgb8', 'mono8']]
SET_STAMPS = [T0 + 100_000_000, T0 + 600_000_000]


def recorded_sets() -> list[tuple[str, int, Any]]:
    """Return the two sets in arrival order (received 2 ms after capture, camera by camera)."""
    messages = []
    for frames, encodings, stamp in zip(SET_FRAMES, ENCODINGS, SET_STAMPS):
        for camera, (frame, encoding) in enumerate(zip(frames, encodings)):
            messages.append((CAMERAS[camera], stamp + 2_000_000 + camera,
                             image_message(frame, stamp, encoding)))
    return messages


def expected_messages(setup: Setup, index: int) -> Any:
    """Return what the node publishes for set ``index``: the core's result, one thread."""
    from std_msgs.msg import Header

    from pix2voxpp_ros.ros.conversions import ns_to_stamp
    grid = Reconstructor(setup.weights, device='cpu', backend='torch', num_threads=1,
                         warmup_views=0).reconstruct(
        SET_FRAMES[index], encodings=ENCODINGS[index])
    header = Header(stamp=ns_to_stamp(SET_STAMPS[index]), frame_id='object')
    return grid, reconstruction_messages(grid, threshold=THRESHOLD, object_size_m=SIZE_M,
                                         header=header)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_every_set_of_a_recording_becomes_the_node_outputs(
        setup: Setup, storage: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    messages = recorded_sets()
    # single bad frames between the sets: counted and skipped, never fatal
    bad = image_message(make_frames(1, seed=5)[0], SET_STAMPS[0] + 200_000_000, 'rgb8')
    messages.insert(3, (CAMERAS[0], SET_STAMPS[0] + 200_000_000, TS.types[IMAGE](
        header=bad.header, height=48, width=64, encoding='16UC1', is_bigendian=0, step=128,
        data=np.zeros(48 * 128, np.uint8))))  # unsupported encoding
    messages.insert(4, (CAMERAS[1], SET_STAMPS[0] + 210_000_000, TS.types[IMAGE](
        header=bad.header, height=48, width=64, encoding='rgb8', is_bigendian=0, step=192,
        data=np.zeros(100, np.uint8))))  # data shorter than step x height
    messages.insert(5, (CAMERAS[2], SET_STAMPS[0] + 220_000_000, b'\x00\x01\x00\x00\x07'))
    bag = write_bag(tmp_path / f'in_{storage}', messages, storage=storage)
    out = tmp_path / 'out'
    code, stdout, stderr = run_tool(setup, bag, out, '--batch', '4', '--npy-dir',
                                    str(tmp_path / 'npy'), '--ply-dir', str(tmp_path / 'ply'),
                                    capsys=capsys)
    assert code == 0, stderr
    assert 'Traceback' not in stderr
    assert '16UC1' in stderr and 'malformed' in stderr and 'undecodable' in stderr

    written = read_bag(out)
    assert sorted(written) == ['/pix2voxpp/grid', '/pix2voxpp/markers', '/pix2voxpp/occupancy']
    for index, stamp in enumerate(SET_STAMPS):
        grid, expected = expected_messages(setup, index)
        log_ns, cloud = written['/pix2voxpp/occupancy'][index]
        assert log_ns == stamp == stamp_of(cloud) and cloud.header.frame_id == 'object'
        assert cloud.width == expected.cloud.width > 0
        assert bytes(cloud.data) == bytes(expected.cloud.data)  # value for value
        assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == \
            [(f.name, f.offset, f.datatype) for f in expected.cloud.fields]
        _, dense = written['/pix2voxpp/grid'][index]
        assert stamp_of(dense) == stamp and bytes(dense.data) == bytes(expected.grid.data)
        _, markers = written['/pix2voxpp/markers'][index]
        marker = markers.markers[0]
        assert stamp_of(marker) == stamp and len(marker.points) == cloud.width
        assert [(p.x, p.y, p.z) for p in marker.points] == \
            [(p.x, p.y, p.z) for p in expected.markers.markers[0].points]
        np.testing.assert_array_equal(
            np.load(tmp_path / 'npy' / f'{index:05d}_{stamp}.npy'), grid_to_ros_axes(grid))
        assert len(read_ply(tmp_path / 'ply' / f'{index:05d}_{stamp}.ply')['x']) == cloud.width

    summary = json.loads((out / 'summary.json').read_text())
    assert summary['sets'] == {'found': 2, 'reconstructed': 2, 'dropped': {}, 'views': {'3': 2}}
    assert summary['frames']['dropped'] == {'encoding': 1, 'bad_image': 1, 'undecodable': 1}
    assert summary['forward_passes'] == 1  # both sets in one pass
    assert summary['sets_per_s'] > 0 and summary['model_time_s'] > 0
    assert '2 view set(s) found, 2 reconstructed in 1 forward pass(es)' in stdout
    assert not [p for p in tmp_path.iterdir() if '.partial' in p.name]
    metadata = yaml.safe_load((out / 'metadata.yaml').read_text())
    assert metadata['rosbag2_bagfile_information']['version'] == 8  # Jazzy's, Kilted reads it


def test_a_128_checkpoint_gives_the_node_outputs_at_128(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The same recording through 128³ weights: clouds at edge / 128, ~/grid pooled to 32³."""
    from pix2voxpp_ros.core.checkpoint import WeightsMetadata, save_checkpoint
    from pix2voxpp_ros.core.model import ModelConfig, build_model
    torch.manual_seed(6)
    weights = tmp_path / 'f128.pth'
    save_checkpoint(weights, build_model(ModelConfig(resolution=128)).eval(),
                    metadata=WeightsMetadata(threshold=THRESHOLD))
    fine = Setup(weights, write_params(tmp_path / 'node128.yaml', {
        **yaml.safe_load(setup.params.read_text())['pix2voxpp']['ros__parameters'],
        'weights': str(weights)}), tmp_path)
    bag = write_bag(tmp_path / 'in', recorded_sets())
    code, _, stderr = run_tool(fine, bag, tmp_path / 'out', '--batch', '4', capsys=capsys)
    assert code == 0, stderr
    written = read_bag(tmp_path / 'out')
    for index, stamp in enumerate(SET_STAMPS):
        grid, expected = expected_messages(fine, index)
        assert grid.shape == (128, 128, 128)
        _, cloud = written['/pix2voxpp/occupancy'][index]
        assert cloud.width == expected.cloud.width > 0
        assert bytes(cloud.data) == bytes(expected.cloud.data)
        _, dense = written['/pix2voxpp/grid'][index]
        assert bytes(dense.data) == bytes(expected.grid.data)
        assert dense.width * dense.height == 32 ** 3  # pooled: what a planner reads
        _, markers = written['/pix2voxpp/markers'][index]
        assert markers.markers[0].scale.x == pytest.approx(SIZE_M / 128)
        assert len(markers.markers[0].points) == len(expected.markers.markers[0].points)


def test_rate_and_ages_follow_the_recorded_stamps(setup: Setup, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    # 5 ticks 0.3 s apart, at most 2 sets per second of recorded time, as the node's one-slot
    # queue does it: tick 0 runs at once; 0.3 waits and runs at 0.5; 0.6 waits and is replaced by
    # 0.9, which runs at 1.0; 1.2 waits and runs when the recording ends. This holds however fast
    # this machine reads. A late frame of camera 0 (3.2 s older than the newest stamp) is stale.
    frames = make_frames(3, seed=1)
    messages = []
    for k in range(5):
        stamp = T0 + k * 300_000_000
        messages += [(CAMERAS[c], stamp, image_message(frames[c], stamp, 'rgb8'))
                     for c in range(3)]
    late = T0 - 2_000_000_000
    messages.append((CAMERAS[0], T0 + 1_300_000_000, image_message(frames[0], late, 'rgb8')))
    bag = write_bag(tmp_path / 'in', messages)
    out = tmp_path / 'out'
    code, _, stderr = run_tool(setup, bag, out, '-p', 'max_rate_hz:=2.0', capsys=capsys)
    assert code == 0, stderr
    stamps = [stamp_of(m) for _, m in read_bag(out)['/pix2voxpp/occupancy']]
    assert stamps == [T0, T0 + 300_000_000, T0 + 900_000_000, T0 + 1_200_000_000]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['sets']['found'] == 5 and summary['sets']['dropped'] == {'rate': 1}
    assert summary['frames']['dropped'] == {'stale': 1}


def test_one_moving_camera_makes_sets_of_key_frames(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # One camera at 5 Hz; key frames at least 0.5 s apart (0, 0.6, 1.2, 1.8 s), two per set.
    frames = make_frames(10, seed=3)
    stamps = [T0 + k * 200_000_000 for k in range(10)]
    bag = write_bag(tmp_path / 'in', [(CAMERAS[0], s, image_message(f, s, 'rgb8'))
                                      for f, s in zip(frames, stamps)])
    code, _, stderr = run_tool(setup, bag, tmp_path / 'out', '--camera-topics', CAMERAS[0],
                               '-p', 'views_per_reconstruction:=2', capsys=capsys)
    assert code == 0, stderr
    written = [stamp_of(m) for _, m in read_bag(tmp_path / 'out')['/pix2voxpp/occupancy']]
    assert written == [stamps[3], stamps[6], stamps[9]]
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['sets']['views'] == {'2': 3} and summary['forward_passes'] == 1


def test_receive_clock_judges_ages_by_the_recorded_arrival(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # One set whose camera 2 frame was logged 3 s after its capture: older than max_frame_age_s
    # (2 s) on the receive clock, fresh on the header clock.
    messages = recorded_sets()[:3]
    topic, _, msg = messages[2]
    messages[2] = (topic, SET_STAMPS[0] + 3 * NS_PER_S, msg)
    bag = write_bag(tmp_path / 'in', messages)
    code, _, stderr = run_tool(setup, bag, tmp_path / 'header', capsys=capsys)
    assert code == 0, stderr
    assert len(read_bag(tmp_path / 'header')['/pix2voxpp/occupancy']) == 1
    code, _, stderr = run_tool(setup, bag, tmp_path / 'receive', '--clock', 'receive',
                               capsys=capsys)
    assert code == 0, stderr
    summary = json.loads((tmp_path / 'receive' / 'summary.json').read_text())
    assert summary['frames']['dropped'] == {'stale': 1} and summary['sets']['found'] == 0
    assert summary['messages_written']['/pix2voxpp/occupancy'] == 0


def bad_case(name: str, setup: Setup, tmp: Path) -> tuple[Path, list[str], str]:
    """Build one broken input; return (bag, extra arguments, text the message must hold)."""
    good = recorded_sets()[:3]
    if name == 'missing':
        return tmp / 'nothing_here', [], 'no such bag'
    if name == 'not_a_bag':
        path = tmp / 'noise.mcap'
        path.write_bytes(os.urandom(4096))
        return path, [], 'not a readable rosbag2 bag'
    if name == 'broken_metadata':
        bag = write_bag(tmp / 'meta', good)
        (bag / 'metadata.yaml').write_text('rosbag2_bagfile_information: [unclosed\n')
        return bag, [], 'not a readable rosbag2 bag'
    if name in ('truncated_mcap', 'truncated_sqlite3'):
        storage = name.split('_')[1]
        bag = write_bag(tmp / name, good, storage=storage)
        data = next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))
        os.truncate(data, data.stat().st_size // 2)
        return bag, [], str(bag)
    if name == 'damaged_chunk':  # opens fine, fails while reading: after the output was opened
        bag = write_bag(tmp / name, good)
        data = bag / f'{name}.mcap'
        with open(data, 'r+b') as handle:  # the chunk of messages; the index at the end stays
            handle.seek(100)
            handle.write(b'\xff' * (data.stat().st_size // 2))
        return bag, [], 'reading failed'
    if name == 'topic_not_in_bag':
        bag = write_bag(tmp / name, good[:2] + [('/other/image', T0, good[2][2])])
        return bag, [], '/cam2/image_raw is not in the bag; its sensor_msgs/msg/Image topics: ' \
                        '/cam0/image_raw, /cam1/image_raw, /other/image'
    if name == 'wrong_type':
        text = TS.types['std_msgs/msg/String'](data='hello')
        bag = write_bag(tmp / name, good[:2] + [(CAMERAS[2], T0, text)],
                        types={CAMERAS[2]: 'std_msgs/msg/String'})
        return bag, [], '/cam2/image_raw has type std_msgs/msg/String, expected ' \
                        'sensor_msgs/msg/Image'
    if name == 'other_transport':  # recorded compressed, read raw
        jpeg = TS.types['sensor_msgs/msg/CompressedImage'](
            header=good[2][2].header, format='jpeg', data=np.zeros(4, np.uint8))
        bag = write_bag(tmp / name, good[:2] + [(f'{CAMERAS[2]}/compressed', T0, jpeg)],
                        types={f'{CAMERAS[2]}/compressed': 'sensor_msgs/msg/CompressedImage'})
        return bag, [], '(the bag has /cam2/image_raw/compressed: set image_transport compressed)'
    if name == 'mask_topic_not_in_bag':
        bag = write_bag(tmp / name, good)
        return bag, ['-p', "mask_topics:=['/m0', '/m1', '/m2']"], \
            'mask topic /m0 is not in the bag'
    if name == 'bad_parameters':
        bag = write_bag(tmp / name, good)
        return bag, ['-p', 'sync_slop_s:=-1', '--weights', str(tmp / 'none.pth')], \
            'invalid parameters'
    raise AssertionError(name)


@pytest.mark.parametrize('name', ['missing', 'not_a_bag', 'broken_metadata', 'truncated_mcap',
                                  'truncated_sqlite3', 'damaged_chunk', 'topic_not_in_bag',
                                  'wrong_type', 'other_transport', 'mask_topic_not_in_bag',
                                  'bad_parameters'])
def test_a_bad_bag_gives_one_clear_message_and_no_output(
        setup: Setup, name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag, extra, expected = bad_case(name, setup, tmp_path)
    out = tmp_path / 'results' / 'out'
    code, stdout, stderr = run_tool(setup, bag, out, *extra, capsys=capsys)
    assert code != 0
    errors = [line for line in stderr.splitlines() if 'pix2voxpp-bag: ' in line
              and 'frames on' not in line]
    assert len(errors) == 1 and expected in errors[0], stderr
    assert 'Traceback' not in stderr + stdout
    assert not out.exists()
    assert not (tmp_path / 'results').exists() or not list((tmp_path / 'results').iterdir())


def test_an_existing_output_is_kept_unless_overwrite(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = write_bag(tmp_path / 'in', recorded_sets())
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'keep').write_text('mine')
    code, _, stderr = run_tool(setup, bag, out, capsys=capsys)
    assert code != 0 and 'already exists' in stderr and (out / 'keep').read_text() == 'mine'
    code, _, stderr = run_tool(setup, bag, out, '--overwrite', capsys=capsys)
    assert code != 0 and 'not a bag written by pix2voxpp' in stderr  # not the tool's: kept
    assert (out / 'keep').read_text() == 'mine'
    (out / 'keep').unlink()
    out.rmdir()
    for _ in range(2):  # the tool's own output is replaced
        code, _, stderr = run_tool(setup, bag, out, '--overwrite', capsys=capsys)
        assert code == 0, stderr
    assert len(read_bag(out)['/pix2voxpp/occupancy']) == 2


def test_bag_writer_leaves_nothing_behind_when_interrupted(tmp_path: Path) -> None:
    from std_msgs.msg import String
    path = tmp_path / 'out'
    with pytest.raises(RuntimeError):
        with BagWriter(path) as bag:
            bag.add_topic('/t', 'std_msgs/msg/String')
            bag.write('/t', String(data='x'), T0)
            raise RuntimeError('stop')
    assert list(tmp_path.iterdir()) == []
    with BagWriter(path, storage='sqlite3') as bag:
        bag.add_topic('/t', 'std_msgs/msg/String')
        bag.write('/t', String(data='x'), T0)
    assert [m.data for _, m in read_bag(path)['/t']] == ['x']
    assert sorted(p.name for p in path.iterdir()) == ['metadata.yaml', 'out.db3']


def test_rig_recording_is_scored_like_the_demo(setup: Setup, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / 'rig'
    record_rig_bag(bag, params_file=demo.config_dir() / 'demo_rig.yaml', objects=2,
                   overrides={'width': 64, 'height': 48, 'object_switch_s': 1.0}, start_ns=T0)
    out = tmp_path / 'out'
    code, stdout, stderr = run_tool(
        setup, bag, out, '--camera-topics', *[image_topic(i) for i in range(3)],
        '-p', 'sync_slop_s:=0.05', '--truth-topic', TRUTH_TOPIC, capsys=capsys)
    assert code == 0, stderr
    # Score independently: the output clouds against the recorded truth of the same stamp.
    written, recorded = read_bag(out), read_bag(bag)
    truths = {stamp_of(m): cloud_to_voxels(cloud_points(m), SIZE_M)
              for _, m in recorded[TRUTH_TOPIC]}
    names = {int(m.data.rsplit(' ', 1)[1]): m.data.rsplit(' ', 1)[0]
             for _, m in recorded['/rig/sim_camera_rig/object']}
    first: dict[str, float] = {}
    for _, cloud in written['/pix2voxpp/occupancy']:
        prediction = cloud_to_voxels(cloud_points(cloud), SIZE_M)
        first.setdefault(names[stamp_of(cloud)], iou(prediction, truths[stamp_of(cloud)]))
    assert list(first) == ['table/0', 'chair/0'] and len(written['/pix2voxpp/occupancy']) == 4
    summary = json.loads((out / 'summary.json').read_text())['scores']
    assert [(o['name'], o['sets']) for o in summary['objects']] == [('table/0', 2), ('chair/0', 2)]
    for row in summary['objects']:
        assert row['iou'] == pytest.approx(first[row['name']], abs=1e-4)
        assert f'  {row["name"]:<14} IoU {first[row["name"]]:.3f}  (' in stdout
    assert f'mean IoU {np.mean(list(first.values())):.3f} over 2 objects' in stdout


def test_demo_records_the_rig_into_a_bag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / 'demo_bag'
    assert demo.main(['--record', str(bag), '--objects', '1', '--object-switch-s', '0.5',
                      '--storage', 'sqlite3']) == 0
    recorded = read_bag(bag)
    assert sorted(recorded) == sorted(
        [f'/rig/camera_{i}/{t}' for i in range(3) for t in ('image_raw', 'camera_info')]
        + [TRUTH_TOPIC, '/rig/sim_camera_rig/object'])
    _, image = recorded['/rig/camera_1/image_raw'][0]
    _, info = recorded['/rig/camera_1/camera_info'][0]
    assert (image.width, image.height, image.encoding) == (640, 480, 'rgb8')
    assert stamp_of(info) == stamp_of(image) == stamp_of(recorded[TRUTH_TOPIC][0][1])
    assert 'recorded 8 messages on 8 topics' in capsys.readouterr().out


def test_params_file_sections(tmp_path: Path) -> None:
    path = tmp_path / 'p.yaml'
    path.write_text('/**:\n  ros__parameters:\n    a: 1\n    b: 2\n'
                    'pix2voxpp:\n  ros__parameters:\n    b: 3\n    nested: {c: 4}\n'
                    'other:\n  ros__parameters:\n    a: 9\n')
    assert read_params_file(path, node_name='pix2voxpp') == {'a': 1, 'b': 3, 'nested.c': 4}
    assert read_params_file(path, node_name='other') == {'a': 9, 'b': 2}
    path.write_text('rig:\n  ros__parameters:\n    a: 1\n')
    with pytest.raises(ParamsFileError, match="no parameters for node 'pix2voxpp'.*'rig'"):
        read_params_file(path, node_name='pix2voxpp')
    path.write_text('a: [unclosed\n')
    with pytest.raises(ParamsFileError, match='not valid YAML'):
        read_params_file(path, node_name='pix2voxpp')


def test_the_node_parameters_file_of_the_package_is_accepted(setup: Setup) -> None:
    class Args:
        params = Path(demo.config_dir()) / 'pix2voxpp.yaml'
        param = ['trigger:=service']
        weights, threshold, device, num_threads = str(setup.weights), None, 'cpu', None
        camera_topics, node_name = None, 'pix2voxpp'
    config, notes = bag_input.load_config(Args())
    assert config.trigger == 'auto' and any('trigger: service' in n for n in notes)
    assert bag_input.resolve_topic(config.camera_topics[0], 'pix2voxpp') == '/camera/image_raw'
    assert bag_input.resolve_topic('~/x', 'n') == '/n/x'
    shutil.rmtree(setup.tmp / 'never', ignore_errors=True)
    Args.param = ['placement:=calibrated', 'mask_topics:=[/camera/mask]']
    config, _ = bag_input.load_config(Args())  # placed as the node places (test_bag_placement)
    assert config.calibrated
    assert bag_input.resolve_inputs(config, 'pix2voxpp').infos == ['/camera/camera_info']


# ------------------------------------------------------------------ the node's robot inputs
# Object masks (mask_topics) and compressed images (image_transport) in a recording: the rig
# records its tabletop scene, masks beside the images, raw or JPEG; broken inputs are hand-made.

TICK_NS = NS_PER_S // 2  # the rig's default 2 Hz
RIG_CAMERAS = [image_topic(i) for i in range(2)]
RIG_MASKS = [mask_topic(i) for i in range(2)]
COMPRESSED = 'sensor_msgs/msg/CompressedImage'


@pytest.fixture(scope='module')
def core(setup: Setup) -> Reconstructor:
    """Build the core's reconstructor of the tool's weights, as the tool runs it (one thread)."""
    return Reconstructor(setup.weights, device='cpu', backend='torch', num_threads=1,
                         warmup_views=0)


def run_with_masks(setup: Setup, bag: Path, out: Path, *extra: str,
                   capsys: pytest.CaptureFixture) -> tuple[dict, str]:
    """Run the tool on the rig's cameras and masks; return its summary and stderr."""
    masks = ', '.join(f"'{t}'" for t in RIG_MASKS)
    code = bag_cli.main([str(bag), '--params', str(setup.params), '--out', str(out), '--quiet',
                         '--npy-dir', str(out.parent / f'{out.name}_npy'),
                         '--camera-topics', *RIG_CAMERAS, '-p', f'mask_topics:=[{masks}]',
                         *extra])
    stderr = capsys.readouterr().err
    assert code == 0, stderr
    assert 'Traceback' not in stderr
    return json.loads((out / 'summary.json').read_text()), stderr


def grids_written(out: Path) -> dict[int, np.ndarray]:
    """Return the tool's probability grids (ROS axes) by set stamp, from --npy-dir."""
    return {int(p.stem.split('_')[1]): np.load(p)
            for p in sorted((out.parent / f'{out.name}_npy').glob('*.npy'))}


def expected_grid(r: Reconstructor, views: list[tuple[np.ndarray, str, Optional[np.ndarray]]]
                  ) -> np.ndarray:
    """Reconstruct ``(image, encoding, mask)`` views with the core, node defaults; ROS axes."""
    inputs = np.stack([r.preprocess(image, encoding=encoding, roi_margin=-1.0, mask=mask)
                       for image, encoding, mask in views])  # (V, 3, 224, 224)
    return grid_to_ros_axes(r.infer(inputs[None])[0])


def pixels(msg: Any) -> tuple[np.ndarray, str]:
    """Decode a recorded rosbags Image or CompressedImage independently of the tool."""
    if hasattr(msg, 'format'):
        return decode_image(np.asarray(msg.data))
    channels = 1 if msg.encoding == 'mono8' else 3
    image = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, channels)
    return (image[:, :, 0] if channels == 1 else image), msg.encoding


@pytest.mark.parametrize('compressed', [False, True], ids=['raw', 'jpeg'])
def test_a_tabletop_recording_with_masks_gives_the_core_grids(
        setup: Setup, core: Reconstructor, compressed: bool, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / 'rig'
    counts = record_rig_bag(bag, objects=1, start_ns=T0, overrides={
        'scene': 'tabletop', 'num_cameras': 2, 'object_switch_s': 1.0,
        'compressed': compressed})
    topics = [f'{t}/compressed' if compressed else t for t in RIG_CAMERAS]
    assert all(counts[t] == 2 for t in topics + RIG_MASKS)  # two ticks of each
    extra = ['-p', 'image_transport:=compressed'] if compressed else []
    summary, _ = run_with_masks(setup, bag, tmp_path / 'out', *extra, capsys=capsys)
    assert summary['frames']['dropped'] == {}
    assert summary['image_transport'] == ('compressed' if compressed else 'raw')
    assert summary['mask_topics'] == RIG_MASKS
    assert {t: summary['frames']['read'][t] for t in topics + RIG_MASKS} == \
        dict.fromkeys(topics + RIG_MASKS, 2)

    recorded = read_bag(bag)
    written = grids_written(tmp_path / 'out')
    assert sorted(written) == [T0, T0 + TICK_NS]
    for tick, stamp in enumerate(sorted(written)):
        views = []
        for camera, mask_name in zip(topics, RIG_MASKS):
            image_time, image_msg = recorded[camera][tick]
            _, mask_msg = recorded[mask_name][tick]
            assert image_time == stamp == stamp_of(image_msg) == stamp_of(mask_msg)
            image, encoding = pixels(image_msg)
            assert encoding == ('bgr8' if compressed else 'rgb8')  # what OpenCV decodes to
            views.append((image, encoding, pixels(mask_msg)[0]))
        expected = expected_grid(core, views)
        np.testing.assert_array_equal(written[stamp], expected)
        # The masks change the result: a tool that ignored them would fail here.
        unmasked = expected_grid(core, [(image, encoding, None) for image, encoding, _ in views])
        assert not np.array_equal(expected, unmasked)


def jpeg_message(image: np.ndarray, stamp_ns: int, *, data: Optional[bytes] = None) -> Any:
    """Build a rosbags CompressedImage as image_transport's plugin does (BGR JPEG)."""
    if data is None:
        ok, encoded = cv2.imencode('.jpg', image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        data = encoded.tobytes()
    header = TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=stamp_ns // NS_PER_S,
                                                      nanosec=stamp_ns % NS_PER_S),
        frame_id='camera')
    return TS.types[COMPRESSED](header=header, format='rgb8; jpeg compressed bgr8',
                                data=np.frombuffer(data, np.uint8))


def small_scene(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two smooth 64x48 frames (content JPEG keeps) and their object masks."""
    rng = np.random.default_rng(seed)
    frames, masks = [], []
    for camera in range(2):
        frames.append(cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                                       (7, 7), 2))
        mask = np.zeros((48, 64), np.uint8)
        cv2.ellipse(mask, (24 + 12 * camera, 22), (12, 15), 0, 0, 360, 255, -1)
        masks.append(mask)
    return frames, masks


def test_bad_masks_and_images_are_counted_and_the_rest_reconstructed(
        setup: Setup, core: Reconstructor, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    topics = [f'{t}/compressed' for t in RIG_CAMERAS]
    ticks = [small_scene(seed) for seed in range(7)]
    messages = []
    for k, (frames, masks) in enumerate(ticks):
        stamp = T0 + k * TICK_NS
        images: list[Any] = [jpeg_message(f, stamp) for f in frames]
        mask_msgs: list[Any] = [image_message(m, stamp, 'mono8') for m in masks]
        if k == 1:
            mask_msgs[0] = None  # never came: no_mask
            mask_msgs[1] = b'\x00\x01\x00\x00\x07'  # undecodable: its frame has none either
        elif k == 2:
            mask_msgs[1] = image_message(np.zeros((48, 64), np.uint8), stamp, 'mono8')
        elif k == 3:
            good = bytes(images[0].data)
            images[0] = jpeg_message(frames[0], stamp, data=good[:len(good) // 2])  # truncated
        elif k == 4:
            mask_msgs[0] = image_message(np.full((48, 64, 3), 255, np.uint8), stamp, 'rgb8')
            mask_msgs[1] = image_message(np.full((24, 32), 255, np.uint8), stamp, 'mono8')
        elif k == 6:
            mask_msgs[1] = None  # the recording ends before it comes: no_mask too
        for camera in range(2):
            messages.append((topics[camera], stamp + 2_000_000 + camera, images[camera]))
            if mask_msgs[camera] is not None:  # the segmenter's output comes a little later
                messages.append((RIG_MASKS[camera], stamp + 30_000_000 + camera,
                                 mask_msgs[camera]))
    messages.sort(key=lambda m: m[1])
    bag = write_bag(tmp_path / 'in', messages, types=dict.fromkeys(topics, COMPRESSED))
    summary, stderr = run_with_masks(setup, bag, tmp_path / 'out',
                                     '-p', 'image_transport:=compressed', capsys=capsys)
    assert summary['frames']['dropped'] == {'no_mask': 3, 'empty_mask': 1, 'bad_image': 1,
                                            'bad_mask': 2}
    assert summary['frames']['undecodable_masks'] == 1
    for text in ('no mask of their stamp', 'marks no pixel', 'truncated JPEG',
                 "mask encoding is 'rgb8'", 'mask is 32×24', 'undecodable masks'):
        assert text in stderr
    written = grids_written(tmp_path / 'out')
    assert sorted(written) == [T0, T0 + 5 * TICK_NS]
    assert summary['sets']['reconstructed'] == 2
    for k in (0, 5):
        views = []
        for frame, mask in zip(*ticks[k]):
            image, encoding = decode_image(np.asarray(jpeg_message(frame, T0).data))
            views.append((image, encoding, mask))
        np.testing.assert_array_equal(written[T0 + k * TICK_NS], expected_grid(core, views))


def test_mask_timeout_is_judged_on_the_recorded_clock(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The segmenter's masks were logged 0.8 s after their frames: too late for mask_timeout_s
    # 0.5 on the recorder's clock, in time for 1.0, however fast this machine reads.
    messages = []
    for k in range(3):
        stamp = T0 + k * TICK_NS
        frames, masks = small_scene(10 + k)
        for camera in range(2):
            messages.append((RIG_CAMERAS[camera], stamp + camera,
                             image_message(frames[camera], stamp, 'rgb8')))
            messages.append((RIG_MASKS[camera], stamp + 800_000_000 + camera,
                             image_message(masks[camera], stamp, 'mono8')))
    messages.sort(key=lambda m: m[1])
    bag = write_bag(tmp_path / 'in', messages)
    late, _ = run_with_masks(setup, bag, tmp_path / 'late', '--clock', 'receive', capsys=capsys)
    assert late['frames']['dropped'] == {'no_mask': 6} and late['sets']['reconstructed'] == 0
    waited, _ = run_with_masks(setup, bag, tmp_path / 'waited', '--clock', 'receive',
                               '-p', 'mask_timeout_s:=1.0', capsys=capsys)
    assert waited['frames']['dropped'] == {} and waited['sets']['reconstructed'] == 3


def test_the_wrist_recording_follows_the_moving_camera(tmp_path: Path) -> None:
    bag = tmp_path / 'wrist'
    overrides = {'scene': 'wrist', 'object_switch_s': 1.0}
    record_rig_bag(bag, objects=1, start_ns=T0, overrides=overrides)
    recorded = read_bag(bag)
    assert sorted(recorded) == sorted(['/rig/camera_0/image_raw', '/rig/camera_0/object_mask',
                                       '/rig/camera_0/camera_info',
                                       '/rig/sim_camera_rig/ground_truth',
                                       '/rig/sim_camera_rig/object', '/tf',
                                       '/rig/sim_camera_rig/true_placement'])
    config = rig_config_from_values({**rig_defaults(), **overrides})
    scene = render_scene(config, config.cameras(), 0)
    views = []
    for (_, image), (_, mask), (_, info), (_, tf) in zip(
            *(recorded[f'/rig/camera_0/{t}'] for t in ('image_raw', 'object_mask',
                                                       'camera_info')), recorded['/tf']):
        assert stamp_of(image) == stamp_of(mask) == stamp_of(info)
        # The live rig started a tick before its first one: where its camera is at this stamp.
        camera = config.wrist_camera((stamp_of(image) - T0 + TICK_NS) / NS_PER_S)
        view, true_mask = scene_view(scene.layout, camera)
        # The moving camera's optical frame in world at this stamp, on /tf (placement).
        (transform,) = tf.transforms
        assert stamp_of(transform) == stamp_of(image)
        assert (transform.header.frame_id, transform.child_frame_id) == \
            ('world', image.header.frame_id)
        v, q = transform.transform.translation, transform.transform.rotation
        np.testing.assert_allclose(pose_matrix((v.x, v.y, v.z), (q.x, q.y, q.z, q.w)),
                                   camera_to_fixed(camera, scene.pose), atol=1e-9)
        np.testing.assert_array_equal(pixels(image)[0], view)
        np.testing.assert_array_equal(pixels(mask)[0], true_mask)
        assert (info.width, info.height) == (camera.width, camera.height)
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), camera.intrinsics)
        views.append(view)
    assert len(views) == 2 and not np.array_equal(views[0], views[1])  # the camera moved


@pytest.mark.parametrize('masks', [True, False], ids=['masks', 'no_masks'])
def test_demo_records_the_scene_it_would_show(masks: bool, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    bag = tmp_path / 'demo_bag'
    assert demo.main(['--record', str(bag), '--objects', '1', '--object-switch-s', '0.5',
                      '--scene', 'tabletop', '--compressed']
                     + ([] if masks else ['--no-masks'])) == 0
    recorded = read_bag(bag)
    expected = {f'/rig/camera_{i}/{t}' for i in range(3)
                for t in ('image_raw/compressed', 'camera_info')
                + (('object_mask',) if masks else ())}
    assert set(recorded) == expected | {'/rig/sim_camera_rig/ground_truth',
                                        '/rig/sim_camera_rig/object',
                                        '/rig/sim_camera_rig/true_placement', '/tf'}
    assert [len(m.transforms) for _, m in recorded['/tf']] == [3]  # one tick, three cameras
    sizes = set()
    for i in range(3):
        _, image = recorded[f'/rig/camera_{i}/image_raw/compressed'][0]
        decoded, _ = pixels(image)
        sizes.add(decoded.shape[:2])
        if masks:
            _, mask = recorded[f'/rig/camera_{i}/object_mask'][0]
            assert pixels(mask)[0].shape == decoded.shape[:2] and stamp_of(mask) == \
                stamp_of(image)
            assert pixels(mask)[0].any()
    assert sizes == {(480, 640), (720, 1280)}  # the tabletop rig's cameras, not the plain ones
    out = capsys.readouterr().out
    assert '-p image_transport:=compressed' in out
    assert ('mask_topics:=' in out) == masks
    assert ('-p placement:=calibrated -p fixed_frame:=world' in out) == masks  # needs masks


def test_a_finer_reconstruction_is_scored_on_the_truths_grid() -> None:
    from pix2voxpp_ros.cli.bag_report import at_truth_resolution
    truth = np.zeros((32, 32, 32), dtype=bool)
    truth[4:9, 3:7, 10:20] = True
    fine = np.repeat(np.repeat(np.repeat(truth, 4, 0), 4, 1), 4, 2)  # (128, 128, 128)
    fine[16:20, 12:16, 40:44] = False  # one 4³ block emptied: its coarse voxel goes
    fine[0, 0, 0] = True  # one fine voxel alone: not a majority
    coarse = at_truth_resolution(fine, truth)
    expected = truth.copy()
    expected[4, 3, 10] = False
    assert coarse.shape == (32, 32, 32) and np.array_equal(coarse, expected)
    assert at_truth_resolution(truth, truth) is truth
    with pytest.raises(ValueError, match='48³ reconstruction'):
        at_truth_resolution(np.zeros((48,) * 3, dtype=bool), truth)
