"""Integration tests of the reconstruction node over real middleware (rclpy + Fast DDS, no mock).

The node runs as its own process (the ``pix2voxpp_node`` console script) with a small /F
checkpoint written here; this process publishes three cameras and watches the outputs, services
and diagnostics from its own rclpy context (:class:`ros_helpers.Rig`). Every wait is a
wait-for-condition with a generous timeout, so a loaded machine only makes the tests slower.
Tests of one module share one node and run in file order; each leaves the node active.
"""

from __future__ import annotations

import array
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np
import psutil
import pytest
import torch
from lifecycle_msgs.msg import Transition
from sensor_msgs.msg import Image, PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from ros_helpers import (NodeProcess, Rig, cloud_to_array, isolate_ros_domain, make_frames,
                         wait_for, write_checkpoint, write_params)
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.voxels import grid_to_ros_axes
from pix2voxpp_ros.ros.conversions import dense_cloud_to_grid, stamp_to_ns

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/p2v_it/cam0/image', '/p2v_it/cam1/image', '/p2v_it/cam2/image']
THRESHOLD = 0.5  # the test checkpoint's recommended threshold, used by the node (threshold -1)
SYNC_SLOP_S = 0.1
SIZE_M = 0.5
NODE = '/pix2voxpp'
STARTUP_S = 120.0  # importing torch and rclpy on a loaded 2-core machine


class Env(NamedTuple):
    node: NodeProcess
    rig: Rig
    weights: Path
    overflow_weights: Path
    tmp: Path


@pytest.fixture(scope='module')
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    isolate_ros_domain()
    tmp = tmp_path_factory.mktemp('node')
    weights = write_checkpoint(tmp / 'f.pth', threshold=THRESHOLD)
    overflow = write_checkpoint(tmp / 'overflow.pth', threshold=THRESHOLD, overflow=True)
    params = write_params(tmp / 'params.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'min_views': 0,
        'sync_slop_s': SYNC_SLOP_S, 'max_frame_age_s': 3.0, 'future_tolerance_s': 1.0,
        'max_rate_hz': 0.0, 'frame_id': 'object', 'object_size_m': SIZE_M,
        'threshold': -1.0, 'device': 'cpu', 'backend': 'torch', 'num_threads': 1,
        'camera_rois': []})  # as config/pix2voxpp.yaml has it
    node = NodeProcess(params, log_path=tmp / 'node.log')
    rig = Rig(CAMERAS, node=NODE)
    ready = Env(node, rig, weights, overflow, tmp)
    try:
        rig.wait_for_subscribers(timeout=STARTUP_S)
        # Until both ends of every camera topic have matched, best-effort frames may be lost:
        # publish sets until one gets through, so the tests start from a steady state.
        frames = make_frames(3, seed=0)
        wait_for(lambda: publish_set(ready, frames, ['rgb8'] * 3) and rig.cloud_count() > 0,
                 timeout=STARTUP_S, interval=0.5, what='the first cloud')
        yield ready
    finally:
        rig.close()
        code = node.stop()
        print(node.log()[-4000:])  # shown by pytest when a test failed
    assert code == 0, f'the node exited with {code} on Ctrl-C'


def publish_set(env: Env, frames: Sequence[np.ndarray], encodings: Sequence[str],
                *, cameras: Sequence[int] = (0, 1, 2), min_gap_s: float = 5 * SYNC_SLOP_S
                ) -> int:
    """Publish one frame per camera, all with the same fresh stamp; return the stamp.

    Sets are spaced by ``min_gap_s``, several sync slops: the node could otherwise complete the
    previous set with a frame of this one, and the cloud of this stamp would not be of these
    frames alone.
    """
    stamp = env.rig.fresh_stamp(min_gap_s)
    for camera in cameras:
        env.rig.publish(camera, frames[camera], stamp, encoding=encodings[camera])
    return stamp


