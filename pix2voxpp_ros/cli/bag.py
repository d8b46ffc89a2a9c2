"""``pix2voxpp-bag``: reconstruct every view set of a rosbag2 recording, offline, into a new bag.

Reads a bag (mcap or sqlite3, as ``ros2 bag record`` writes them; no ROS installation needed),
assembles view sets exactly as the node does with the node's own parameters file, and writes what
the node would publish for each set (``~/occupancy``, ``~/markers``, ``~/grid``, stamped like the
set) into a new bag, plus ``summary.json`` in it. Time is the recording's: frame ages, sync slop
and ``max_rate_hz`` are judged against the recorded stamps, so the result does not depend on how
fast this machine reads. The node's robot inputs work alike: ``image_transport: compressed``
reads sensor_msgs/CompressedImage on ``<camera topic>/compressed``, and ``mask_topics`` pairs
every frame with the recorded mask of its stamp (``mask_timeout_s`` of recorded time); dropped
frames are counted by the node's reasons. Several sets run per forward pass (``--batch``), while
a second thread reads, decodes and preprocesses the next ones. With ``--truth-topic`` every
reconstruction is scored against a recorded ground-truth cloud of the same stamp, as
``pix2voxpp-demo`` scores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import yaml

from ..core.checkpoint import CheckpointError
from ..core.errors import Pix2VoxError
from ..core.inference import InferenceError, Reconstructor
from ..core.masks import MaskDrop, MaskedFrames
from ..core.offline import (DROP_RATE, Batcher, OfflineAssembler, PreparedSet, PreparedViews,
                            in_background, stack_batch)
from ..core.preprocess import ImageInputError, MaskError
from ..core.views import NS_PER_S, Frame
from ..core.voxels import grid_to_points, grid_to_ros_axes, write_ply

PROG = 'pix2voxpp-bag'
DEFAULT_BATCH = 8  # measured on 2 CPU cores: see the README's Performance section
IGNORED_OFFLINE = ('qos_reliability', 'autostart')  # live-only: no subscriptions, no lifecycle


class UsageError(Pix2VoxError):
    """Arguments or parameters that cannot work; nothing was read yet."""


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split('\n')[0].split(': ', 1)[1],
        epilog="Parameters: the node's YAML file (--params), then -p NAME:=VALUE, then the "
               'named options below. trigger: service reconstructs like auto offline; '
               'qos_reliability and autostart do not apply.')
    parser.add_argument('bag', type=Path, metavar='IN_BAG',
                        help='rosbag2 directory, or a single .mcap / .db3 file')
    parser.add_argument('--out', required=True, type=Path, metavar='OUT_BAG',
                        help='new bag to write (a directory; must not exist unless --overwrite)')
    parser.add_argument('--params', type=Path, metavar='YAML',
                        help="the node's parameters file, e.g. config/pix2voxpp.yaml")
    parser.add_argument('-p', '--param', action='append', default=[], metavar='NAME:=VALUE',
                        help='set one node parameter (YAML value), as ros2 run -p does')
    parser.add_argument('--weights', help='checkpoint (overrides the parameter)')
    parser.add_argument('--camera-topics', nargs='+', metavar='TOPIC',
                        help='camera topics, one per camera (overrides the parameter; '
                             'image_transport compressed reads TOPIC/compressed)')
    parser.add_argument('--threshold', type=float, help='occupancy threshold (parameter)')
    parser.add_argument('--device', help='auto, cpu, cuda or cuda:N (parameter)')
    parser.add_argument('--num-threads', type=int, help='CPU threads for PyTorch (parameter)')
    parser.add_argument('--node-name', default='pix2voxpp',
                        help="the node's name: its section of --params and the namespace of the "
                             'output topics (default pix2voxpp)')
    parser.add_argument('--batch', type=int, default=DEFAULT_BATCH,
                        help=f'view sets per forward pass (default {DEFAULT_BATCH})')
    parser.add_argument('--clock', choices=('header', 'receive'), default='header',
                        help="what 'now' is when a frame arrives: the newest header stamp so far "
                             "(default) or the newest recorded receive time (the node's clock "
                             'when the bag is played with --clock and use_sim_time)')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='storage of the output bag (default mcap)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing OUT_BAG')
    parser.add_argument('--ply-dir', type=Path, help='also write one .ply per reconstruction')
    parser.add_argument('--npy-dir', type=Path,
                        help='also write one .npy probability grid (ROS axes) per reconstruction')
    parser.add_argument('--truth-topic', metavar='TOPIC',
                        help='sensor_msgs/PointCloud2 ground truth stamped like the frames: '
                             'score every reconstruction (IoU)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def resolve_topic(name: str, node_name: str) -> str:
    """Resolve a topic name as a node called ``node_name`` in the root namespace would."""
    if name.startswith('~'):
        return f'/{node_name}{name[1:]}'
    return name if name.startswith('/') else f'/{name}'


def load_config(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """Merge defaults, the parameters file and the command line into the node's configuration.

    :returns: ``(NodeConfig, notes)``; notes are lines for the user (ignored names and such).
    :raises UsageError: unreadable file, bad ``-p`` syntax or invalid parameters.
    """
    from ..ros.param_files import ParamsFileError, read_params_file
    from ..ros.params import PARAMETER_NAMES, PARAMETERS, ConfigError, config_from_values
    values = {spec.name: spec.default for spec in PARAMETERS}
    notes = []
    given: dict[str, Any] = {}
    if args.params is not None:
        try:
            given.update(read_params_file(args.params, node_name=args.node_name))
        except ParamsFileError as exc:
            raise UsageError(str(exc)) from exc
    for item in args.param:
        name, sep, text = item.partition(':=')
        if not sep or not name:
            raise UsageError(f'-p {item}: expected NAME:=VALUE')
        try:
            given[name] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f'-p {item}: the value is not YAML ({exc})') from exc
    named = {'weights': args.weights, 'threshold': args.threshold, 'device': args.device,
             'num_threads': args.num_threads,
             'camera_topics': list(args.camera_topics) if args.camera_topics else None}
    given.update({k: v for k, v in named.items() if v is not None})
    unknown = sorted(set(given) - set(PARAMETER_NAMES))
    if unknown:
        notes.append(f'ignored (not parameters of the node): {", ".join(unknown)}')
    values.update({k: v for k, v in given.items() if k in PARAMETER_NAMES})
    if values['trigger'] == 'service':
        notes.append('trigger: service has no calls in a recording; every new view set is '
                     'reconstructed as with trigger: auto')
        values['trigger'] = 'auto'
    try:
        config = config_from_values(values)
    except ConfigError as exc:
        raise UsageError('invalid parameters: ' + '; '.join(exc.problems)) from exc
    return config, notes


@dataclass
class RunStats:
    """What happened, for the summary."""

    frames_read: Counter = field(default_factory=Counter)  # per topic
    frames_dropped: Counter = field(default_factory=Counter)  # per reason
    sets_failed: Counter = field(default_factory=Counter)  # per kind: image, inference
    sets_found: int = 0
    sets_rate_dropped: int = 0
    reconstructed: int = 0
    passes: int = 0
    model_s: float = 0.0
    views: Counter = field(default_factory=Counter)  # reconstructions per view count
    masks_undecodable: int = 0
    warned: set = field(default_factory=set)


@dataclass(frozen=True)
class Inputs:
    """The bag's topics the node would subscribe to, resolved, and what their messages are."""

    cameras: list[str]  # one per camera; <camera topic>/compressed with image_transport compressed
    masks: list[str]  # mask_topics, one per camera, or none
    compressed: bool
    image_type: str


