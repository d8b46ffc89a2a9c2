"""``pix2voxpp-bag``: reconstruct every view set of a rosbag2 recording, offline, into a new bag.

Reads a bag (mcap or sqlite3, as ``ros2 bag record`` writes them), assembles view sets exactly as
the node does with the node's own parameters file, and writes what the node would publish for
each set (``~/occupancy``, ``~/markers``, ``~/grid``, stamped like the set) into a new bag, plus
``summary.json`` in it. Time is the recording's: frame ages, sync slop and ``max_rate_hz`` are
judged against the recorded stamps, so the result does not depend on how fast this machine
reads. The node's robot inputs work alike: ``image_transport: compressed`` reads
sensor_msgs/CompressedImage on ``<camera topic>/compressed``, and ``mask_topics`` pairs every
frame with the recorded mask of its stamp (``mask_timeout_s`` of recorded time); dropped frames
are counted by the node's reasons. Several sets run per forward pass (``--batch``), while a
second thread reads, decodes and preprocesses the next ones. With ``--truth-topic`` every
reconstruction is scored against a recorded ground-truth cloud of the same stamp, as
``pix2voxpp-demo`` scores.

With ``placement: calibrated`` every reconstruction is placed as the node places it: the
recorded ``camera_info`` and ``/tf``, ``/tf_static`` (or ``camera_poses``) give each frame's
intrinsics and camera pose at its stamp, the node's
:func:`~pix2voxpp_ros.core.calibration.place_view_set` fits the pose and metric size, and the
outputs are in ``fixed_frame`` with ``~/object_pose`` and the object's frame on ``/tf``. A set
that cannot be placed is dropped (``placement_failed``), as the node drops it. With ``mask_mode:
instances`` every object of each set is reconstructed, placed and written as the node publishes
it (:mod:`.bag_objects`).

What needs ROS: the frames go through the core's pipeline (:mod:`.bag_input`); reading the bag
needs only ``rosbags``, but the images are converted by :mod:`..ros.conversions` (its own numpy
path), which imports the ROS message packages, and the output messages are built as the node
builds them: ``std_msgs`` Header, ``sensor_msgs`` PointCloud2, ``visualization_msgs``
MarkerArray (placed: ``geometry_msgs`` PoseStamped), serialized with ``rclpy.serialization``;
``/tf`` is written with rosbags' own ``tf2_msgs`` definition (the wheels have no
``tf2_msgs``). So the tool runs where the ROS Python message packages are installed (the venv's
wheels or a sourced ROS), without a running ROS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
from ..core.calibration import PlacedGrid, PlacementFailedError, place_view_set
from ..core.drops import DropReason
from ..core.errors import Pix2VoxError
from ..core.inference import InferenceError, Reconstructor
from ..core.node_config import NodeConfig
from ..core.offline import PreparedSet, in_background, stack_batch
from ..core.voxels import grid_to_points, grid_to_ros_axes, write_ply
from ..ros.bag_files import StagedFolder
from ..ros.bag_io import BagError
from . import bag_report
from .bag_input import (PROG, BagRunStats, BagUsageError, Inputs, PlacingSet, RecordedSets,
                        Truth, check_inputs, count_drops, load_config, prepare_frames, produce)
from .bag_objects import ObjectSets
from .options import add_inference_options

DEFAULT_BATCH = 8  # measured on 2 CPU cores: see the README's Performance section
OUTPUT_KINDS = ('occupancy', 'markers', 'grid')
TF_OUTPUT = '/tf'  # placement calibrated: fixed_frame -> frame_id, the object's frame


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n')[0].split(': ', 1)[1],
        epilog="Parameters: the node's YAML file (--params), then -p NAME:=VALUE, then the "
               'named options below. trigger: service reconstructs like auto offline; '
               'qos_reliability and autostart do not apply.')
    add = parser.add_argument
    add('bag', type=Path, metavar='IN_BAG',
        help='rosbag2 directory, or a single .mcap / .db3 file')
    add('--out', required=True, type=Path, metavar='OUT_BAG',
        help='new bag to write (a directory; must not exist unless --overwrite)')
    add('--params', type=Path, metavar='YAML',
        help="the node's parameters file, e.g. config/pix2voxpp.yaml")
    add('-p', '--param', action='append', default=[], metavar='NAME:=VALUE',
        help='set one node parameter (YAML value), as ros2 run -p does')
    add('--weights', help='checkpoint (overrides the parameter)')
    add('--camera-topics', nargs='+', metavar='TOPIC',
        help='camera topics, one per camera (overrides the parameter; image_transport '
             'compressed reads TOPIC/compressed)')
    add('--threshold', type=float, help='occupancy threshold (parameter)')
    add_inference_options(parser, device=None, num_threads=None)
    add('--node-name', default='pix2voxpp',
        help="the node's name: its section of --params and the namespace of the output topics "
             '(default pix2voxpp)')
    add('--batch', type=int, default=DEFAULT_BATCH,
        help=f'view sets per forward pass (default {DEFAULT_BATCH})')
    add('--clock', choices=('header', 'receive'), default='header',
        help="what 'now' is when a frame arrives: the newest header stamp so far (default) or "
             "the newest recorded receive time (the node's clock when the bag is played with "
             '--clock and use_sim_time)')
    add('--storage', choices=('mcap', 'sqlite3'), default='mcap',
        help='storage of the output bag (default mcap)')
    add('--overwrite', action='store_true',
        help='replace an existing OUT_BAG written by pix2voxpp (never the input, a file or a '
             'directory it did not write)')
    add('--ply-dir', type=Path,
        help='also write one .ply per reconstruction (mask_mode instances: per object)')
    add('--npy-dir', type=Path,
        help='also write one .npy probability grid (ROS axes) per reconstruction '
             '(mask_mode instances: per object)')
    add('--truth-topic', metavar='TOPIC',
        help='sensor_msgs/PointCloud2 ground truth stamped like the frames: score every '
             'reconstruction (IoU)')
    add('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def _load_model(config: NodeConfig) -> Reconstructor:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        reconstructor = Reconstructor(config.weights, device=config.device,
                                      backend=config.backend, precision=config.precision,
                                      num_threads=config.num_threads or None, warmup_views=0)
    for warning in caught:
        print(f'{PROG}: {warning.message}', file=sys.stderr)
    return reconstructor


def _infer(reconstructor: Reconstructor, batch: list[PreparedSet],
           stats: BagRunStats) -> list[tuple[PreparedSet, np.ndarray]]:
    """Run one batch; when it fails, run its sets one by one so one bad set costs only itself."""
    try:
        grids = reconstructor.infer(stack_batch(batch))  # (B, 32, 32, 32)
        stats.passes += 1
        stats.model_s += reconstructor.last_model_time_s
        return list(zip(batch, grids))
    except InferenceError as exc:
        if len(batch) == 1:
            stats.sets_failed['inference'] += 1
            stats.warn_once('inference', f'skipping a view set: {exc}')
            return []
    return [done for item in batch for done in _infer(reconstructor, [item], stats)]


class _Output:
    """Where each reconstruction goes: the node's topics, optional files, the scores.

    With ``mask_mode: instances`` the topics and files are those of :attr:`objects`.
    """

    def __init__(self, bag: Any, args: argparse.Namespace, config: NodeConfig, *,
                 threshold: float, scoring: bool, inputs: Inputs, stats: BagRunStats) -> None:
        self.bag, self.args, self.config, self.threshold = bag, args, config, threshold
        self.topics = {kind: f'/{args.node_name}/{kind}' for kind in OUTPUT_KINDS}
        self.scored: Optional[list[bag_report.Scored]] = [] if scoring else None
        # PLY/NPY files go to a temporary folder first: a run that fails leaves none of them.
        self.staged: dict[str, StagedFolder] = {}
        self.objects: Optional[ObjectSets] = None
        try:
            for kind, folder in (('ply', args.ply_dir), ('npy', args.npy_dir)):
                if folder is not None:
                    self.staged[kind] = StagedFolder(folder)
            if config.instances:
                self.objects = ObjectSets(
                    bag, config, node_name=args.node_name, threshold=threshold, inputs=inputs,
                    stats=stats, files={k: staged.path for k, staged in self.staged.items()})
            else:
                self._add_topics()
        except BaseException:
            self.finish(ok=False)
            raise

    def _add_topics(self) -> None:
        from ..ros.bag_io import CLOUD_TYPE, MARKERS_TYPE, POSE_TYPE, TF_TYPE
        for kind, msgtype in zip(OUTPUT_KINDS, (CLOUD_TYPE, MARKERS_TYPE, CLOUD_TYPE)):
            self.bag.add_topic(self.topics[kind], msgtype)
        if self.config.calibrated:
            self.topics['object_pose'] = f'/{self.args.node_name}/object_pose'
            self.bag.add_topic(self.topics['object_pose'], POSE_TYPE)
            self.bag.add_topic(TF_OUTPUT, TF_TYPE)

    def write(self, index: int, stamp_ns: int, grid: np.ndarray,
              placed: Optional[PlacedGrid] = None) -> None:
        """Write one reconstruction, ``grid`` ``(32, 32, 32)`` probabilities (ShapeNet axes).

        :param placed: its placement (``placement: calibrated``; then ``grid`` is
            ``placed.grid``): the outputs are in ``fixed_frame``, at its pose and size.
        """
        from std_msgs.msg import Header

        from ..ros.bag_io import tf_message_cdr
        from ..ros.conversions import ns_to_stamp, reconstruction_messages
        from ..ros.conversions.clouds import placed as moved
        from ..ros.placement_io import pose_to_message, pose_to_transform
        config, threshold = self.config, self.threshold
        pose = None if placed is None else placed.pose
        size = config.object_size_m if pose is None else pose.size_m
        header = Header(stamp=ns_to_stamp(stamp_ns),
                        frame_id=config.frame_id if pose is None else config.fixed_frame)
        messages = reconstruction_messages(grid, threshold=threshold, object_size_m=size,
                                           header=header, markers=True, pose=pose)
        for kind, message in zip(OUTPUT_KINDS, (messages.cloud, messages.markers, messages.grid)):
            self.bag.write(self.topics[kind], message, stamp_ns)
        if pose is not None:
            self.bag.write(self.topics['object_pose'], pose_to_message(pose, header), stamp_ns)
            self.bag.write(TF_OUTPUT, tf_message_cdr(
                [pose_to_transform(pose, header, config.frame_id)]), stamp_ns)
        name = f'{index:05d}_{stamp_ns}'
        if 'npy' in self.staged:
            np.save(self.staged['npy'].path / f'{name}.npy', grid_to_ros_axes(grid))
        if 'ply' in self.staged:  # placed: metres in fixed_frame, as the published cloud
            points, values = grid_to_points(grid, threshold=threshold, object_size_m=size,
                                            ros_axes=True)
            write_ply(self.staged['ply'].path / f'{name}.ply', moved(points, pose), values)
        if self.scored is not None:  # the grid itself, as the published cloud has it
            occupied = grid_to_ros_axes(grid) >= threshold  # (32, 32, 32) bool, ROS axes
            self.scored.append((stamp_ns, occupied, int(occupied.sum())))

    def finish(self, *, ok: bool) -> None:
        """Move the side files into their folders (``ok``) or remove them."""
        for staged in self.staged.values():
            staged.commit() if ok else staged.discard()


def _reconstruct(reader: Any, config: NodeConfig, args: argparse.Namespace, inputs: Inputs,
                 reconstructor: Reconstructor, output: _Output, stats: BagRunStats,
                 truth: Optional[Truth]) -> None:
    """Read, reconstruct and write every view set, with a progress bar unless ``--quiet``."""
    progress = None
    if not args.quiet:
        from tqdm import tqdm
        progress = tqdm(total=sum(reader.counts[t] for t in inputs.cameras), unit='frame',
                        file=sys.stderr, leave=False)
    sets = RecordedSets(reader, config, inputs, clock=args.clock, stats=stats, truth=truth)
    objects = output.objects
    if objects is not None:  # one set at a time (its objects share one pass), unprepared
        work = in_background((sets.frames, item) for item in sets)
    else:
        work = in_background(produce(sets, config, batch=args.batch, stats=stats,
                                     prepare=prepare_frames(reconstructor, config)))
    try:
        for frames_read, batch in work:
            if objects is not None:
                view_set, poses = batch
                objects.reconstruct(reconstructor, view_set, poses)
            else:
                _write_batch(batch, reconstructor, config, inputs, output, stats)
            if progress is not None:  # frames up to this set's last one
                progress.set_postfix_str(f'{stats.reconstructed} sets', refresh=False)
                progress.update(frames_read - progress.n)
    finally:
        work.close()
        if progress is not None:
            progress.close()


def _write_batch(batch: list[PreparedSet], reconstructor: Reconstructor, config: NodeConfig,
                 inputs: Inputs, output: _Output, stats: BagRunStats) -> None:
    """Reconstruct one batch of sets, place each (``placement: calibrated``) and write it."""
    for item, grid in _infer(reconstructor, batch, stats):
        placed = None
        if config.calibrated:
            placed = _place(item, grid, config, inputs, output.threshold, stats)
            if placed is None:
                continue
            grid = placed.grid
        output.write(stats.reconstructed, item.view_set.newest_stamp_ns, grid, placed)
        stats.reconstructed += 1
        stats.views[len(item.view_set)] += 1


def _place(item: PreparedSet, grid: np.ndarray, config: NodeConfig, inputs: Inputs,
           threshold: float, stats: BagRunStats) -> Optional[PlacedGrid]:
    """Place one reconstruction as the node does; None when it cannot (counted, warned once)."""
    poses = item.poses if isinstance(item, PlacingSet) else None
    if poses is None:
        raise RuntimeError('a view set to place came without its camera poses')
    view_set = item.view_set
    try:
        placed = place_view_set(grid, view_set, threshold=threshold, poses=poses,
                                settings=config.placement_settings())
    except PlacementFailedError as exc:
        count_drops(stats, inputs, exc.drops)
        stats.sets_failed[DropReason.PLACEMENT_FAILED] += 1
        stats.warn_once(('placement',), f'placement of the {len(view_set)} view(s) of stamp '
                        f'{view_set.newest_stamp_ns / 1e9:.3f} failed: {exc}; such sets are '
                        'not written (counted in summary.json as placement_failed)')
        return None
    count_drops(stats, inputs, placed.drops)
    stats.placed.append((view_set.newest_stamp_ns, placed.pose, placed.silhouette_iou))
    return placed


def run(args: argparse.Namespace) -> int:
    """Reconstruct the bag; returns the exit status (raises for the caller to report)."""
    from ..ros.bag_io import BagReader, BagWriter
    start = time.perf_counter()
    if args.batch < 1:
        raise BagUsageError(f'--batch {args.batch}: must be at least 1')
    config, notes = load_config(args)
    for note in notes:
        print(f'{PROG}: {note}', file=sys.stderr)
    writer = BagWriter(args.out, storage=args.storage, overwrite=args.overwrite,
                       inputs=(args.bag,))  # refuses a bad --out before anything is read
    with BagReader(args.bag) as reader:
        inputs = check_inputs(reader, config, args)
        truth = Truth() if inputs.truth else None
        reconstructor = _load_model(config)
        threshold = config.threshold if config.threshold >= 0.0 else reconstructor.threshold
        kinds = ('JPEG/PNG ' if inputs.compressed else '') + ('masked ' if inputs.masks else '')
        passes = 'each set its own pass' if config.instances else f'batch {args.batch}'
        print(f'{PROG}: {args.bag}: {sum(reader.counts[t] for t in inputs.cameras)} {kinds}'
              f'frames on {len(inputs.cameras)} camera topic(s); '
              f'Pix2Vox++/{reconstructor.model.config.variant} on {reconstructor.device}, '
              f'{passes}, threshold {threshold:g}', file=sys.stderr)
        stats = BagRunStats()
        reconstruct_start = time.perf_counter()
        output: Optional[_Output] = None
        try:
            with writer as bag:
                output = _Output(bag, args, config, threshold=threshold,
                                 scoring=truth is not None, inputs=inputs, stats=stats)
                _reconstruct(reader, config, args, inputs, reconstructor, output, stats, truth)
                summary, scores = _summarize(args, config, stats, output, truth, bag.counts,
                                             start=start, reconstruct_start=reconstruct_start)
                bag.extra_files['summary.json'] = json.dumps(summary, indent=2).encode()
        except BaseException:
            if output is not None:
                output.finish(ok=False)
            raise
        output.finish(ok=True)
    bag_report.report(args, stats, summary, scores)
    return 0


def _summarize(args: argparse.Namespace, config: NodeConfig, stats: BagRunStats, output: _Output,
               truth: Optional[Truth], counts: dict, *, start: float, reconstruct_start: float
               ) -> tuple[dict, Optional[dict]]:
    """Return the summary and the scores; refuse a recording none of whose frames decoded."""
    if stats.frames_decoded == 0 and stats.camera_frames:
        dropped = ', '.join(f'{n} {r}' for r, n in sorted(stats.frames_dropped.items()))
        raise BagError(f'{args.bag}: none of its {stats.camera_frames} camera frames could be '
                       f'used ({dropped}); no output written')
    reconstruct_s = time.perf_counter() - reconstruct_start
    scores = bag_report.score_objects(output.scored, truth) if truth is not None else None
    summary = bag_report.summary(args, config, stats, reconstruct_s=reconstruct_s,
                                 wall_s=time.perf_counter() - start, scores=scores,
                                 counts=counts)
    return summary, scores


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    try:
        return run(args)
    except BagUsageError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    except (Pix2VoxError, OSError, ValueError) as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 1
    except RuntimeError as exc:  # e.g. PyTorch out of memory: say what, without a traceback
        print(f'{PROG}: {type(exc).__name__}: {exc}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted; no output bag written', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
