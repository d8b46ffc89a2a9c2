"""The node with ``backend: openvino`` publishes the cloud that ``backend: torch`` publishes.

Two real nodes (separate processes, Fast DDS) listen to the same three cameras; this process
publishes frames and compares the two clouds of each stamp. Skipped where OpenVINO is missing.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2

from ros_helpers import (NodeProcess, Rig, cloud_to_array, isolate_ros_domain, make_frames,
                         wait_for, write_checkpoint, write_params)
from pix2voxpp_ros.ros.conversions import stamp_to_ns

pytest.importorskip('openvino')
pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/p2v_be/cam0/image', '/p2v_be/cam1/image', '/p2v_be/cam2/image']
THRESHOLD = 0.5
SYNC_SLOP_S = 0.1
STARTUP_S = 150.0  # two nodes importing torch, one converting the model, on 2 shared cores


class Nodes(NamedTuple):
    torch_node: NodeProcess
    openvino_node: NodeProcess
    rig: Rig
    openvino_clouds: list


@pytest.fixture(scope='module')
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    isolate_ros_domain()
    tmp = tmp_path_factory.mktemp('backends')
    weights = write_checkpoint(tmp / 'f.pth', seed=7, threshold=THRESHOLD)
    common = {'weights': str(weights), 'camera_topics': CAMERAS, 'min_views': 0,
              'sync_slop_s': SYNC_SLOP_S, 'max_frame_age_s': 5.0, 'future_tolerance_s': 1.0,
              'max_rate_hz': 0.0, 'device': 'cpu', 'num_threads': 1}
    started = []
    for name in ('p2v_torch', 'p2v_openvino'):
        params = write_params(tmp / f'{name}.yaml', {**common, 'backend': name[4:]},
                              node_name=name)
        started.append(NodeProcess(params, log_path=tmp / f'{name}.log', node_name=name))
    rig = Rig(CAMERAS, node='/p2v_torch')
    openvino_clouds = rig.subscribe(PointCloud2, '/p2v_openvino/occupancy', depth=50)
    try:
        wait_for(lambda: all(p.get_subscription_count() >= 2 for p in rig.publishers),
                 timeout=STARTUP_S, what='both nodes to subscribe to the cameras')
        yield Nodes(started[0], started[1], rig, openvino_clouds)
    finally:
        rig.close()
        codes = [node.stop() for node in started]
        for node in started:
            print(node.log()[-3000:])  # shown by pytest when a test failed
    assert codes == [0, 0], f'exit codes {codes} on Ctrl-C'


def clouds_of(nodes: Nodes, frames: list[np.ndarray], *, attempts: int = 6) -> tuple:
    """Publish one set (again if best effort loses a frame) until both nodes answer it."""
    for attempt in range(attempts):
        stamp = nodes.rig.fresh_stamp(5 * SYNC_SLOP_S)  # no node may mix two sets
        for camera, frame in enumerate(frames):
            nodes.rig.publish(camera, frame, stamp)
        try:
            from_torch = nodes.rig.wait_for_cloud(stamp, timeout=20.0)
            from_openvino = wait_for(
                lambda: next((c for c in list(nodes.openvino_clouds)
                              if stamp_to_ns(c.header.stamp) == stamp), None),
                timeout=20.0, what='the OpenVINO node cloud')
            return from_torch, from_openvino
        except TimeoutError:
            if attempt == attempts - 1:
                raise
    raise AssertionError('unreachable')


def test_openvino_node_publishes_the_torch_cloud(nodes: Nodes) -> None:
    assert '(fp32, openvino)' in wait_for(
        lambda: '(fp32, openvino)' in nodes.openvino_node.log() and nodes.openvino_node.log(),
        timeout=STARTUP_S, what='the OpenVINO node to configure')
    assert '(fp32, torch)' in nodes.torch_node.log()
    compared = 0
    for seed in (11, 12, 13):
        from_torch, from_openvino = clouds_of(nodes, make_frames(3, seed=seed))
        a, b = cloud_to_array(from_torch), cloud_to_array(from_openvino)
        assert from_torch.header.frame_id == from_openvino.header.frame_id
        # Voxels within 1e-4 of the threshold may fall on either side; all others must match.
        index_a = {tuple(p): v for p, v in zip(np.round(a[:, :3], 6).tolist(), a[:, 3])}
        index_b = {tuple(p): v for p, v in zip(np.round(b[:, :3], 6).tolist(), b[:, 3])}
        for key in set(index_a) ^ set(index_b):
            value = index_a.get(key, index_b.get(key))
            assert abs(value - THRESHOLD) < 1e-4, f'voxel {key} ({value}) in one cloud only'
        for key in set(index_a) & set(index_b):
            assert abs(index_a[key] - index_b[key]) <= 1e-4
        compared += len(index_a)
    assert compared > 0, 'the clouds were empty: nothing was compared'


def test_backend_in_diagnostics(nodes: Nodes) -> None:
    statuses = nodes.rig.wait_for_diagnostics(
        lambda s: 'p2v_torch: reconstruction' in s, timeout=30, what='diagnostics')
    assert statuses['p2v_torch: reconstruction'][2]['backend'] == 'torch'
