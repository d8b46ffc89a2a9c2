"""The demo at reduced size: rig and node as processes, the IoU taken from the published cloud."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
from sensor_msgs.msg import PointCloud2

from ros_helpers import Rig, cloud_to_array, isolate_ros_domain, wait_for, write_checkpoint


def _voxels(points: np.ndarray, size_m: float) -> set[tuple[int, int, int]]:
    """Voxel indices of centre points: the centre of voxel k lies at (k + 0.5) / 32 - 0.5."""
    return {tuple(v) for v in np.rint((points / size_m + 0.5) * 32 - 0.5).astype(int).tolist()}


def test_demo_scores_the_cloud_the_node_published(tmp_path) -> None:
    domain = isolate_ros_domain()
    weights = write_checkpoint(tmp_path / 'weights.pth', seed=3, threshold=0.5)
    out = tmp_path / 'demo'
    # The test listens on the demo's domain too, to see what the node really published.
    listener = Rig([], node='/pix2voxpp')
    truths = listener.subscribe(PointCloud2, '/rig/sim_camera_rig/ground_truth')
    try:
        demo = subprocess.run(
            [sys.executable, '-m', 'pix2voxpp_ros.ros.demo', '--objects', '1', '--weights',
             str(weights), '--out', str(out), '--object-switch-s', '0', '--domain-id',
             str(domain), '--device', 'cpu', '--timeout-s', '240'],
            capture_output=True, text=True, timeout=300)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        summary = json.loads((out / 'summary.json').read_text())
        assert len(summary['objects']) == 1
        scored = summary['objects'][0]
        assert scored['name'].startswith('table/')  # the rig's first category
        assert summary['mean_iou'] == scored['iou']
        assert summary['latency_s']['clouds'] >= 1 and summary['latency_s']['median'] > 0
        assert f'IoU {scored["iou"]:.3f}' in demo.stdout

        def stamp_of(msg) -> int:
            return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec

        cloud = wait_for(lambda: next((m for _, m in listener.clouds
                                       if stamp_of(m) == scored['stamp_ns']), None),
                         timeout=10, what='the scored cloud among those the test received')
        # The rig keeps its first object (switch 0), so every truth message is the same grid;
        # the listener may have joined after the scored tick, so take any of them.
        wait_for(lambda: truths, timeout=10, what='a ground-truth message')
        received = list(truths)
        assert all(bytes(m.data) == bytes(received[0].data) for m in received)
        truth = received[-1]
        predicted = _voxels(cloud_to_array(cloud)[:, :3], 0.5)
        true = _voxels(cloud_to_array(truth)[:, :3], 0.5)
        assert len(predicted) == scored['points'] and len(true) == scored['truth_voxels']
        expected_iou = len(predicted & true) / len(predicted | true)
        assert abs(expected_iou - scored['iou']) < 1e-4

        pictures = sorted(out.glob('00_table_*.png'))
        assert len(pictures) == 1
        picture = cv2.imread(str(pictures[0]))
        assert picture is not None and picture.shape[0] > 300 and picture.shape[1] > 600
    finally:
        listener.close()
