"""Integration tests of the node's robot inputs over real DDS: compressed images, object masks.

The node runs as its own process with ``image_transport: compressed``; this process publishes
sensor_msgs/CompressedImage on ``<camera>/compressed`` as image_transport's plugin does, and
compares the clouds with the core's reconstruction of the decoded images; then it reconfigures
the node to raw images with ``mask_topics`` and sends cluttered frames with a segmenter's masks.
"""

from __future__ import annotations

import array
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence

import cv2
import numpy as np
import pytest
import torch
from lifecycle_msgs.msg import Transition
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ros_helpers import (NodeProcess, Rig, cloud_to_array, isolate_ros_domain, wait_for,
                         write_checkpoint, write_params)
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.preprocess import decode_image
from pix2voxpp_ros.core.voxels import grid_to_ros_axes
from pix2voxpp_ros.ros.conversions import (array_to_compressed, array_to_image,
                                           compressed_topic, ns_to_stamp, stamp_to_ns)

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/p2v_in/cam0/image_raw', '/p2v_in/cam1/image_raw', '/p2v_in/cam2/image_raw']
THRESHOLD = 0.5
SIZE_M = 0.5
NODE = '/pix2voxpp'
STARTUP_S = 120.0
SYNC_SLOP_S = 0.1


class Env(NamedTuple):
    node: NodeProcess
    rig: Rig
    weights: Path
    compressed: list[Any]  # CompressedImage publishers, one per camera


def smooth_frames(count: int, *, seed: int, height: int = 96, width: int = 128
                  ) -> list[np.ndarray]:
    """Blurred random rgb8 images: content JPEG keeps, unlike pixel noise."""
    rng = np.random.default_rng(seed)
    return [cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (9, 9), 3)
            for _ in range(count)]


@pytest.fixture(scope='module')
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    isolate_ros_domain()
    tmp = tmp_path_factory.mktemp('inputs')
    weights = write_checkpoint(tmp / 'f.pth', threshold=THRESHOLD)
    params = write_params(tmp / 'params.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'image_transport': 'compressed',
        'sync_slop_s': SYNC_SLOP_S, 'max_frame_age_s': 3.0, 'future_tolerance_s': 1.0,
        'max_rate_hz': 0.0, 'object_size_m': SIZE_M, 'device': 'cpu', 'backend': 'torch',
        'num_threads': 1})
    node = NodeProcess(params, log_path=tmp / 'node.log')
    rig = Rig([], node=NODE)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                     reliability=ReliabilityPolicy.BEST_EFFORT)
    publishers = [rig.node.create_publisher(CompressedImage, compressed_topic(topic), qos)
                  for topic in CAMERAS]
    ready = Env(node, rig, weights, publishers)
    try:
        wait_for(lambda: all(p.get_subscription_count() for p in publishers), timeout=STARTUP_S,
                 what='the node to subscribe to <camera>/compressed')
        wait_for(lambda: publish_set(ready, smooth_frames(3, seed=0)) and rig.cloud_count(),
                 timeout=STARTUP_S, interval=0.5, what='the first cloud')
        yield ready
    finally:
        rig.close()
        code = node.stop()
        print(node.log()[-4000:])
    assert code == 0, f'the node exited with {code} on Ctrl-C'


def publish_set(env: Env, frames: Sequence[np.ndarray],
                formats: Sequence[str] = ('jpeg',) * 3) -> int:
    """Publish one compressed rgb8 frame per camera with one fresh stamp; return the stamp."""
    stamp = env.rig.fresh_stamp(5 * SYNC_SLOP_S)
    for publisher, frame, image_format in zip(env.compressed, frames, formats):
        publisher.publish(array_to_compressed(frame, encoding='rgb8', image_format=image_format,
                                              stamp=ns_to_stamp(stamp)))
    return stamp


def reconstruct(env: Env, frames: Sequence[np.ndarray], formats: Sequence[str]) -> tuple:
    for attempt in range(6):  # best effort may lose a frame: republish
        stamp = publish_set(env, frames, formats)
        try:
            return stamp, env.rig.wait_for_cloud(stamp, timeout=10.0)
        except TimeoutError:
            if attempt == 5:
                raise
    raise AssertionError('unreachable')