def resolve_inputs(config: Any, node_name: str) -> Inputs:
    """Return the topics a node called ``node_name`` would read with ``config``."""
    from ..ros.bag_io import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE
    from ..ros.conversions import compressed_topic
    compressed = config.image_transport == 'compressed'
    cameras = [resolve_topic(t, node_name) for t in config.camera_topics]
    return Inputs(cameras=[compressed_topic(t) for t in cameras] if compressed else cameras,
                  masks=[resolve_topic(t, node_name) for t in config.mask_topics],
                  compressed=compressed,
                  image_type=COMPRESSED_IMAGE_TYPE if compressed else IMAGE_TYPE)


@dataclass
class Truth:
    """Recorded ground truth: occupied voxels (ROS axes) and object names by stamp."""

    grids: dict = field(default_factory=dict)  # stamp ns -> (32, 32, 32) bool
    names: dict = field(default_factory=dict)  # stamp ns -> object name


def _warn_once(stats: RunStats, key: Any, message: str) -> None:
    if key not in stats.warned:
        stats.warned.add(key)
        print(f'{PROG}: {message}', file=sys.stderr)


def _produce(reader: Any, config: Any, args: argparse.Namespace, inputs: Inputs,
             reconstructor: Reconstructor, stats: RunStats, truth: Optional[Truth],
             names_topic: Optional[str]) -> Iterator[tuple[int, list[PreparedSet]]]:
    """Read the bag in recorded order; yield (camera frames read so far, a batch of sets).

    Runs on the reader thread, ahead of the network by a batch or two. Frames go through the
    node's steps: conversion (raw or compressed), with ``mask_topics`` the pairing with the
    mask of their stamp, then the view buffer; "now" is the recorded clock throughout.
    """
    from ..ros.bag_io import CLOUD_TYPE, IMAGE_TYPE, STRING_TYPE, BagError
    from ..ros.conversions import (DROP_BAD_IMAGE, DROP_ENCODING, ImageConversionError,
                                   UnsupportedEncodingError, frame_to_array, mask_to_array)
    from ..ros.demo import Scorer, cloud_to_voxels
    from ..ros.inputs import frame_preparer
    assembler = OfflineAssembler(config.view_buffer_config(), max_rate_hz=config.max_rate_hz)
    required = assembler.buffer.config.required_views
    prepared = PreparedViews(frame_preparer(reconstructor, config),
                             capacity=2 * max(required, len(inputs.cameras)) + 1)
    batcher = Batcher(args.batch)
    camera_of = {topic: i for i, topic in enumerate(inputs.cameras)}
    mask_of = {topic: i for i, topic in enumerate(inputs.masks)}
    masked = MaskedFrames(len(inputs.cameras), timeout_s=config.mask_timeout_s) \
        if inputs.masks else None
    wanted = [*inputs.cameras, *inputs.masks] + [t for t in (args.truth_topic, names_topic) if t]

    def ready(view_sets: list) -> Iterator[tuple[int, list[PreparedSet]]]:
        for view_set in view_sets:
            try:
                views = prepared.views(view_set)  # (V, 3, 224, 224)
            except ImageInputError as exc:
                stats.sets_failed['image'] += 1
                _warn_once(stats, ('image', str(exc)), f'skipping a view set: {exc}')
                continue
            for batch in batcher.add(PreparedSet(view_set, views)):
                yield frames, batch

    def store(frames_ready: list[Frame], drops: list[MaskDrop],
              now_ns: int) -> Iterator[tuple[int, list[PreparedSet]]]:
        for drop in drops:  # worded as the node logs them
            topic = inputs.cameras[drop.frame.camera]
            stats.frames_dropped[drop.reason] += 1
            _warn_once(stats, (drop.reason, topic), f'dropping frames on {topic}: '
                       f'{drop.detail} (masks on {inputs.masks[drop.frame.camera]})')
        for frame in frames_ready:
            due, reason = assembler.add(frame, now_ns=now_ns)
            if reason is not None:
                stats.frames_dropped[reason] += 1
            yield from ready(due)

    frames = 0
    now_ns = 0  # the recorded clock: newest frame stamp so far (--clock receive: receive time)
    for topic, received_ns, raw in reader.messages(wanted):
        stats.frames_read[topic] += 1
        if topic in mask_of:
            try:
                msg = reader.decode(raw, IMAGE_TYPE)
            except BagError as exc:  # no stamp, no frame to drop: its frame will miss it
                stats.masks_undecodable += 1
                _warn_once(stats, ('undecodable', topic), f'skipping undecodable masks on '
                           f'{topic}: {exc}')
                continue
            try:
                mask: np.ndarray | MaskError = mask_to_array(msg, backend='own')
            except MaskError as exc:
                mask = exc
            stamp_ns = _stamp_ns(msg.header.stamp)
            if args.clock == 'receive':
                now_ns = arrival_ns = max(now_ns, received_ns)
            else:  # a mask cannot come before its stamp; a bad stamp must not age the frames
                arrival_ns = max(now_ns, stamp_ns)
            yield from store(*masked.add_mask(mask_of[topic], stamp_ns, mask,
                                              now_ns=arrival_ns), now_ns)
            continue
        if topic not in camera_of:
            try:
                if topic == args.truth_topic:
                    msg = reader.decode(raw, CLOUD_TYPE)
                    grid = cloud_to_voxels(Scorer.cloud_points(msg), config.object_size_m)
                    truth.grids[_stamp_ns(msg.header.stamp)] = grid
                else:
                    name, _, stamp = reader.decode(raw, STRING_TYPE).data.rpartition(' ')
                    truth.names[int(stamp)] = name
            except (BagError, ValueError, KeyError) as exc:
                _warn_once(stats, ('truth', topic), f'skipping undecodable messages on {topic}: '
                           f'{exc}')
            continue
        frames += 1
        try:
            msg = reader.decode(raw, inputs.image_type)
            image, encoding = frame_to_array(msg, compressed=inputs.compressed,
                                             backend='own')  # rosbags messages: the own path
        except BagError as exc:
            stats.frames_dropped['undecodable'] += 1
            _warn_once(stats, ('undecodable', topic), f'skipping undecodable frames on {topic}: '
                       f'{exc}')
            continue
        except UnsupportedEncodingError as exc:
            stats.frames_dropped[DROP_ENCODING] += 1
            _warn_once(stats, (DROP_ENCODING, topic, msg.encoding), f'skipping frames on {topic}: '
                       f'{exc}')
            continue
        except ImageConversionError as exc:
            stats.frames_dropped[DROP_BAD_IMAGE] += 1
            _warn_once(stats, (DROP_BAD_IMAGE, topic), f'skipping malformed frames on {topic}: '
                       f'{exc}')
            continue
        frame = Frame(camera=camera_of[topic], stamp_ns=_stamp_ns(msg.header.stamp), image=image,
                      encoding=encoding)
        now_ns = max(now_ns, received_ns if args.clock == 'receive' else frame.stamp_ns)
        if masked is None:
            yield from store([frame], [], now_ns)
        else:
            yield from store(*masked.add_frame(frame, now_ns=now_ns), now_ns)
    if masked is not None:  # the recording ended before their masks came
        yield from store([], masked.finish(), now_ns)
    yield from ready(assembler.finish())
    for batch in batcher.flush():
        yield frames, batch
    stats.sets_found = assembler.sets_found
    stats.sets_rate_dropped = assembler.sets_rate_dropped


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def _infer(reconstructor: Reconstructor, batch: list[PreparedSet],
           stats: RunStats) -> list[tuple[PreparedSet, np.ndarray]]:
    """Run one batch; when it fails, run its sets one by one so one bad set costs only itself."""
    try:
        grids = reconstructor.infer(stack_batch(batch))  # (B, 32, 32, 32)
        stats.passes += 1
        stats.model_s += reconstructor.last_model_time_s
        return list(zip(batch, grids))
    except InferenceError as exc:
        if len(batch) == 1:
            stats.sets_failed['inference'] += 1
            _warn_once(stats, 'inference', f'skipping a view set: {exc}')
            return []
    return [done for item in batch for done in _infer(reconstructor, [item], stats)]