def reconstruct(env: Env, frames: Sequence[np.ndarray],
                encodings: Sequence[str] = ('rgb8',) * 3, *, attempts: int = 6) -> tuple:
    """Publish a set and wait for its cloud; republish (best effort may lose a frame)."""
    for attempt in range(attempts):
        stamp = publish_set(env, frames, encodings)
        try:
            return stamp, env.rig.wait_for_cloud(stamp, timeout=10.0)
        except TimeoutError:
            if attempt == attempts - 1:
                raise
    raise AssertionError('unreachable')


def assert_alive_and_publishing(env: Env) -> None:
    assert env.node.alive(), 'the node process died'
    reconstruct(env, make_frames(3, seed=99))


def main_status(statuses: dict) -> tuple[int, str, dict]:
    return statuses['pix2voxpp: reconstruction']


def set_parameters(env: Env, **values: Any) -> None:
    results = env.rig.set_parameters(**values)
    assert all(r.successful for r in results), [r.reason for r in results]


def reconfigure(env: Env, **values: Any) -> None:
    """Deactivate, clean up, set parameters, configure and activate again."""
    rig = env.rig
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
    assert rig.change_state(Transition.TRANSITION_CLEANUP)
    set_parameters(env, **values)
    assert rig.change_state(Transition.TRANSITION_CONFIGURE), env.node.log()[-2000:]
    assert rig.change_state(Transition.TRANSITION_ACTIVATE)
    topics = values.get('camera_topics', CAMERAS)
    rig.wait_for_subscribers(timeout=30, cameras=[CAMERAS.index(t) for t in topics])


# ------------------------------------------------------------------ output equals the core


def test_cloud_equals_the_core_reconstruction(env: Env) -> None:
    frames = [make_frames(1, seed=1)[0], make_frames(1, seed=2)[0],
              make_frames(1, seed=3, channels=1)[0]]
    encodings = ['rgb8', 'bgr8', 'mono8']
    stamp, cloud = reconstruct(env, frames, encodings)

    assert cloud.header.frame_id == 'object'
    assert stamp_to_ns(cloud.header.stamp) == stamp
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('occupancy', 12, 7, 1)]
    assert cloud.point_step == 16 and cloud.height == 1

    threads = torch.get_num_threads()
    try:  # the node runs one thread: the same reduction order gives the same numbers
        grid = Reconstructor(env.weights, device='cpu', backend='torch', num_threads=1,
                             warmup_views=0).reconstruct(frames, encodings=encodings)
    finally:
        torch.set_num_threads(threads)
    ros = grid_to_ros_axes(grid)
    got = cloud_to_array(cloud)
    index = np.rint((got[:, :3] / SIZE_M + 0.5) * 32 - 0.5).astype(int)
    np.testing.assert_allclose(got[:, :3], ((index + 0.5) / 32 - 0.5) * SIZE_M, atol=1e-6)
    np.testing.assert_allclose(got[:, 3], ros[index[:, 0], index[:, 1], index[:, 2]], atol=1e-5)
    occupied = np.zeros_like(ros, dtype=bool)
    occupied[index[:, 0], index[:, 1], index[:, 2]] = True
    borderline = np.abs(ros - THRESHOLD) < 1e-5
    assert np.array_equal(occupied & ~borderline, (ros >= THRESHOLD) & ~borderline)
    assert 0 < cloud.width == len(got) and abs(cloud.width - int((ros >= THRESHOLD).sum())) \
        <= int(borderline.sum())


