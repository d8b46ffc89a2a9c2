"""Benchmark of the reconstruction node's own overhead over real middleware.

A real node (its own process, the ``pix2voxpp_node`` console script) and a real publisher (this
process, its own rclpy context) talk over Fast DDS: each round publishes one frame per camera
(640x480 rgb8 by default) with a common stamp and waits for the cloud with that stamp.

* latency: from just before the newest (last) frame is published to the cloud's arrival here;
* model: the network's own time for that reconstruction, as the node reports it in
  ``/diagnostics`` (``model_ms`` next to ``last_stamp``, matched by stamp);
* overhead = latency - model: transport both ways, conversion, preprocessing, cloud building;
  the node's diagnostics split its own part (``queue_ms``, ``prepare_ms``, ``publish_ms``);
* with ``--baseline``, the same rounds against a trivial echo node (same executor, same QoS; it
  answers a Header once the last camera's frame is in) give the transport floor that no node
  can beat on this machine;
* with ``--masks`` and/or ``--compressed``, the frames are the simulated rig's tabletop scene
  (three 640x480 cameras) and two nodes run one after the other in the same invocation: one on
  the raw images alone, then one with ``mask_topics`` (a mono8 mask per frame, published right
  after it, as a segmenter would) and/or ``image_transport: compressed`` (JPEG, quality 90).
  The report gives both nodes' overhead and the difference of their medians and p95s; the
  clock starts before the round's last message (its last mask when there are masks);
* with ``--placement``, both nodes get the tabletop frames and masks, and the second one also
  places its results (``placement: calibrated``, the cameras' ``camera_info`` published before
  their frames, their poses as ``camera_poses``, the shipped weights unless ``--weights``): the
  difference is what placement adds to the end-to-end latency.

Run::

    .venv/bin/python benchmarks/bench_node.py --rounds 40 --baseline --json bench_node.json
    .venv/bin/python benchmarks/bench_node.py --masks --compressed --json bench_inputs.json
    .venv/bin/python benchmarks/bench_node.py --placement --rounds 30 --json bench_placement.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'test'))  # the shared node/rig helpers of the ROS tests

from ros_helpers import (NodeProcess, Rig, isolate_ros_domain, make_frames,  # noqa: E402
                         wait_for, write_checkpoint, write_params)

# Where the node's own time goes (its /diagnostics): frame arrival -> worker start -> views
# prepared -> network done (model time plus tensor handling) -> cloud published.
BREAKDOWN = ('queue_ms', 'prepare_ms', 'infer_ms', 'publish_ms')
ECHO_TOPIC = '/bench/echo'

# Fast DDS carries a 900 KB best-effort sample between processes intact only when it fits one
# shared-memory segment (default 512 KB); else most frames are lost in fragments. This profile
# enlarges the segment, as a robot streaming raw images between processes would configure it.
LARGE_SHM_PROFILE = Path(__file__).resolve().parents[1] / 'config' / 'fastdds_large_images.xml'
SHIPPED_WEIGHTS = REPO / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cameras', type=int, default=3)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--rounds', type=int, default=40, help='measured rounds')
    parser.add_argument('--warmup', type=int, default=3, help='unmeasured first rounds')
    parser.add_argument('--weights', type=Path,
                        help='checkpoint to use (default: a seeded /F written to a temp dir)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--backend', default='auto', help='node backend: auto, torch, openvino')
    parser.add_argument('--precision', default='fp32', help='node precision, e.g. fp32, bf16')
    parser.add_argument('--num-threads', type=int, default=0, help='0: PyTorch default')
    parser.add_argument('--qos', choices=('best_effort', 'reliable'), default='best_effort',
                        help='image QoS of publisher and node (the node defaults to best_effort)')
    parser.add_argument('--default-transport', action='store_true',
                        help="keep Fast DDS's default 512 KB shared-memory segment (loses most "
                             'best-effort 640x480 frames; reliable then retransmits)')
    parser.add_argument('--baseline', action='store_true',
                        help='also measure the transport floor with a trivial echo node')
    parser.add_argument('--masks', action='store_true',
                        help='also run a node with mask_topics, on the tabletop scene')
    parser.add_argument('--compressed', action='store_true',
                        help='also run a node with image_transport compressed (JPEG)')
    parser.add_argument('--placement', action='store_true',
                        help='compare a node with masks to one that also places its results')
    parser.add_argument('--json', type=Path, help='where to write the results')
    parser.add_argument('--echo', action='store_true', help=argparse.SUPPRESS)  # internal
    return parser.parse_args(argv)


def _summary(values: list[float]) -> dict[str, float]:
    return {'median': statistics.median(values), 'p95': float(np.percentile(values, 95)),
            'min': min(values), 'max': max(values)}


def _image_qos(reliable: bool) -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                      reliability=ReliabilityPolicy.RELIABLE if reliable
                      else ReliabilityPolicy.BEST_EFFORT)


def _echo_server(args: argparse.Namespace) -> int:
    """Run a node that only answers when a set is complete: the transport floor."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    rclpy.init()
    node = rclpy.create_node('bench_echo')
    publisher = node.create_publisher(Header, ECHO_TOPIC, 10)
    last = args.cameras - 1
    for camera in range(args.cameras):
        node.create_subscription(
            Image, f'/bench/cam{camera}/image',
            lambda msg, c=camera: publisher.publish(msg.header) if c == last else None,
            _image_qos(args.qos == 'reliable'))
    executor = MultiThreadedExecutor(num_threads=4)  # as the node's
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