def run(args: argparse.Namespace) -> int:
    """Reconstruct the bag; returns the exit status (raises for the caller to report)."""
    from std_msgs.msg import Header

    from ..ros.bag_io import (CLOUD_TYPE, IMAGE_TYPE, MARKERS_TYPE, STRING_TYPE, BagError,
                              BagReader, BagWriter)
    from ..ros.conversions import compressed_topic, ns_to_stamp, reconstruction_messages
    from ..ros.demo import Scorer, cloud_to_voxels

    start = time.perf_counter()
    if args.batch < 1:
        raise UsageError(f'--batch {args.batch}: must be at least 1')
    config, notes = load_config(args)
    for note in notes:
        print(f'{PROG}: {note}', file=sys.stderr)
    inputs = resolve_inputs(config, args.node_name)
    out_topics = {kind: f'/{args.node_name}/{kind}' for kind in ('occupancy', 'markers', 'grid')}
    with BagReader(args.bag) as reader:
        for topic in inputs.cameras:
            try:
                reader.require(topic, inputs.image_type, role='camera topic')
            except BagError as exc:  # the usual slip: the other transport was recorded
                other = topic.rsplit('/', 1)[0] if inputs.compressed else compressed_topic(topic)
                if other not in reader.topics:
                    raise
                raise BagError(f'{exc} (the bag has {other}: set image_transport '
                               f'{"raw" if inputs.compressed else "compressed"})') from None
        for topic in inputs.masks:
            reader.require(topic, IMAGE_TYPE, role='mask topic')
        names_topic = None
        truth = None
        if args.truth_topic:
            reader.require(args.truth_topic, CLOUD_TYPE, role='truth topic')
            sibling = args.truth_topic.rsplit('/', 1)[0] + '/object'
            names_topic = sibling if reader.topics.get(sibling) == STRING_TYPE else None
            truth = Truth()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            reconstructor = Reconstructor(config.weights, device=config.device,
                                          backend=config.backend, precision=config.precision,
                                          num_threads=config.num_threads or None, warmup_views=0)
        for warning in caught:
            print(f'{PROG}: {warning.message}', file=sys.stderr)
        threshold = config.threshold if config.threshold >= 0.0 else reconstructor.threshold
        frames_total = sum(reader.counts[t] for t in inputs.cameras)
        kinds = ('JPEG/PNG ' if inputs.compressed else '') + ('masked ' if inputs.masks else '')
        print(f'{PROG}: {args.bag}: {frames_total} {kinds}frames on {len(inputs.cameras)} '
              'camera topic(s); '
              f'Pix2Vox++/{reconstructor.model.config.variant} on {reconstructor.device}, '
              f'batch {args.batch}, threshold {threshold:g}', file=sys.stderr)
        progress = None
        if not args.quiet:
            from tqdm import tqdm
            progress = tqdm(total=frames_total, unit='frame', file=sys.stderr, leave=False)
        for folder in (args.ply_dir, args.npy_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        stats = RunStats()
        scored: list[tuple[int, np.ndarray, int]] = []  # (stamp, occupied ROS grid, points)
        reconstruct_start = time.perf_counter()
        with BagWriter(args.out, storage=args.storage, overwrite=args.overwrite) as bag:
            bag.add_topic(out_topics['occupancy'], CLOUD_TYPE)
            bag.add_topic(out_topics['markers'], MARKERS_TYPE)
            bag.add_topic(out_topics['grid'], CLOUD_TYPE)
            batches = in_background(_produce(reader, config, args, inputs, reconstructor, stats,
                                             truth, names_topic))
            try:
                for frames_read, batch in batches:
                    for item, grid in _infer(reconstructor, batch, stats):
                        stamp_ns = item.view_set.newest_stamp_ns
                        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=config.frame_id)
                        messages = reconstruction_messages(
                            grid, threshold=threshold, object_size_m=config.object_size_m,
                            header=header, markers=True)
                        bag.write(out_topics['occupancy'], messages.cloud, stamp_ns)
                        bag.write(out_topics['markers'], messages.markers, stamp_ns)
                        bag.write(out_topics['grid'], messages.grid, stamp_ns)
                        _write_files(args, stats.reconstructed, stamp_ns, grid, threshold,
                                     config.object_size_m)
                        stats.reconstructed += 1
                        stats.views[len(item.view_set)] += 1
                        if truth is not None:
                            points = Scorer.cloud_points(messages.cloud)
                            scored.append((stamp_ns, cloud_to_voxels(
                                points, config.object_size_m), len(points)))
                    if progress is not None:  # frames up to this batch's last one
                        progress.set_postfix_str(f'{stats.reconstructed} sets', refresh=False)
                        progress.update(frames_read - progress.n)
            finally:
                batches.close()
                if progress is not None:
                    progress.close()
            reconstruct_s = time.perf_counter() - reconstruct_start
            scores = _score(scored, truth) if truth is not None else None
            summary = _summary(args, config, stats, reconstruct_s,
                               time.perf_counter() - start, scores, bag.counts)
            bag.extra_files['summary.json'] = json.dumps(summary, indent=2).encode()
    _report(args, stats, summary, scores)
    return 0