def test_grid_and_markers_describe_the_same_voxels(env: Env) -> None:
    grids = env.rig.subscribe(PointCloud2, f'{NODE}/grid')
    markers = env.rig.subscribe(MarkerArray, f'{NODE}/markers')
    wait_for(lambda: env.node.alive() and len(env.rig.node.get_publishers_info_by_topic(
        f'{NODE}/markers')) > 0, timeout=30, what='the markers publisher')
    time.sleep(0.5)  # discovery of our marker subscription by the node (checked below anyway)
    stamp, cloud = reconstruct(env, make_frames(3, seed=5))

    def matching(messages: list, header_of: Callable[[Any], Any]) -> Any:
        return [m for m in list(messages) if header_of(m) is not None
                and stamp_to_ns(header_of(m).stamp) == stamp]
    marker_array = wait_for(lambda: matching(
        markers, lambda m: m.markers[0].header if m.markers else None),
        timeout=30, what='markers of the set')[-1]
    marker = marker_array.markers[0]
    assert marker.type == Marker.CUBE_LIST and len(marker.points) == cloud.width
    assert marker.scale.x == pytest.approx(SIZE_M / 32)
    grid_msg = wait_for(lambda: matching(grids, lambda m: m.header), timeout=30,
                        what='the grid of the set')[-1]
    assert grid_msg.header.frame_id == 'object'
    grid, voxel, origin = dense_cloud_to_grid(grid_msg)  # what a planner reads
    assert grid.shape == (32, 32, 32) and voxel == pytest.approx(SIZE_M / 32)
    np.testing.assert_allclose(origin, -SIZE_M / 2 + voxel / 2, atol=1e-6)
    points = cloud_to_array(cloud)
    index = np.rint((points[:, :3] - origin) / voxel).astype(int)
    np.testing.assert_array_equal(grid[tuple(index.T)], points[:, 3])
    assert int((grid >= THRESHOLD).sum()) == cloud.width
    env.rig.unsubscribe(grids)
    env.rig.unsubscribe(markers)


def test_128_weights_publish_fine_voxels_a_pooled_grid_and_refuse_too_many_cameras(
        env: Env) -> None:
    """A 128³ checkpoint: the cloud at edge / 128, ~/grid max-pooled to 32³, surface markers.

    Ten cameras would need about 3.2 GB a forward pass at 128³: configure refuses, saying so.
    """
    from pix2voxpp_ros.core.checkpoint import WeightsMetadata, save_checkpoint
    from pix2voxpp_ros.core.model import ModelConfig, build_model
    from pix2voxpp_ros.core.voxels import pool_grid
    from pix2voxpp_ros.ros.conversions.clouds import visible_voxels
    torch.manual_seed(4)
    fine_weights = env.tmp / 'f128.pth'
    save_checkpoint(fine_weights, build_model(ModelConfig(resolution=128)).eval(),
                    metadata=WeightsMetadata(threshold=THRESHOLD))
    rig = env.rig
    grids = rig.subscribe(PointCloud2, f'{NODE}/grid')
    markers = rig.subscribe(MarkerArray, f'{NODE}/markers')
    try:
        reconfigure(env, weights=str(fine_weights))
        frames = make_frames(3, seed=6)
        stamp, cloud = reconstruct(env, frames)
        threads = torch.get_num_threads()
        try:
            core = Reconstructor(fine_weights, device='cpu', backend='torch', num_threads=1,
                                 warmup_views=0).reconstruct(frames, encodings='rgb8')
        finally:
            torch.set_num_threads(threads)
        ros = grid_to_ros_axes(core)  # (128, 128, 128)
        got = cloud_to_array(cloud)
        index = np.rint((got[:, :3] / SIZE_M + 0.5) * 128 - 0.5).astype(int)
        np.testing.assert_allclose(got[:, :3], ((index + 0.5) / 128 - 0.5) * SIZE_M, atol=1e-6)
        np.testing.assert_allclose(got[:, 3], ros[tuple(index.T)], atol=1e-5)
        assert 0 < cloud.width and abs(cloud.width - int((ros >= THRESHOLD).sum())) <= int(
            (np.abs(ros - THRESHOLD) < 1e-5).sum())

        def of_stamp(messages: list, header_of: Callable[[Any], Any]) -> list:
            return [m for m in list(messages) if header_of(m) is not None
                    and stamp_to_ns(header_of(m).stamp) == stamp]
        grid_msg = wait_for(lambda: of_stamp(grids, lambda m: m.header), timeout=30,
                            what='the grid of the 128³ set')[-1]
        grid, voxel, _ = dense_cloud_to_grid(grid_msg)
        assert grid.shape == (32, 32, 32) and voxel == pytest.approx(SIZE_M / 32)
        np.testing.assert_allclose(grid, pool_grid(ros, 4), atol=1e-5)
        marker = wait_for(lambda: of_stamp(markers, lambda m: m.markers[0].header
                                           if m.markers else None), timeout=30,
                          what='the markers of the 128³ set')[-1].markers[0]
        assert marker.scale.x == pytest.approx(SIZE_M / 128)
        surface = int((visible_voxels(ros, threshold=THRESHOLD) >= THRESHOLD).sum())
        assert abs(len(marker.points) - surface) <= int((np.abs(ros - THRESHOLD) < 1e-5).sum())
        assert len(marker.points) < cloud.width or surface == cloud.width

        assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
        assert rig.change_state(Transition.TRANSITION_CLEANUP)
        many = [f'/p2v_it/many{i}/image' for i in range(10)]
        set_parameters(env, camera_topics=many)
        assert not rig.change_state(Transition.TRANSITION_CONFIGURE)
        wait_for(lambda: '10 views of one object at 128³ would take about 3.2 GB'
                 in env.node.log(), timeout=30, what='the memory refusal in the log')
        assert env.node.alive() and rig.lifecycle_state() == 'unconfigured'
        set_parameters(env, camera_topics=CAMERAS, weights=str(env.weights))
        assert rig.change_state(Transition.TRANSITION_CONFIGURE), env.node.log()[-2000:]
        assert rig.change_state(Transition.TRANSITION_ACTIVATE)
        rig.wait_for_subscribers(timeout=30)
    finally:
        rig.unsubscribe(grids)
        rig.unsubscribe(markers)
        if rig.lifecycle_state() != 'active':  # a failed check: leave the next tests a node
            for transition in (Transition.TRANSITION_DEACTIVATE, Transition.TRANSITION_CLEANUP):
                rig.change_state(transition)
            rig.set_parameters(camera_topics=CAMERAS, weights=str(env.weights))
            rig.change_state(Transition.TRANSITION_CONFIGURE)
            rig.change_state(Transition.TRANSITION_ACTIVATE)
    assert_alive_and_publishing(env)


