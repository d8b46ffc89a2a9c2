"""``pix2voxpp-demo``: the simulated rig and the reconstruction node end to end, scored.

For machines without ``ros2 launch``: starts ``sim_camera_rig`` and ``pix2voxpp_node`` as separate
processes with the same parameter files as ``launch/demo.launch.py``, listens to what they publish
over DDS, and scores every reconstructed cloud against the rig's ground truth of the same stamp
(IoU of occupied voxels). Writes, under ``--out``: per object a picture of the camera views, the
reconstruction and the ground truth, and ``summary.json``.

``--scene`` picks the rig's scene (``plain``: today's centred objects; ``tabletop``: clutter,
off-centre objects, cameras of different kinds; ``wrist``: one orbiting camera, which the node
takes in its moving-camera mode). In the cluttered scenes the node crops around the rig's true
object masks (a stand-in for a segmentation node) unless ``--no-masks``; ``--compressed`` sends
JPEG images.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import cv2
import numpy as np

from ..core.voxels import write_ply

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = PACKAGE_DIR / 'weights' / 'pix2voxpp_f_synthetic.pth'
RESOLUTION = 32
NUM_CAMERAS = 3
SCENES = ('plain', 'tabletop', 'wrist')
# The wrist scene's key frames: three views a second apart (30 degrees of the rig's 12 s orbit).
WRIST_VIEWS = 3
WRIST_VIEW_INTERVAL_S = 1.0
CLOUD_FIELDS = ('x', 'y', 'z', 'occupancy')  # the node's ~/occupancy fields
NODE_NAME = 'pix2voxpp'  # reconstruction_node.NODE_NAME; importing that module would load torch
NODE_READY_TIMEOUT_S = 120.0  # loading and warming up the weights on a busy CPU


def config_dir() -> Path:
    """Return the folder of the demo's parameter files: the source tree's, else share/."""
    source = PACKAGE_DIR.parent / 'config'
    if (source / 'demo_rig.yaml').is_file():
        return source
    from ament_index_python.packages import get_package_share_directory
    try:
        return Path(get_package_share_directory('pix2voxpp_ros')) / 'config'
    except (LookupError, OSError) as exc:  # not installed, or AMENT_PREFIX_PATH unset
        raise FileNotFoundError('cannot find the demo parameter files: no config/ beside the '
                                'package and pix2voxpp_ros is not in the ament index') from exc


def cloud_to_voxels(points: np.ndarray, object_size_m: float) -> np.ndarray:
    """Turn voxel-centre points (ROS axes, metres) back into a boolean grid indexed in ROS axes.

    :param points: ``(N, 3)`` centres as the node publishes them.
    :returns: ``(32, 32, 32)`` bool; index ``[a, b, c]`` runs along ROS x, y, z.
    """
    grid = np.zeros((RESOLUTION,) * 3, dtype=bool)
    if len(points):
        index = np.floor((points / object_size_m + 0.5) * RESOLUTION).astype(int)
        index = np.clip(index, 0, RESOLUTION - 1)
        grid[index[:, 0], index[:, 1], index[:, 2]] = True
    return grid


def ros_grid_to_shapenet(grid: np.ndarray) -> np.ndarray:
    """Invert :func:`pix2voxpp_ros.ros.conversions.grid_to_ros_axes` (for pictures)."""
    from ..core.voxels import SHAPENET_TO_ROS
    order = [int(np.argmax(row)) for row in SHAPENET_TO_ROS]  # ROS axis i reads ShapeNet order[i]
    return np.ascontiguousarray(grid.transpose(np.argsort(order)))


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean grids (1.0 when both are empty)."""
    union = np.logical_or(prediction, truth).sum()
    return float(np.logical_and(prediction, truth).sum() / union) if union else 1.0


def format_score(name: str, value: float, points: int, truth_voxels: int, *,
                 detail: str = '') -> str:
    """One line of the IoU table (the demo's and ``pix2voxpp-bag --truth-topic``'s)."""
    return (f'  {name:<14} IoU {value:.3f}  ({points} voxels reconstructed, {truth_voxels} '
            f'true{detail})')