def _write_files(args: argparse.Namespace, index: int, stamp_ns: int, grid: np.ndarray,
                 threshold: float, object_size_m: float) -> None:
    name = f'{index:05d}_{stamp_ns}'
    if args.npy_dir is not None:
        np.save(args.npy_dir / f'{name}.npy', grid_to_ros_axes(grid))
    if args.ply_dir is not None:
        points, values = grid_to_points(grid, threshold=threshold, object_size_m=object_size_m,
                                        ros_axes=True)
        write_ply(args.ply_dir / f'{name}.ply', points, values)


def _score(scored: list[tuple[int, np.ndarray, int]], truth: Truth) -> dict:
    """Score every reconstruction (IoU) with a truth of its stamp, by object as the demo."""
    from ..ros.demo import iou
    objects: dict[str, dict] = {}
    unmatched = 0
    previous: Optional[np.ndarray] = None
    unnamed = 0
    for stamp, prediction, points in scored:
        grid = truth.grids.get(stamp)
        if grid is None:
            unmatched += 1
            continue
        name = truth.names.get(stamp)
        if name is None:  # no names recorded: a new object wherever the truth changes
            if previous is None or not np.array_equal(previous, grid):
                unnamed += 1
            name = f'object_{unnamed}'
        previous = grid
        value = iou(prediction, grid)
        entry = objects.setdefault(name, {'name': name, 'iou': value, 'stamp_ns': stamp,
                                          'points': points, 'truth_voxels': int(grid.sum()),
                                          'ious': []})
        entry['ious'].append(value)
    rows = []
    for entry in objects.values():
        ious = entry.pop('ious')
        entry['sets'] = len(ious)
        entry['mean_iou_all_sets'] = statistics.fmean(ious)
        rows.append(entry)
    mean = statistics.fmean(r['iou'] for r in rows) if rows else None
    return {'objects': rows, 'mean_iou': mean, 'unmatched_sets': unmatched}


