"""``pix2voxpp-bag`` publishes, value for value, what the live node publishes for the same frames.

One recording, written with ``rosbags``, goes two ways: into ``pix2voxpp-bag`` (its own process,
the default batch, so all sets share one forward pass) and, read back frame by frame, into the
real ``pix2voxpp_node`` over Fast DDS. Both use the same parameters file (one PyTorch thread, so
reductions run in the same order); the clouds, grids and markers must be identical. With
``placement: calibrated`` a rig recording with camera infos, masks and the cameras on ``/tf``
goes the same two ways (the node gets the transforms over real TF): the placed clouds and grids
must be identical, the object poses equal to the last bits of tf2's arithmetic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from bag_helpers import TS, image_message, read_bag, stamp_of, write_bag
from ros_helpers import (REPO_ROOT, NodeProcess, Rig, isolate_ros_domain, make_frames, wait_for,
                         write_checkpoint, write_params)
from pix2voxpp_ros.core.views import NS_PER_S
from pix2voxpp_ros.ros.conversions import stamp_to_ns

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/p2v_bag/cam0/image', '/p2v_bag/cam1/image', '/p2v_bag/cam2/image']
NODE = '/pix2voxpp'
STARTUP_S = 120.0


def start_both(bag: Path, params: Path, out: Path) -> tuple[subprocess.Popen, NodeProcess]:
    """Start ``pix2voxpp-bag`` on ``bag`` and the node, side by side, with one parameters file."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), str(REPO_ROOT / 'training'), os.environ.get('PYTHONPATH', '')]))
    tool = subprocess.Popen([sys.executable, '-m', 'pix2voxpp_ros.cli.bag', str(bag), '--params',
                             str(params), '--out', str(out), '--quiet'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return tool, NodeProcess(params, log_path=out.parent / 'node.log')


def stop_both(tool: subprocess.Popen, node: NodeProcess, rig: Rig) -> Optional[int]:
    """Stop the tool if it still runs, the rig and the node; return the node's exit code."""
    if tool.poll() is None:
        tool.kill()
        tool.wait()
    rig.close()
    code = node.stop()
    print(node.log()[-3000:])
    return code


def test_output_bag_equals_what_the_live_node_publishes(tmp_path: Path) -> None:
    isolate_ros_domain()
    weights = write_checkpoint(tmp_path / 'f.pth', threshold=0.5)
    # Stamps a minute in the past: fresh for both clocks with max_frame_age_s of an hour.
    start = time.time_ns() - 60 * NS_PER_S
    params = write_params(tmp_path / 'node.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'sync_slop_s': 0.1,
        'max_frame_age_s': 3600.0, 'max_rate_hz': 0.0, 'frame_id': 'object',
        'object_size_m': 0.5, 'threshold': -1.0, 'device': 'cpu', 'num_threads': 1,
        'backend': 'torch', 'qos_reliability': 'reliable'})  # exact comparisons: PyTorch
    encodings = [['rgb8', 'bgr8', 'mono8'], ['bgr8', 'rgb8', 'rgba8'], ['rgb8'] * 3]
    messages = []
    for k, names in enumerate(encodings):
        stamp = start + k * 500_000_000
        channels = {'mono8': 1, 'rgba8': 4}
        for camera, encoding in enumerate(names):
            image = make_frames(1, seed=10 * k + camera, channels=channels.get(encoding, 3))[0]
            messages.append((CAMERAS[camera], stamp + 1000 * camera,
                             image_message(image, stamp, encoding)))
    bag = write_bag(tmp_path / 'recording', messages)

    # The offline tool and the node start side by side (both import torch and rclpy).
    out = tmp_path / 'offline'
    tool, node = start_both(bag, params, out)
    rig = Rig(CAMERAS, node=NODE, reliable=True)
    try:
        grids = rig.subscribe(PointCloud2, f'{NODE}/grid')
        markers = rig.subscribe(MarkerArray, f'{NODE}/markers')
        rig.wait_for_subscribers(timeout=STARTUP_S)
        wait_for(lambda: all(rig.node.get_publishers_info_by_topic(f'{NODE}/{t}')
                             for t in ('markers', 'grid')), timeout=STARTUP_S,
                 what='the node output publishers')
        time.sleep(0.5)  # the node discovers our marker subscription (and then builds markers)
        # Feed the node the recorded frames, read back from the bag in recorded order.
        with Reader(bag) as reader:
            recorded = [(c.topic, TS.deserialize_cdr(raw, c.msgtype))
                        for c, _, raw in reader.messages()]
        for index, (topic, msg) in enumerate(recorded):
            channels = {'mono8': 1, 'rgba8': 4}.get(msg.encoding, 3)
            image = np.asarray(msg.data).reshape(msg.height, msg.width, channels)
            rig.publish(CAMERAS.index(topic), image if channels > 1 else image[:, :, 0],
                        stamp_of(msg), encoding=msg.encoding)
            if index % 3 == 2:  # a set is complete: wait for it (a busy node would skip sets)
                rig.wait_for_cloud(stamp_of(msg), timeout=STARTUP_S)
        stamps = [start + k * 500_000_000 for k in range(len(encodings))]
        live_markers = {}
        for stamp in stamps:
            found = wait_for(lambda: [m for m in list(markers) if m.markers and
                                      stamp_to_ns(m.markers[0].header.stamp) == stamp],
                             timeout=30, what='the markers of a set')
            live_markers[stamp] = found[-1]
        live_grids = {stamp_to_ns(m.header.stamp): m for m in wait_for(
            lambda: len(grids) >= len(stamps) and list(grids), timeout=30, what='the grids')}
        live_clouds = {stamp: rig.wait_for_cloud(stamp) for stamp in stamps}
        output, _ = tool.communicate(timeout=STARTUP_S)
        assert tool.returncode == 0, output
    finally:
        code = stop_both(tool, node, rig)
    assert code == 0

    offline = read_bag(out)
    assert [stamp_of(m) for _, m in offline['/pix2voxpp/occupancy']] == stamps
    for (_, cloud), (_, grid), (_, marker_array) in zip(offline['/pix2voxpp/occupancy'],
                                                        offline['/pix2voxpp/grid'],
                                                        offline['/pix2voxpp/markers']):
        stamp = stamp_of(cloud)
        live = live_clouds[stamp]
        assert live.width == cloud.width > 0
        assert cloud.header.frame_id == live.header.frame_id == 'object'
        assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == \
            [(f.name, f.offset, f.datatype, f.count) for f in live.fields]
        assert (cloud.point_step, cloud.row_step, cloud.is_dense) == \
            (live.point_step, live.row_step, live.is_dense)
        assert bytes(cloud.data) == bytes(live.data)  # every coordinate and probability
        assert stamp_of(grid) == stamp and bytes(grid.data) == bytes(live_grids[stamp].data)
        ours, theirs = marker_array.markers[0], live_markers[stamp].markers[0]
        assert (ours.type, ours.scale.x) == (theirs.type, theirs.scale.x)
        assert [(p.x, p.y, p.z) for p in ours.points] == [(p.x, p.y, p.z) for p in theirs.points]
        assert [(c.r, c.g, c.b) for c in ours.colors] == [(c.r, c.g, c.b) for c in theirs.colors]


@pytest.mark.robot_tools('tf2_ros')
def test_placed_outputs_equal_the_live_node_placing_the_same_recording(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``placement: calibrated``: one rig recording, placed offline and by the node over TF.

    The rig records a tabletop car (camera infos, masks, the cameras on ``/tf`` at every tick);
    the tool places it from the recorded TF, the node from real TF (a broadcaster here sends the
    recorded transforms). Clouds, grids and object poses must be identical, in ``world``.
    """
    from geometry_msgs.msg import PoseStamped
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage
    from tf2_ros import TransformBroadcaster

    from pix2voxpp_ros.ros.rig_bag import (TF_TOPIC, image_topic, info_topic, mask_topic,
                                           record_rig_bag)
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE',  # 1280x720 frames
                       str(REPO_ROOT / 'config' / 'fastdds_large_images.xml'))
    isolate_ros_domain()
    start = time.time_ns() - 60 * NS_PER_S
    bag = tmp_path / 'recording'
    record_rig_bag(bag, objects=1, start_ns=start, overrides={
        'scene': 'tabletop', 'categories': ['car'], 'object_switch_s': 1.0})
    cameras, masks = [image_topic(i) for i in range(3)], [mask_topic(i) for i in range(3)]
    params = write_params(tmp_path / 'node.yaml', {
        'weights': str(REPO_ROOT / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'),
        'camera_topics': cameras, 'mask_topics': masks, 'placement': 'calibrated',
        'fixed_frame': 'world', 'frame_id': 'car', 'tf_timeout_s': 1.0, 'sync_slop_s': 0.05,
        'max_frame_age_s': 3600.0, 'max_rate_hz': 0.0, 'mask_timeout_s': 5.0,
        'device': 'cpu', 'num_threads': 1, 'backend': 'torch', 'qos_reliability': 'reliable'})
    out = tmp_path / 'offline'
    tool, node = start_both(bag, params, out)
    rig = Rig([], node=NODE, reliable=True)
    types = {info_topic(i): CameraInfo for i in range(3)}
    types.update({t: Image for t in cameras + masks})
    try:
        publishers = {t: rig.node.create_publisher(kind, t, 5) for t, kind in types.items()}
        grids = rig.subscribe(PointCloud2, f'{NODE}/grid')
        poses = rig.subscribe(PoseStamped, f'{NODE}/object_pose')
        broadcaster = TransformBroadcaster(rig.node)
        wait_for(lambda: all(p.get_subscription_count() for p in publishers.values()),
                 timeout=STARTUP_S, what='the node to subscribe to images, masks and infos')
        wait_for(lambda: rig.node.get_publishers_info_by_topic(f'{NODE}/object_pose'),
                 timeout=STARTUP_S, what='the node output publishers')
        with Reader(bag) as reader:
            recorded = [(c.topic, raw) for c, _, raw in reader.messages()
                        if c.topic in types or c.topic == TF_TOPIC]
        stamps = []
        for topic, raw in recorded:
            if topic == TF_TOPIC:  # each tick's camera poses, before its frames
                broadcaster.sendTransform(list(deserialize_message(raw, TFMessage).transforms))
                if not stamps:
                    for info_name in (t for t in types if t.endswith('camera_info')):
                        info = next(r for t, r in recorded if t == info_name)
                        publishers[info_name].publish(deserialize_message(info, CameraInfo))
                    time.sleep(1.0)  # camera infos and TF before the first frame, as recorded
                continue
            msg = deserialize_message(raw, types[topic])
            publishers[topic].publish(msg)
            if topic == masks[-1]:  # a tick is complete: wait for its cloud
                stamps.append(stamp_to_ns(msg.header.stamp))
                rig.wait_for_cloud(stamps[-1], timeout=STARTUP_S)
        live_clouds = {stamp: rig.wait_for_cloud(stamp) for stamp in stamps}
        live_grids = {stamp_to_ns(m.header.stamp): m for m in wait_for(
            lambda: len(grids) >= len(stamps) and list(grids), timeout=30, what='the grids')}
        live_poses = {stamp_to_ns(m.header.stamp): m for m in wait_for(
            lambda: len(poses) >= len(stamps) and list(poses), timeout=30, what='the poses')}
        output, _ = tool.communicate(timeout=STARTUP_S)
        assert tool.returncode == 0, output
    finally:
        code = stop_both(tool, node, rig)
    assert code == 0
    assert 'camera poses from TF' in node.log()
    offline = read_bag(out)
    assert len(stamps) == 2
    assert [stamp_of(m) for _, m in offline['/pix2voxpp/occupancy']] == stamps
    for (_, cloud), (_, grid), (_, pose) in zip(offline['/pix2voxpp/occupancy'],
                                                offline['/pix2voxpp/grid'],
                                                offline['/pix2voxpp/object_pose']):
        stamp = stamp_of(cloud)
        assert cloud.header.frame_id == live_clouds[stamp].header.frame_id == 'world'
        assert cloud.width == live_clouds[stamp].width > 0
        assert bytes(cloud.data) == bytes(live_clouds[stamp].data)  # every placed point
        assert bytes(grid.data) == bytes(live_grids[stamp].data)
        # The pose in float64: tf2 composes the recorded transform with its own arithmetic,
        # so the camera poses (and this) may differ in the last bits (measured: 3e-15 m).
        live = live_poses[stamp].pose
        np.testing.assert_allclose(
            [pose.pose.position.x, pose.pose.position.y, pose.pose.position.z,
             pose.pose.orientation.z, pose.pose.orientation.w],
            [live.position.x, live.position.y, live.position.z, live.orientation.z,
             live.orientation.w], rtol=0, atol=1e-9)
        assert pose.header.frame_id == live_poses[stamp].header.frame_id == 'world'