@dataclass
class ScoredObject:
    """One object of the demo and the first reconstruction made only from its views."""

    name: str
    stamp_ns: int
    iou: float
    points: int
    truth_voxels: int
    latency_s: float
    prediction: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    views: list[np.ndarray] = field(repr=False)
    cloud: np.ndarray = field(repr=False)  # (N, 4) x, y, z, occupancy as published
    masks: list[np.ndarray] = field(default_factory=list, repr=False)  # mono8, when the rig has


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='pix2voxpp-demo', description=__doc__.split('\n')[0])
    parser.add_argument('--objects', type=int, default=5,
                        help='objects to reconstruct and score (default 5)')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS,
                        help='checkpoint for the node (default: the demo weights trained on '
                             "synthetic objects; the authors' release files work too)")
    parser.add_argument('--out', type=Path, default=Path('out/demo'), help='output folder')
    parser.add_argument('--object-switch-s', type=float, default=None,
                        help='seconds per object (default: config/demo_rig.yaml)')
    parser.add_argument('--timeout-s', type=float, default=420.0,
                        help='give up after this many seconds (default 420)')
    parser.add_argument('--device', default='auto', help='node device: auto, cpu, cuda, cuda:N')
    parser.add_argument('--backend', default='auto',
                        help='node inference backend: auto (OpenVINO on the CPU when installed), '
                             'torch or openvino')
    parser.add_argument('--precision', default='auto',
                        help='node precision (default auto: bf16 where the hardware has it)')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for the demo (default: random, keeps runs apart)')
    parser.add_argument('--config-dir', type=Path, default=None,
                        help='folder with demo_rig.yaml and demo_node.yaml')
    parser.add_argument('--record', type=Path, metavar='BAG',
                        help="instead of the live demo: render the rig's --objects objects "
                             'of --scene straight into a new rosbag2 bag (images, or JPEG with '
                             '--compressed; object masks unless --no-masks or plain; camera '
                             'infos, ground truth, object names; no DDS) for pix2voxpp-bag')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='storage of the --record bag (default mcap)')
    parser.add_argument('--scene', choices=SCENES, default='plain',
                        help="the rig's scene: plain (default), tabletop (clutter, three "
                             'different cameras) or wrist (one orbiting camera)')
    parser.add_argument('--no-masks', dest='masks', action='store_false',
                        help='tabletop and wrist: crop around the image centre instead of the '
                             "rig's object masks (plain never uses masks)")
    parser.add_argument('--compressed', action='store_true',
                        help='the rig publishes JPEG CompressedImage and the node subscribes '
                             'with image_transport compressed')
    return parser.parse_args(argv)


@dataclass(frozen=True)
class DemoSetup:
    """What a scene changes in the demo: parameter overrides and how the scorer listens."""

    scene: str
    masks: bool
    compressed: bool
    cameras: int
    settle_s: float
    rig_parameters: tuple[str, ...]
    node_parameters: tuple[str, ...]

    def rig_overrides(self) -> dict[str, object]:
        """Return :attr:`rig_parameters` as values (YAML, as ``-p name:=value`` reads them)."""
        import yaml
        pairs = (p.partition(':=') for p in self.rig_parameters)
        return {name: yaml.safe_load(text) for name, _, text in pairs}


def demo_setup(scene: str = 'plain', *, masks: bool = True,
               compressed: bool = False) -> DemoSetup:
    """Return the rig and node overrides of a scene; plain without them is today's demo.

    :raises ValueError: unknown scene.
    """
    if scene not in SCENES:
        raise ValueError(f'scene must be one of {", ".join(SCENES)}, got {scene!r}')
    masks = masks and scene != 'plain'
    cameras = 1 if scene == 'wrist' else NUM_CAMERAS
    rig, node = [], []
    if scene != 'plain':
        rig.append(f'scene:={scene}')
    if compressed:
        rig.append('compressed:=true')
        node.append('image_transport:=compressed')
    if scene == 'wrist':
        node += ["camera_topics:=['/rig/camera_0/image_raw']", 'min_views:=0',
                 f'views_per_reconstruction:={WRIST_VIEWS}',
                 f'min_view_interval_s:={WRIST_VIEW_INTERVAL_S}',
                 # The oldest key frame must still be fresh when the newest arrives.
                 f'max_frame_age_s:={WRIST_VIEWS * WRIST_VIEW_INTERVAL_S + 1.0}']
    if masks:
        topics = ', '.join(f"'/rig/camera_{i}/object_mask'" for i in range(cameras))
        node.append(f'mask_topics:=[{topics}]')
    # A moving camera's first clouds of an object still hold key frames of the one before:
    # score only clouds whose key frames can all be of the object.
    settle_s = (WRIST_VIEWS - 1) * (WRIST_VIEW_INTERVAL_S + 0.5) if scene == 'wrist' else 0.0
    return DemoSetup(scene=scene, masks=masks, compressed=compressed, cameras=cameras,
                     settle_s=settle_s, rig_parameters=tuple(rig), node_parameters=tuple(node))