def test_a_late_marker_viewer_never_gets_older_markers_than_the_cloud(env: Env) -> None:
    rig = env.rig
    wait_for(lambda: rig.node.count_subscribers(f'{NODE}/markers') == 0, timeout=10,
             what='no marker viewer left')
    time.sleep(1.0)  # not synchronisation: the node's DDS learns that the last viewer left
    for seed in (21, 22, 23):  # reconstructions that nobody's markers were built for
        stamp, cloud = reconstruct(env, make_frames(3, seed=seed))
    time.sleep(0.5)  # not synchronisation: lets the worker finish publishing the last set
    latest = rig.clouds_since(0)[-1]
    received = rig.subscribe(MarkerArray, f'{NODE}/markers', durability='transient_local')

    def fresh_cubes() -> Any:
        return [m for m in list(received) if m.markers and m.markers[0].type == Marker.CUBE_LIST
                and m.markers[0].header.stamp == latest.header.stamp]
    marker = wait_for(fresh_cubes, timeout=30, what='markers of the latest cloud')[0].markers[0]
    assert len(marker.points) == latest.width
    for message in list(received):  # whatever came first: this cloud's markers or a clear-all
        head = message.markers[0]
        assert head.action == Marker.DELETEALL or head.header.stamp == latest.header.stamp, \
            f'stale markers of stamp {stamp_to_ns(head.header.stamp)} next to the newest cloud'


def test_diagnostics_report_rates_latency_and_device(env: Env) -> None:
    reconstruct(env, make_frames(3, seed=6))
    statuses = env.rig.wait_for_diagnostics(
        lambda s: 'pix2voxpp: reconstruction' in s and main_status(s)[0] == 0,
        timeout=30, what='an OK reconstruction status')
    level, message, values = main_status(statuses)
    assert values['state'] == 'active' and values['device'] == 'cpu'
    assert float(values['model_ms']) > 0 and float(values['latency_ms']) >= \
        float(values['model_ms'])
    assert int(values['reconstructions']) >= 1 and 'reconstruction' in message
    for topic in CAMERAS:
        level, message, values = statuses[f'pix2voxpp: camera {topic}']
        assert values['topic'] == topic and 'rate_hz' in values
        assert int(values['frames_accepted']) >= 1