def _summary(args: argparse.Namespace, config: Any, stats: RunStats, reconstruct_s: float,
             wall_s: float, scores: Optional[dict], counts: dict) -> dict:
    dropped_sets = dict(stats.sets_failed)
    if stats.sets_rate_dropped:
        dropped_sets[DROP_RATE] = stats.sets_rate_dropped
    if scores is not None:  # rounded for the file only: the printed table uses full values
        scores = dict(scores, objects=[
            dict(row, iou=round(row['iou'], 4),
                 mean_iou_all_sets=round(row['mean_iou_all_sets'], 4))
            for row in scores['objects']],
            mean_iou=None if scores['mean_iou'] is None else round(scores['mean_iou'], 4))
    return {
        'bag': str(args.bag), 'out': str(args.out), 'weights': config.weights,
        'device': config.device, 'batch': args.batch, 'clock': args.clock,
        'camera_topics': [resolve_topic(t, args.node_name) for t in config.camera_topics],
        'image_transport': config.image_transport,
        'mask_topics': resolve_inputs(config, args.node_name).masks,
        'frames': {'read': dict(stats.frames_read), 'dropped': dict(stats.frames_dropped),
                   'undecodable_masks': stats.masks_undecodable},
        'sets': {'found': stats.sets_found, 'reconstructed': stats.reconstructed,
                 'dropped': dropped_sets,
                 'views': {str(k): v for k, v in sorted(stats.views.items())}},
        'forward_passes': stats.passes,
        'model_time_s': round(stats.model_s, 4),
        'reconstruct_s': round(reconstruct_s, 4),
        'sets_per_s': round(stats.reconstructed / reconstruct_s, 4) if reconstruct_s else None,
        'wall_s': round(wall_s, 4),
        'messages_written': counts,
        'scores': scores,
    }