def core_grid(weights: Path, images: list[np.ndarray], encodings: list[str]) -> np.ndarray:
    threads = torch.get_num_threads()
    try:  # the node runs one thread: the same reduction order gives the same numbers
        return Reconstructor(weights, device='cpu', backend='torch', num_threads=1,
                             warmup_views=0).reconstruct(images, encodings=encodings)
    finally:
        torch.set_num_threads(threads)


def test_compressed_frames_give_the_grid_of_their_decoded_images(env: Env) -> None:
    frames = smooth_frames(3, seed=4)
    formats = ['jpeg', 'png', 'jpeg']
    stamp, cloud = reconstruct(env, frames, formats)
    assert stamp_to_ns(cloud.header.stamp) == stamp
    decoded = [decode_image(bytes(array_to_compressed(f, encoding='rgb8', image_format=k).data))
               for f, k in zip(frames, formats)]
    assert decoded[1][1] == 'bgr8' and np.array_equal(decoded[1][0][:, :, ::-1], frames[1])
    ros = grid_to_ros_axes(core_grid(env.weights, [d[0] for d in decoded],
                                     [d[1] for d in decoded]))
    got = cloud_to_array(cloud)
    index = np.rint((got[:, :3] / SIZE_M + 0.5) * 32 - 0.5).astype(int)
    np.testing.assert_allclose(got[:, 3], ros[index[:, 0], index[:, 1], index[:, 2]], atol=1e-5)
    assert cloud.width == int((ros >= THRESHOLD).sum())
    camera = env.rig.wait_for_diagnostics(
        lambda s: f'pix2voxpp: camera {compressed_topic(CAMERAS[1])}' in s)
    values = camera[f'pix2voxpp: camera {compressed_topic(CAMERAS[1])}'][2]
    assert values['encoding'] == 'bgr8' and values['size'] == '128x96'