# ------------------------------------------------------------------ services and lifecycle


def test_reconstruct_and_reset_services(env: Env) -> None:
    rig = env.rig
    reconstruct(env, make_frames(3, seed=7))  # fresh frames of all cameras are buffered now
    answer = rig.call(Trigger, f'{NODE}/reconstruct')
    assert answer.success, answer.message
    for topic in CAMERAS:
        assert topic in answer.message
    assert 'latency' in answer.message and 'model' in answer.message

    reset = rig.call(Trigger, f'{NODE}/reset')
    assert reset.success and 'cleared' in reset.message
    answer = rig.call(Trigger, f'{NODE}/reconstruct')
    assert not answer.success and 'no complete view set' in answer.message


def test_service_trigger_reconstructs_only_when_asked(env: Env) -> None:
    rig = env.rig
    reconfigure(env, trigger='service')
    try:
        before = rig.cloud_count()
        frames = make_frames(3, seed=8)
        publish_set(env, frames, ['rgb8'] * 3)
        time.sleep(1.0)  # not synchronisation: time in which auto mode would have published
        assert rig.cloud_count() == before, 'service mode published without being asked'

        def answered() -> Any:
            publish_set(env, frames, ['rgb8'] * 3)
            reply = rig.call(Trigger, f'{NODE}/reconstruct')
            return reply if reply.success else None
        answer = wait_for(answered, timeout=30, interval=0.2, what='a successful service call')
        assert 'reconstructed from 3 view(s)' in answer.message
        wait_for(lambda: rig.cloud_count() > before, timeout=30, what='the cloud')
        time.sleep(0.5)  # not synchronisation: room for a wrong second cloud to show up
        assert len(rig.clouds_since(before)) == 1 and rig.clouds_since(before)[0].width > 0
    finally:
        reconfigure(env, trigger='auto')


def test_an_empty_list_in_the_parameters_file_is_a_typed_empty_list(env: Env) -> None:
    from rcl_interfaces.msg import ParameterType
    assert env.rig.parameter_types('camera_rois', 'camera_topics') == [
        ParameterType.PARAMETER_INTEGER_ARRAY, ParameterType.PARAMETER_STRING_ARRAY]


def test_lifecycle_transitions_and_parameter_rules(env: Env) -> None:
    rig = env.rig
    assert rig.lifecycle_state() == 'active'
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
    assert rig.lifecycle_state() == 'inactive'
    refused = rig.set_parameters(min_views=2)
    assert not refused[0].successful and 'unconfigured' in refused[0].reason
    assert not rig.set_parameters(threshold=1.5)[0].successful
    assert rig.set_parameters(threshold=0.6)[0].successful  # dynamic: allowed any time
    statuses = rig.wait_for_diagnostics(
        lambda s: main_status(s)[2]['state'] == 'inactive', what='inactive diagnostics')
    assert main_status(statuses)[2]['threshold'] == '0.600'
    answer = rig.call(Trigger, f'{NODE}/reconstruct')
    assert not answer.success and 'inactive' in answer.message

    assert rig.change_state(Transition.TRANSITION_CLEANUP)
    assert rig.lifecycle_state() == 'unconfigured'
    bad = rig.set_parameters(camera_rois=[0, 0, 10])
    assert not bad[0].successful and '4 integers' in bad[0].reason
    bad = rig.set_parameters(weights=str(env.tmp / 'missing.pth'))
    assert not bad[0].successful and 'not found' in bad[0].reason
    assert rig.set_parameters(threshold=-1.0)[0].successful
    assert rig.change_state(Transition.TRANSITION_CONFIGURE)
    assert rig.change_state(Transition.TRANSITION_ACTIVATE)
    assert rig.lifecycle_state() == 'active'
    rig.wait_for_subscribers(timeout=30)
    assert_alive_and_publishing(env)