def start_demo_processes(args: argparse.Namespace, env: dict[str, str], folder: Path, *,
                         rig_parameters: Sequence[str] = (),
                         node_parameters: Sequence[str] = (),
                         node_ready: Optional[Callable[[], bool]] = None,
                         ready_timeout_s: float = NODE_READY_TIMEOUT_S) -> list[subprocess.Popen]:
    """Start the node and the rig as their own processes; their logs go to ``folder``.

    With ``node_ready``, the rig starts only once it returns true (the node has loaded its
    weights and subscribed), so the first object is not shown to a node still loading and the
    demo always scores the same objects; after ``ready_timeout_s``, or if the node exits, the
    rig starts anyway and the caller sees what the node logged.

    :param args: needs ``config_dir``, ``object_switch_s``, ``weights``, ``device``,
        ``backend`` and ``precision``.
    :param rig_parameters: more ``name:=value`` overrides of the rig (e.g. for the soak test).
    :param node_parameters: more ``name:=value`` overrides of the node.
    :returns: ``[rig, node]``.
    """
    config = args.config_dir or config_dir()
    rig_cmd = [sys.executable, '-m', 'pix2voxpp_ros.ros.sim_camera_rig', '--ros-args',
               '-r', '__ns:=/rig', '--params-file', str(config / 'demo_rig.yaml')]
    if args.object_switch_s is not None:
        rig_cmd += ['-p', f'object_switch_s:={args.object_switch_s}']
    node_cmd = [sys.executable, '-m', 'pix2voxpp_ros.ros.reconstruction_node', '--ros-args',
                '--params-file', str(config / 'demo_node.yaml'),
                '-p', f'weights:={args.weights.resolve()}', '-p', f'device:={args.device}',
                '-p', f'backend:={args.backend}', '-p', f'precision:={args.precision}']
    for command, overrides in ((rig_cmd, rig_parameters), (node_cmd, node_parameters)):
        for override in overrides:
            command += ['-p', override]

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(folder / f'{name}.log', 'w')
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    node = start('node', node_cmd)
    if node_ready is not None:
        deadline = time.monotonic() + ready_timeout_s
        while node.poll() is None and time.monotonic() < deadline and not node_ready():
            time.sleep(0.1)
    return [start('rig', rig_cmd), node]


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ctrl-C each process, wait for them, kill what hangs."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Scorer:
    """Collect the rig's truth and views and the node's clouds; pair them by stamp."""

    def __init__(self, node, *, object_size_m: float, cameras: int = NUM_CAMERAS,
                 compressed: bool = False, masks: bool = False, settle_s: float = 0.0) -> None:
        # node: rclpy.node.Node; masks: also keep the rig's object masks (for the pictures);
        # settle_s: score clouds stamped at least this long after their object's first tick.
        from sensor_msgs.msg import CompressedImage, Image, PointCloud2
        from std_msgs.msg import String

        from .conversions import compressed_to_array, image_to_array, stamp_to_ns
        self._image_to_array = image_to_array
        self._compressed_to_array = compressed_to_array
        self.cameras = cameras
        self.compressed = compressed
        self.settle_ns = int(settle_s * 1e9)
        self._stamp_to_ns = stamp_to_ns
        self.object_size_m = object_size_m
        self.lock = threading.Lock()
        self.names: dict[int, str] = {}  # tick stamp -> object name
        self.truths: dict[int, np.ndarray] = {}  # tick stamp -> truth grid (ROS axes)
        self.views: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> rgb
        self.masks: dict[int, dict[int, np.ndarray]] = {}  # tick stamp -> camera -> mono8
        self.clouds: list[tuple[int, np.ndarray, float]] = []  # not yet scored clouds
        self.latencies: list[float] = []
        self.scored: dict[str, ScoredObject] = {}  # object name -> its first scored cloud
        qos = 10
        node.create_subscription(String, '/rig/sim_camera_rig/object', self._on_object, qos)
        node.create_subscription(PointCloud2, '/rig/sim_camera_rig/ground_truth',
                                 self._on_truth, qos)
        node.create_subscription(PointCloud2, '/pix2voxpp/occupancy', self._on_cloud, qos)
        for i in range(cameras):
            if compressed:
                node.create_subscription(CompressedImage, f'/rig/camera_{i}/image_raw/compressed',
                                         lambda msg, i=i: self._on_image(i, msg), qos)
            else:
                node.create_subscription(Image, f'/rig/camera_{i}/image_raw',
                                         lambda msg, i=i: self._on_image(i, msg), qos)
            if masks:
                node.create_subscription(Image, f'/rig/camera_{i}/object_mask',
                                         lambda msg, i=i: self._on_mask(i, msg), qos)

    def node_listening(self, node) -> bool:
        """Whether the reconstruction node subscribes to the first camera (it is active)."""
        topic = ('/rig/camera_0/image_raw/compressed' if self.compressed
                 else '/rig/camera_0/image_raw')
        return any(info.node_name == NODE_NAME
                   for info in node.get_subscriptions_info_by_topic(topic))

    @staticmethod
    def cloud_points(msg, fields: tuple[str, ...] = ('x', 'y', 'z')) -> np.ndarray:
        """Return fields of a cloud in the node's layout as ``(N, len(fields))`` float32."""
        rows = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(-1, msg.point_step // 4)
        offsets = {f.name: f.offset // 4 for f in msg.fields}
        return rows[:, [offsets[name] for name in fields]]

    def _on_object(self, msg) -> None:
        name, stamp = msg.data.rsplit(' ', 1)
        with self.lock:
            self.names[int(stamp)] = name

    def _on_truth(self, msg) -> None:
        grid = cloud_to_voxels(self.cloud_points(msg), self.object_size_m)
        with self.lock:
            self.truths[self._stamp_to_ns(msg.header.stamp)] = grid

    def _on_image(self, camera: int, msg) -> None:
        stamp = self._stamp_to_ns(msg.header.stamp)
        with self.lock:
            if len(self.views) > 64:  # keep memory bounded: only recent ticks matter
                del self.views[min(self.views)]
            if hasattr(msg, 'format'):  # CompressedImage: decoded as BGR
                image = cv2.cvtColor(self._compressed_to_array(msg)[0], cv2.COLOR_BGR2RGB)
            else:
                image = self._image_to_array(msg)
            self.views.setdefault(stamp, {})[camera] = image

    def _on_mask(self, camera: int, msg) -> None:
        stamp = self._stamp_to_ns(msg.header.stamp)
        with self.lock:
            if len(self.masks) > 64:
                del self.masks[min(self.masks)]
            self.masks.setdefault(stamp, {})[camera] = self._image_to_array(msg).reshape(
                msg.height, msg.width)

    def _on_cloud(self, msg) -> None:
        stamp = self._stamp_to_ns(msg.header.stamp)
        latency = time.time() - stamp / 1e9  # the rig stamps with the system clock
        with self.lock:
            self.clouds.append((stamp, self.cloud_points(msg, CLOUD_FIELDS).copy(), latency))
            self.latencies.append(latency)

    def score(self) -> list[ScoredObject]:
        """Score the first cloud of each object whose truth and views are known, in order.

        A scored object stays scored; clouds of objects already scored, or too old to ever get
        their truth and views, are forgotten.
        """
        with self.lock:
            waiting = []
            for stamp, cloud, latency in self.clouds:
                name = self.names.get(stamp)
                truth = self.truths.get(stamp)
                views = self.views.get(stamp, {})
                if name in self.scored:
                    continue
                if name is not None and self.settle_ns and stamp - min(
                        s for s, n in self.names.items() if n == name) < self.settle_ns:
                    continue  # may hold key frames of the object before
                if name is None or truth is None or len(views) < self.cameras:
                    if not self.views or stamp >= min(self.views):
                        waiting.append((stamp, cloud, latency))  # its messages may come
                    continue
                prediction = cloud_to_voxels(cloud[:, :3], self.object_size_m)
                masks = self.masks.get(stamp, {})
                self.scored[name] = ScoredObject(
                    name=name, stamp_ns=stamp, iou=iou(prediction, truth), points=len(cloud),
                    truth_voxels=int(truth.sum()), latency_s=latency, prediction=prediction,
                    truth=truth, views=[views[i] for i in range(self.cameras)], cloud=cloud,
                    masks=[masks[i] for i in range(self.cameras)]
                    if len(masks) == self.cameras else [])
            self.clouds = waiting
            return sorted(self.scored.values(), key=lambda s: s.stamp_ns)


def _picture(item: ScoredObject) -> np.ndarray:
    """Camera views (and their masks) on top; reconstruction and ground truth below."""
    from ..core.visualize import render_grid_views
    height = 200

    def row(images: list[np.ndarray]) -> np.ndarray:
        return np.hstack([cv2.resize(v, (int(v.shape[1] * height / v.shape[0]), height),
                                     interpolation=cv2.INTER_AREA) for v in images])
    top = cv2.cvtColor(row(item.views), cv2.COLOR_RGB2BGR)
    if item.masks:
        masks = cv2.cvtColor(row(item.masks), cv2.COLOR_GRAY2BGR)
        top = np.vstack([top, np.full((4, top.shape[1], 3), 255, np.uint8), masks])
    recon = render_grid_views(ros_grid_to_shapenet(item.prediction).astype(np.float32),
                              threshold=0.5, cell_px=5,
                              title=f'reconstruction  IoU {item.iou:.3f}')
    truth = render_grid_views(ros_grid_to_shapenet(item.truth).astype(np.float32),
                              threshold=0.5, cell_px=5, title=f'ground truth  {item.name}')
    bottom = np.hstack([recon, np.full((recon.shape[0], 10, 3), 255, np.uint8), truth])
    width = max(top.shape[1], bottom.shape[1])

    def pad(image: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(image, 0, 0, 0, width - image.shape[1], cv2.BORDER_CONSTANT,
                                  value=(255, 255, 255))
    return np.vstack([pad(top), np.full((10, width, 3), 255, np.uint8), pad(bottom)])


def _record(args: argparse.Namespace) -> int:
    """Render the rig's scenes into a bag (``--record``); returns the exit status."""
    from .bag_io import BagError
    from .param_files import ParamsFileError
    from .rig_bag import record_rig_bag
    config = args.config_dir or config_dir()
    setup = demo_setup(args.scene, masks=args.masks, compressed=args.compressed)
    overrides = setup.rig_overrides()  # what the live demo gives the rig
    if args.object_switch_s is not None:
        overrides['object_switch_s'] = args.object_switch_s
    try:
        counts = record_rig_bag(args.record, params_file=config / 'demo_rig.yaml',
                                overrides=overrides, objects=args.objects, masks=setup.masks,
                                storage=args.storage,
                                progress=lambda line: print(f'  {line}', flush=True))
    except (BagError, ParamsFileError, ValueError) as exc:
        print(f'pix2voxpp-demo: {exc}', file=sys.stderr)
        return 1
    print(f'recorded {sum(counts.values())} messages on {len(counts)} topics -> {args.record}')
    if setup.node_parameters:  # what the live demo gives the node, for pix2voxpp-bag
        options = ' '.join(f'-p "{p}"' if "'" in p else f'-p {shlex.quote(p)}'
                           for p in setup.node_parameters)  # topic lists: readable quotes
        print(f'reconstruct it with: pix2voxpp-bag {shlex.quote(str(args.record))} --params '
              f'{shlex.quote(str(config / "demo_node.yaml"))} --weights '
              f'{shlex.quote(str(args.weights))} {options} --out OUT_BAG')
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Run the demo; returns the process exit status."""
    args = _parse_args(argv)
    if args.record is not None:
        return _record(args)  # no node, so no weights
    if not args.weights.is_file():
        print(f'pix2voxpp-demo: weights file not found: {args.weights}\n'
              "Train them (training/README.md) or pass --weights with the authors' "
              'Pix2Vox++-F-ShapeNet.pth or your own checkpoint.', file=sys.stderr)
        return 2
    if args.objects < 1:
        print(f'pix2voxpp-demo: --objects {args.objects}: must be at least 1', file=sys.stderr)
        return 2
    setup = demo_setup(args.scene, masks=args.masks, compressed=args.compressed)
    domain = args.domain_id if args.domain_id is not None else random.randint(60, 200)
    os.environ['ROS_DOMAIN_ID'] = str(domain)  # before rclpy.init: this process listens there
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # all on this machine
    if setup.scene != 'plain':
        # 1280x720 frames (2.7 MB) arrive seconds late, past max_frame_age_s, through Fast
        # DDS's default 512 KB shared-memory segment.
        os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                              str((args.config_dir or config_dir()) / 'fastdds_large_images.xml'))
    args.out.mkdir(parents=True, exist_ok=True)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init(args=[])
    node = rclpy.create_node('pix2voxpp_demo_scorer')
    scorer = Scorer(node, object_size_m=0.5, cameras=setup.cameras,
                    compressed=setup.compressed, masks=setup.masks, settle_s=setup.settle_s)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    print(f'pix2voxpp-demo: {setup.scene} scene, weights {args.weights}, ROS_DOMAIN_ID '
          f'{domain}, {args.objects} object(s){", masks" if setup.masks else ""}'
          f'{", JPEG" if setup.compressed else ""}; logs in {args.out}/')
    processes = start_demo_processes(args, dict(os.environ), args.out,
                                     rig_parameters=setup.rig_parameters,
                                     node_parameters=setup.node_parameters,
                                     node_ready=lambda: scorer.node_listening(node))
    start = time.monotonic()
    scored: list[ScoredObject] = []
    reported = 0
    try:
        while len(scored) < args.objects:
            if time.monotonic() - start > args.timeout_s:
                print(f'pix2voxpp-demo: timed out after {args.timeout_s:.0f} s with '
                      f'{len(scored)} of {args.objects} objects; see {args.out}/*.log',
                      file=sys.stderr)
                return 1
            for process, name in zip(processes, ('rig', 'node')):
                if process.poll() is not None:
                    print(f'pix2voxpp-demo: the {name} process exited ({process.returncode}); '
                          f'see {args.out}/{name}.log', file=sys.stderr)
                    return 1
            time.sleep(0.2)
            scored = scorer.score()[:args.objects]
            for item in scored[reported:]:
                print(format_score(item.name, item.iou, item.points, item.truth_voxels,
                                   detail=f', latency {item.latency_s * 1000:.0f} ms'),
                      flush=True)
            reported = len(scored)
    finally:
        stop_processes(processes)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()

    for k, item in enumerate(scored):
        path = args.out / f'{k:02d}_{item.name.replace("/", "_")}.png'
        cv2.imwrite(str(path), _picture(item))
        # The scored cloud as the node published it (metres, ROS axes, occupancy).
        write_ply(path.with_suffix('.ply'), item.cloud[:, :3], item.cloud[:, 3])
    latencies = sorted(scorer.latencies)
    mean_iou = statistics.fmean(item.iou for item in scored)
    summary = {
        'objects': [{'name': s.name, 'iou': round(s.iou, 4), 'stamp_ns': s.stamp_ns,
                     'points': s.points, 'truth_voxels': s.truth_voxels,
                     'latency_s': round(s.latency_s, 4)} for s in scored],
        'mean_iou': round(mean_iou, 4),
        'latency_s': {'median': round(statistics.median(latencies), 4),
                      'p95': round(latencies[int(0.95 * (len(latencies) - 1))], 4),
                      'clouds': len(latencies)},
        'weights': str(args.weights), 'cameras': setup.cameras,
        'scene': setup.scene, 'masks': setup.masks, 'compressed': setup.compressed,
    }
    (args.out / 'summary.json').write_text(json.dumps(summary, indent=2))
    print(f'mean IoU {mean_iou:.3f} over {len(scored)} objects; end-to-end latency median '
          f'{summary["latency_s"]["median"] * 1000:.0f} ms; pictures and summary.json in '
          f'{args.out}/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