def _report(args: argparse.Namespace, stats: RunStats, summary: dict,
            scores: Optional[dict]) -> None:
    from ..ros.demo import format_score
    dropped = ', '.join(f'{n} {r}' for r, n in sorted(stats.frames_dropped.items())) or 'none'
    set_drops = ', '.join(f'{n} {r}' for r, n in sorted(summary['sets']['dropped'].items())) \
        or 'none'
    print(f'{stats.sets_found} view set(s) found, {stats.reconstructed} reconstructed in '
          f'{stats.passes} forward pass(es) ({summary["sets_per_s"]} sets/s, model '
          f'{stats.model_s:.1f} s); sets dropped: {set_drops}; frames dropped: {dropped}')
    if scores is not None:
        for row in scores['objects']:
            print(format_score(row['name'], row['iou'], row['points'], row['truth_voxels'],
                               detail=f', mean {row["mean_iou_all_sets"]:.3f} over '
                                      f'{row["sets"]} set(s)'))
        if scores['mean_iou'] is not None:
            print(f'mean IoU {scores["mean_iou"]:.3f} over {len(scores["objects"])} objects')
        else:
            print('no reconstruction has a truth of its stamp')
    print(f'-> {args.out} ({", ".join(f"{n} {t}" for t, n in summary["messages_written"].items())}'
          f'; summary.json in it)')


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    from ..ros.bag_io import BagError
    try:
        return run(args)
    except UsageError as exc:
        print(f'{PROG}: {exc}', file=sys.stderr)
        return 2
    except (BagError, CheckpointError, InferenceError, OSError, ValueError) as exc:
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