def _rounds(args: argparse.Namespace, rig: Rig, outgoing: list[tuple[Any, Any]],
            received_at: Callable[[int], float | None],
            per_round: Callable[[int], dict[str, float]] | None = None) -> list[dict]:
    """Publish a set per round and time it until ``received_at(stamp)`` gives a time.

    :param outgoing: ``(publisher, message)`` in publishing order; all get the round's stamp.
    """
    from pix2voxpp_ros.ros.conversions import ns_to_stamp

    samples = []
    for index in range(args.warmup + args.rounds):
        stamp = rig.now_ns()
        for _, msg in outgoing:
            msg.header.stamp = ns_to_stamp(stamp)
        for publisher, msg in outgoing[:-1]:
            publisher.publish(msg)
        start = time.monotonic()
        outgoing[-1][0].publish(outgoing[-1][1])
        try:
            received = wait_for(lambda: received_at(stamp), timeout=10, interval=0.0005,
                                what='the answer')
        except TimeoutError:
            print(f'round {index}: no answer (a frame was lost?); skipped', flush=True)
            continue
        extra = per_round(stamp) if per_round else {}
        if index >= args.warmup:
            samples.append({'latency_ms': (received - start) * 1e3, **extra})
        time.sleep(0.05)  # let both processes settle between rounds
    return samples