def test_dynamic_parameters_set_while_inactive_apply_on_activation(env: Env) -> None:
    rig = env.rig
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
    try:
        set_parameters(env, max_rate_hz=0.4, threshold=0.7)
        assert rig.change_state(Transition.TRANSITION_ACTIVATE)
        rig.wait_for_subscribers(timeout=30)
        before = rig.cloud_count()
        deadline = time.monotonic() + 4.0
        seed = 40
        while time.monotonic() < deadline:  # ~10 sets/s; the node may take one per 2.5 s
            publish_set(env, make_frames(3, seed=seed), ['rgb8'] * 3, min_gap_s=0.0)
            seed += 1
            time.sleep(0.1)
        wait_for(lambda: rig.cloud_count() > before, timeout=30, what='a cloud')
        clouds = rig.clouds_since(before)
        assert 1 <= len(clouds) <= 3, f'{len(clouds)} clouds in 4 s at max_rate_hz 0.4'
        for cloud in clouds:
            values = cloud_to_array(cloud)[:, 3]
            assert len(values) == 0 or values.min() >= 0.7  # the threshold set while inactive
    finally:
        set_parameters(env, max_rate_hz=0.0, threshold=-1.0)
    assert_alive_and_publishing(env)


# ------------------------------------------------------------------ bad input


def malformed(kind: str) -> Image:
    good = make_frames(1, seed=11)[0]  # 48 x 64 rgb8: step 192, 9216 bytes
    msg = Image(height=48, width=64, encoding='rgb8', step=192)
    msg.data = array.array('B', good.tobytes())
    if kind == 'empty':
        msg.data = array.array('B')
    elif kind == 'truncated':
        msg.data = msg.data[:5000]
    elif kind == 'step':
        msg.step = 100
    elif kind == 'zero':
        msg.height = msg.width = msg.step = 0
        msg.data = array.array('B')
    elif kind == 'encoding':
        msg.encoding = '16UC1'
    return msg


def test_bad_images_are_dropped_counted_and_named(env: Env) -> None:
    rig = env.rig
    camera = f'pix2voxpp: camera {CAMERAS[0]}'

    def dropped(statuses: dict, reason: str) -> int:
        return int(statuses[camera][2][f'frames_dropped.{reason}'])
    latest = [rig.wait_for_diagnostics(lambda s: camera in s)]
    # The node is shared by the module's tests: count what this test adds to its totals.
    at_start = {'camera': {r: dropped(latest[0], r) for r in ('bad_image', 'encoding')},
                'node': int(main_status(latest[0])[2]['frames_dropped.bad_image'])}
    for kind in ('empty', 'truncated', 'step', 'zero', 'encoding'):
        msg = malformed(kind)
        reason = 'encoding' if kind == 'encoding' else 'bad_image'
        before = dropped(latest[0], reason)

        def counted() -> bool:
            # Re-sent until counted: a burst on one topic keeps only the newest few (keep last).
            msg.header.stamp = rig.node.get_clock().now().to_msg()
            rig.publish_message(0, msg)
            latest[0] = rig.wait_for_diagnostics(lambda s: camera in s, timeout=10)
            return dropped(latest[0], reason) > before
        wait_for(counted, timeout=60, what=f'the {kind} frame counted as dropped')
    assert_alive_and_publishing(env)
    statuses = rig.wait_for_diagnostics(lambda s: camera in s)
    assert dropped(statuses, 'bad_image') - at_start['camera']['bad_image'] >= 4
    assert dropped(statuses, 'encoding') - at_start['camera']['encoding'] >= 1
    assert int(main_status(statuses)[2]['frames_dropped.bad_image']) - at_start['node'] >= 4
    log = wait_for(lambda: '16UC1' in env.node.log() and env.node.log(), timeout=10,
                   what='the encoding warning')
    assert f"dropping frames on {CAMERAS[0]}: encoding '16UC1' is not supported" in log
    assert 'dropping a malformed frame' in log and 'Traceback' not in log


def test_out_of_order_and_future_stamps_are_dropped(env: Env) -> None:
    rig = env.rig
    stamp, _ = reconstruct(env, make_frames(3, seed=12))
    image = make_frames(1, seed=13)[0]
    for _ in range(3):
        rig.publish(1, image, stamp - 500_000_000)  # half a second older than the newest
        rig.publish(2, image, rig.now_ns() + 100 * 10 ** 9)  # 100 s in the future
    rig.wait_for_diagnostics(
        lambda s: int(main_status(s)[2]['frames_dropped.out_of_order']) >= 1
        and int(main_status(s)[2]['frames_dropped.future']) >= 1,
        what='out-of-order and future drops in the diagnostics')
    assert_alive_and_publishing(env)