def bad_compressed(kind: str) -> CompressedImage:
    """Build a CompressedImage whose data cannot give a frame."""
    frame = smooth_frames(1, seed=7)[0]
    jpeg = bytes(array_to_compressed(frame, encoding='rgb8').data)
    png = bytes(array_to_compressed(frame, encoding='rgb8', image_format='png').data)
    data = {
        'empty': b'',
        'garbage': b'not an image at all',
        'truncated_jpeg': jpeg[:len(jpeg) // 2],
        'corrupt_jpeg_header': jpeg[:2] + b'\x00' * 200 + jpeg[202:],
        'truncated_png': png[:len(png) // 2],
        'png_16_bit': cv2.imencode('.png', np.full((8, 8), 40000, np.uint16))[1].tobytes(),
    }[kind]
    msg = CompressedImage(format='jpeg')
    msg.data = array.array('B', data)
    return msg


def test_corrupt_and_truncated_compressed_frames_are_dropped(env: Env) -> None:
    rig = env.rig
    camera = f'pix2voxpp: camera {compressed_topic(CAMERAS[0])}'

    def dropped(statuses: dict) -> int:
        return int(statuses[camera][2]['frames_dropped.bad_image'])
    latest = [rig.wait_for_diagnostics(lambda s: camera in s)]
    for kind in ('empty', 'garbage', 'truncated_jpeg', 'corrupt_jpeg_header', 'truncated_png',
                 'png_16_bit'):
        msg = bad_compressed(kind)
        before = dropped(latest[0])

        def counted() -> bool:
            msg.header.stamp = rig.node.get_clock().now().to_msg()
            env.compressed[0].publish(msg)
            latest[0] = rig.wait_for_diagnostics(lambda s: camera in s, timeout=10)
            return dropped(latest[0]) > before
        wait_for(counted, timeout=60, what=f'the {kind} frame counted as bad_image')
    assert env.node.alive()
    reconstruct(env, smooth_frames(3, seed=8), ['jpeg'] * 3)
    log = env.node.log()
    assert 'dropping a malformed frame' in log and 'Traceback' not in log


# ------------------------------------------------------------------ object masks

MASKS = [topic.replace('image_raw', 'object_mask') for topic in CAMERAS]


def test_masks_crop_and_blank_the_clutter_around_the_object(env: Env) -> None:
    rig = env.rig
    assert rig.change_state(Transition.TRANSITION_DEACTIVATE)
    assert rig.change_state(Transition.TRANSITION_CLEANUP)
    assert all(r.successful for r in rig.set_parameters(
        image_transport='raw', mask_topics=MASKS, mask_timeout_s=0.5))
    assert rig.change_state(Transition.TRANSITION_CONFIGURE), env.node.log()[-2000:]
    assert rig.change_state(Transition.TRANSITION_ACTIVATE)
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                     reliability=ReliabilityPolicy.BEST_EFFORT)
    images = [rig.node.create_publisher(Image, t, qos) for t in CAMERAS]
    masks = [rig.node.create_publisher(Image, t, qos) for t in MASKS]
    wait_for(lambda: all(p.get_subscription_count() for p in images + masks), timeout=30,
             what='the node to subscribe to images and masks')

    rng = np.random.default_rng(3)
    objects = smooth_frames(3, seed=11)
    cluttered, plain, object_masks = [], [], []
    for k, obj in enumerate(objects):  # an object off-centre, clutter all around it
        mask = np.zeros((96, 128), np.uint8)
        cv2.ellipse(mask, (40 + 20 * k, 50), (22, 30), 10 * k, 0, 360, 255, -1)
        scene = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        blank = np.full((96, 128, 3), 240, np.uint8)
        scene[mask > 0] = blank[mask > 0] = obj[mask > 0]
        cluttered.append(scene)
        plain.append(blank)
        object_masks.append(mask)

    def send(frames: list[np.ndarray], frame_masks: list[Optional[Image]], **kw: Any) -> int:
        stamp = rig.fresh_stamp(5 * SYNC_SLOP_S)
        for k in range(3):
            images[k].publish(array_to_image(frames[k], encoding='rgb8',
                                             stamp=ns_to_stamp(stamp)))
            if frame_masks[k] is not None:
                frame_masks[k].header.stamp = ns_to_stamp(stamp)
                masks[k].publish(frame_masks[k])
        return stamp

    def cloud_of(frames: list[np.ndarray]) -> Any:
        for _ in range(6):
            stamp = send(frames, [array_to_image(m, encoding='mono8') for m in object_masks])
            try:
                return rig.wait_for_cloud(stamp, timeout=10.0)
            except TimeoutError:
                pass
        raise AssertionError('no cloud for a set with masks')
    a, b = cloud_to_array(cloud_of(cluttered)), cloud_to_array(cloud_of(plain))
    # Nearly: shrinking blurs a pixel or two of clutter into the object's outline.
    assert abs(len(a) - len(b)) <= 0.01 * len(b)

    camera = f'pix2voxpp: camera {CAMERAS[0]}'
    good_mask = array_to_image(object_masks[0], encoding='mono8')
    cases = {
        'no_mask': None,
        'empty_mask': array_to_image(np.zeros((96, 128), np.uint8), encoding='mono8'),
        'bad_mask': array_to_image(np.full((48, 64), 255, np.uint8), encoding='mono8'),
        'bad_mask_encoding': array_to_image(np.full((96, 128, 3), 255, np.uint8),
                                            encoding='rgb8'),
    }
    for kind, bad in cases.items():
        reason = kind[:8] if kind.startswith('bad_mask') else kind
        before = [int(rig.wait_for_diagnostics(lambda s: camera in s)[camera][2]
                      [f'frames_dropped.{reason}'])]

        def counted() -> bool:
            send(cluttered, [bad, good_mask, good_mask])
            statuses = rig.wait_for_diagnostics(lambda s: camera in s, timeout=10)
            return int(statuses[camera][2][f'frames_dropped.{reason}']) > before[0]
        wait_for(counted, timeout=60, what=f'a frame dropped as {reason} ({kind})')
    assert env.node.alive()
    cloud_of(plain)  # alive and publishing
    assert 'Traceback' not in env.node.log()