def _node_rounds(args: argparse.Namespace, tmp: Path, frames: list[np.ndarray],
                 masks: list[np.ndarray] | None = None, compressed: bool = False,
                 cameras: list[Any] | None = None) -> list[dict]:
    """Run a node on ``frames`` (with ``masks`` on mask topics, JPEG when ``compressed``).

    With ``cameras`` (the frames' simulated cameras) the node places its results from their
    ``camera_info`` and fixed poses.
    """
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from pix2voxpp_ros.ros.conversions import (array_to_compressed, array_to_image,
                                               compressed_topic, stamp_to_ns)

    weights = args.weights or write_checkpoint(tmp / 'f.pth', threshold=0.5)
    topics = [f'/bench/cam{i}/image' for i in range(args.cameras)]
    mask_topics = [f'/bench/cam{i}/mask' for i in range(args.cameras)] if masks else []
    label = (('masks_' if masks else '') + ('compressed_' if compressed else '')
             + ('placed_' if cameras else ''))
    values = {
        'weights': str(weights), 'camera_topics': topics, 'min_views': 0, 'max_rate_hz': 0.0,
        'max_frame_age_s': 5.0, 'device': args.device, 'num_threads': args.num_threads,
        'backend': args.backend, 'precision': args.precision, 'qos_reliability': args.qos,
        'image_transport': 'compressed' if compressed else 'raw', 'mask_topics': mask_topics}
    if cameras:
        # Every fit is timed, good or poor: the benchmark measures time, not acceptance.
        values.update(placement='calibrated', fixed_frame='world', min_placement_iou=0.0,
                      camera_poses=_camera_pose_numbers(cameras))
    params = write_params(tmp / f'{label}params.yaml', values)
    node = NodeProcess(params, log_path=tmp / f'{label}node.log')
    rig = Rig([] if compressed else topics, reliable=args.qos == 'reliable')
    if compressed:
        qos = _image_qos(args.qos == 'reliable')
        rig.publishers = [rig.node.create_publisher(CompressedImage, compressed_topic(t), qos)
                          for t in topics]
        messages = [array_to_compressed(f, encoding='rgb8', quality=90) for f in frames]
    else:
        messages = [array_to_image(f, encoding='rgb8') for f in frames]
    outgoing = list(zip(rig.publishers, messages))
    if cameras:
        from std_msgs.msg import Header

        from pix2voxpp_ros.ros.sim_camera_rig import camera_info
        info_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        infos = [(rig.node.create_publisher(CameraInfo, f'/bench/cam{i}/camera_info', info_qos),
                  camera_info(camera, Header(frame_id=f'cam{i}_optical')))
                 for i, camera in enumerate(cameras)]
        outgoing = infos + outgoing  # each camera's calibration before its frame
    if masks:
        # Masks are small and a segmenter's output: reliable, as a node's outputs are.
        mask_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        mask_publishers = [rig.node.create_publisher(Image, t, mask_qos) for t in mask_topics]
        outgoing += zip(mask_publishers, [array_to_image(m, encoding='mono8') for m in masks])

    def cloud_time(stamp: int) -> float | None:
        with rig.lock:
            return next((t for t, m in reversed(rig.clouds)
                         if stamp_to_ns(m.header.stamp) == stamp), None)

    def diagnostics(stamp: int) -> dict[str, float]:
        text = f'{stamp // 10**9}.{stamp % 10**9:09d}'
        values = rig.wait_for_diagnostics(
            lambda s: s['pix2voxpp: reconstruction'][2]['last_stamp'] == text,
            timeout=10, what='diagnostics of the round')['pix2voxpp: reconstruction'][2]
        return {'model_ms': float(values['model_ms']),
                'node_internal_ms': float(values['latency_ms']) - float(values['model_ms']),
                **{k: float(values[k]) for k in BREAKDOWN}}
    try:
        wait_for(lambda: all(p.get_subscription_count() > 0 for p, _ in outgoing),
                 timeout=120, what='the node to subscribe to every topic')
        samples = _rounds(args, rig, outgoing, cloud_time, diagnostics)
    finally:
        rig.close()
        node.stop()
    for sample in samples:
        sample['overhead_ms'] = sample['latency_ms'] - sample['model_ms']
    return samples


def _echo_rounds(args: argparse.Namespace, tmp: Path, messages: list) -> list[dict]:
    from std_msgs.msg import Header

    from pix2voxpp_ros.ros.conversions import stamp_to_ns

    command = [sys.executable, __file__, '--echo', '--cameras', str(args.cameras),
               '--qos', args.qos]
    with open(tmp / 'echo.log', 'wb') as log:
        echo = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    rig = Rig([f'/bench/cam{i}/image' for i in range(args.cameras)],
              reliable=args.qos == 'reliable')
    answers: dict[int, float] = {}
    rig.node.create_subscription(
        Header, ECHO_TOPIC, lambda h: answers.setdefault(stamp_to_ns(h.stamp), time.monotonic()),
        10)
    try:
        rig.wait_for_subscribers(timeout=120)
        return _rounds(args, rig, list(zip(rig.publishers, messages)), answers.get)
    finally:
        rig.close()
        echo.send_signal(2)
        echo.wait(30)


def _camera_pose_numbers(cameras: list[Any]) -> list[float]:
    """``camera_poses`` of the scene's cameras, the scene placed at the fixed frame's origin."""
    from pix2voxpp_ros.core.geometry import matrix_to_quaternion
    from pix2voxpp_ros.core.placement import ObjectPose
    from pix2voxpp_ros.core.synthetic.world import camera_to_fixed

    numbers: list[float] = []
    for camera in cameras:
        pose = camera_to_fixed(camera, ObjectPose((0.0, 0.0, 0.0), 0.0, 0.5))
        numbers += [float(v) for v in pose[:3, 3]] + list(matrix_to_quaternion(pose[:3, :3]))
    return numbers