def test_a_camera_that_stops_publishing(env: Env) -> None:
    rig = env.rig
    frames = make_frames(3, seed=14)
    before = rig.cloud_count()
    first = rig.now_ns()
    deadline = time.monotonic() + 4.0  # longer than max_frame_age_s (3 s)
    while time.monotonic() < deadline:
        publish_set(env, frames, ['rgb8'] * 3, cameras=(0, 1))
        time.sleep(0.1)
    statuses = rig.wait_for_diagnostics(
        lambda s: s[f'pix2voxpp: camera {CAMERAS[2]}'][0] == 1, what='a silent camera warning')
    assert 'no usable frame' in statuses[f'pix2voxpp: camera {CAMERAS[2]}'][1]
    late = [c for c in rig.clouds_since(before) if stamp_to_ns(c.header.stamp) > first + 2e8]
    assert not late, 'reconstructed without camera 2 although min_views is 0 (all cameras)'
    assert 'waiting for views' in main_status(statuses)[1] or main_status(statuses)[0] != 0
    assert_alive_and_publishing(env)  # the camera comes back


def test_nan_from_the_network_is_survived(env: Env) -> None:
    rig = env.rig
    reconfigure(env, weights=str(env.overflow_weights))
    try:
        publish_set(env, make_frames(3, seed=15), ['rgb8'] * 3)
        statuses = rig.wait_for_diagnostics(lambda s: int(main_status(s)[2]['errors.inference']),
                                            what='an inference error in the diagnostics')
        level, message, _ = main_status(statuses)
        assert level == 2 and 'InferenceError' in message
        assert env.node.alive()

        def inference_failure() -> Any:
            publish_set(env, make_frames(3, seed=16), ['rgb8'] * 3)
            reply = rig.call(Trigger, f'{NODE}/reconstruct')
            return reply if 'InferenceError' in reply.message else None
        answer = wait_for(inference_failure, timeout=30, interval=0.2,
                          what='a service answer naming the InferenceError')
        assert not answer.success
    finally:
        reconfigure(env, weights=str(env.weights))
    assert_alive_and_publishing(env)


# ------------------------------------------------------------------ one moving camera


def test_one_moving_camera_uses_key_frames(env: Env) -> None:
    rig = env.rig
    reconfigure(env, camera_topics=[CAMERAS[0]], views_per_reconstruction=2,
                min_view_interval_s=0.2)
    try:
        before = rig.cloud_count()
        images = make_frames(2, seed=18)

        def key_frames_reconstructed() -> Any:
            for image in images:  # two key frames 0.25 s apart, at least 0.2 s needed
                rig.publish(0, image, rig.now_ns())
                time.sleep(0.25)  # the camera's frame period in this test, not synchronisation
            return rig.cloud_count() > before
        wait_for(key_frames_reconstructed, timeout=60, interval=0.0, what='a moving-camera cloud')
        answer = rig.call(Trigger, f'{NODE}/reconstruct')
        assert answer.success, answer.message
        assert f'2 key frames of {CAMERAS[0]}' in answer.message
    finally:
        reconfigure(env, camera_topics=CAMERAS)
    assert_alive_and_publishing(env)


# ------------------------------------------------------------------ flood


