"""``pix2voxpp-bag`` publishes, value for value, what the live node publishes for the same frames.

One recording, written with ``rosbags``, goes two ways: into ``pix2voxpp-bag`` (its own process,
the default batch, so all sets share one forward pass) and, read back frame by frame, into the
real ``pix2voxpp_node`` over Fast DDS. Both use the same parameters file (one PyTorch thread, so
reductions run in the same order); the clouds, grids and markers must be identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT), str(REPO_ROOT / 'training'), os.environ.get('PYTHONPATH', '')]))
    tool = subprocess.Popen([sys.executable, '-m', 'pix2voxpp_ros.cli.bag', str(bag), '--params',
                             str(params), '--out', str(out), '--quiet'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    node = NodeProcess(params, log_path=tmp_path / 'node.log')
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
        if tool.poll() is None:
            tool.kill()
            tool.wait()
        rig.close()
        code = node.stop()
        print(node.log()[-3000:])
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