def _tabletop_frames(args: argparse.Namespace
                     ) -> tuple[list[np.ndarray], list[np.ndarray], list[Any]]:
    """Render the rig's tabletop scene from ``args.cameras`` cameras: views, masks, cameras."""
    from pix2voxpp_ros.core.synthetic.dataset import dataset_object
    from pix2voxpp_ros.core.synthetic.scenes import (CameraProfile, make_tabletop_scene,
                                                     render_scene_view, tabletop_cameras)

    scene = make_tabletop_scene(dataset_object('chair', 0, seed=20261125), seed=1)
    profile = CameraProfile(args.width, args.height, 60.0, 2.6)
    cameras = tabletop_cameras(args.cameras, seed=1, profiles=(profile,))
    views = [render_scene_view(scene, camera) for camera in cameras]
    return ([v.image for v in views],
            [np.where(v.mask, 255, 0).astype(np.uint8) for v in views], cameras)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print median and p95 and write JSON."""
    args = _parse_args(argv)
    isolate_ros_domain()
    tmp = Path(tempfile.mkdtemp(prefix='bench_node_'))
    if not args.default_transport and 'FASTDDS_DEFAULT_PROFILES_FILE' not in os.environ:
        os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = str(LARGE_SHM_PROFILE)
    if args.echo:
        return _echo_server(args)
    from pix2voxpp_ros.ros.conversions import array_to_image

    if args.placement:
        args.masks = True
        args.weights = args.weights or SHIPPED_WEIGHTS  # random weights give nothing to place
    variant = args.masks or args.compressed
    if variant:
        frames, masks, cameras = _tabletop_frames(args)
    else:
        frames = make_frames(args.cameras, height=args.height, width=args.width, seed=0)
    messages = [array_to_image(f, encoding='rgb8') for f in frames]
    # The placing node is compared with the same node without placement, masks and all.
    samples = _node_rounds(args, tmp, frames, masks if args.placement else None)
    if not samples:
        print('no samples', file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        'command': ' '.join(['python'] + [str(a) for a in sys.argv]),
        'machine': {'cpus': os.cpu_count(), 'platform': platform.platform(),
                    'torch': torch.__version__, 'device': args.device,
                    'backend': args.backend, 'precision': args.precision,
                    'load_average_at_end': os.getloadavg()},
        'cameras': args.cameras, 'image': f'{args.width}x{args.height} rgb8', 'qos': args.qos,
        'frames': 'tabletop scene' if variant else 'random',
        'baseline_masks': bool(args.placement),
        'fastdds_profile': os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE', 'default'),
        'rounds': len(samples),
        **{key: _summary([s[key] for s in samples]) for key in samples[0]},
    }
    keys = ['latency_ms', 'model_ms', 'overhead_ms', 'node_internal_ms', *BREAKDOWN]
    if args.baseline:
        floor = _echo_rounds(args, tmp, messages)
        result['transport_floor_ms'] = _summary([s['latency_ms'] for s in floor])
        result['overhead_above_floor_ms'] = (result['overhead_ms']['median'] -
                                             result['transport_floor_ms']['median'])
        keys.append('transport_floor_ms')
    result['samples'] = samples
    for key in keys:
        print(f'{key:19s} median {result[key]["median"]:8.2f}   p95 {result[key]["p95"]:8.2f}')
    if variant:
        name = ' + '.join(n for n, on in (('masks', args.masks and not args.placement),
                                          ('JPEG', args.compressed),
                                          ('placement', args.placement)) if on)
        other = _node_rounds(args, tmp, frames, masks if args.masks else None, args.compressed,
                             cameras if args.placement else None)
        if not other:
            print(f'no samples with {name}', file=sys.stderr)
            return 1
        summary = {key: _summary([s[key] for s in other]) for key in other[0]}
        extra = {stat: summary['overhead_ms'][stat] - result['overhead_ms'][stat]
                 for stat in ('median', 'p95')}
        result['variant'] = {'name': name, 'rounds': len(other), **summary,
                             'extra_overhead_ms': extra, 'samples': other}
        print(f'--- with {name}')
        for key in ['latency_ms', 'model_ms', 'overhead_ms', 'node_internal_ms', *BREAKDOWN]:
            print(f'{key:19s} median {summary[key]["median"]:8.2f}   p95 '
                  f'{summary[key]["p95"]:8.2f}')
        print(f'overhead with {name} minus without: median {extra["median"]:+.2f} ms, p95 '
              f'{extra["p95"]:+.2f} ms')
    if args.baseline:
        print(f'overhead above the transport floor (medians): '
              f'{result["overhead_above_floor_ms"]:.2f} ms')
    path = args.json or tmp / 'bench_node.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f'load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