def test_flood_keeps_memory_flat_and_output_current(env: Env) -> None:
    rig = env.rig
    process = psutil.Process(env.node.pid)
    frames = make_frames(3, seed=17)  # small: the publisher must keep up 600 frames/s here
    start_count = rig.cloud_count()
    rss: list[tuple[float, int]] = []
    published: list[tuple[float, int]] = []  # (monotonic, stamp)
    period = 1.0 / 200.0
    start = time.monotonic()
    next_time = start
    next_sample = start
    while (now := time.monotonic()) - start < 10.0:
        if now >= next_sample:
            rss.append((now - start, process.memory_info().rss))
            next_sample += 0.25
        stamp = publish_set(env, frames, ['rgb8'] * 3, min_gap_s=0.0)  # a flood: no spacing
        published.append((now, stamp))
        next_time += period
        delay = next_time - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_time = time.monotonic()  # behind: do not burst to catch up
    end = time.monotonic()
    rate = len(published) / (end - start)  # the machine's speed: reported, not asserted
    assert env.node.alive()

    with rig.lock:
        received = [(t, stamp_to_ns(m.header.stamp)) for t, m in rig.clouds[start_count:]]
    during = [(t, s) for t, s in received if start + 3.0 <= t <= end]
    assert len(during) >= 2, f'only {len(during)} clouds in the last 7 s of the flood'
    stamp_at = dict((s, t) for t, s in published)
    # Output moves on: each cloud is of a newer set than the one before. How far behind the
    # frames it is, is the machine's speed: printed here (benchmarks/bench_node.py measures
    # the latency).
    stamps = [s for _, s in during]
    assert stamps == sorted(set(stamps)), 'a cloud of an older set than the one before'
    lags = [t - stamp_at[s] for t, s in during if s in stamp_at]

    final_stamp = published[-1][1]
    wait_for(lambda: rig.cloud_count() > start_count and any(
        stamp_to_ns(m.header.stamp) >= published[-int(rate * 2)][1]
        for m in rig.clouds_since(start_count)), timeout=30,
        what='a cloud of the last two seconds of frames')
    assert final_stamp >= published[0][1]

    baseline = max(v for t, v in rss if 2.0 <= t <= 4.0)
    peak = max(v for t, v in rss if t > 4.0)
    assert peak - baseline < 80 * 2 ** 20, f'RSS grew by {(peak - baseline) / 2**20:.0f} MiB'

    statuses = rig.wait_for_diagnostics(lambda s: int(main_status(s)[2]['sets_dropped']) > 0,
                                        what='dropped sets in the diagnostics')
    print(f'flood: {rate:.0f} sets/s published, {len(during)} clouds, median lag '
          f'{np.median(lags):.2f} s, RSS {baseline / 2**20:.0f} -> {peak / 2**20:.0f} MiB, '
          f'sets dropped {main_status(statuses)[2]["sets_dropped"]}')
    assert_alive_and_publishing(env)


# ------------------------------------------------------------------ bad weights


def test_missing_or_corrupt_weights_keep_the_node_up(tmp_path: Path) -> None:
    isolate_ros_domain()
    weights = tmp_path / 'later.pth'
    params = write_params(tmp_path / 'bad.yaml', {'weights': str(weights),
                                                  'camera_topics': ['/p2v_it/bad/image'],
                                                  'device': 'cpu', 'num_threads': 1},
                          node_name='pix2voxpp_bad')
    node = NodeProcess(params, log_path=tmp_path / 'bad.log', node_name='pix2voxpp_bad')
    rig = Rig([], node='/pix2voxpp_bad')
    try:
        def status() -> Any:
            return rig.latest_diagnostics().get('pix2voxpp_bad: reconstruction')
        level, message, _ = wait_for(status, timeout=STARTUP_S, what='diagnostics')
        # Values in messages are cut to 80 characters in the middle: the file name stays.
        assert level == 2 and 'not found' in message and weights.name in message, message
        assert rig.lifecycle_state() == 'unconfigured' and node.alive()

        write_checkpoint(weights)
        weights.write_bytes(weights.read_bytes()[:100_000])  # an interrupted copy
        assert not rig.change_state(Transition.TRANSITION_CONFIGURE)
        wait_for(lambda: 'truncated or corrupt' in status()[1], timeout=30,
                 what='the corrupt-file reason in the diagnostics')

        write_checkpoint(weights)
        assert rig.change_state(Transition.TRANSITION_CONFIGURE)
        assert rig.lifecycle_state() == 'inactive'
        log = node.log()
        assert log.count('configure failed') == 2 and 'Traceback' not in log
        assert 'autostart stopped' in log and node.alive()
    finally:
        rig.close()
        code = node.stop()
    assert code == 0
