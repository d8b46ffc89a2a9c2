"""The demo's main loop: start the processes, listen, print each score as it comes, report.

:func:`main` is the ``pix2voxpp-demo`` console script; ``--record`` hands over to
:mod:`.record` instead. With ``--objects-per-scene`` N >= 2 the items are tables of N objects
(:class:`.collector.TableCollector`, :func:`.report.write_tables_report`).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from subprocess import Popen
from typing import Callable, Optional, Union

from ...core.errors import Pix2VoxError
from ...core.metrics import format_score
from ...core.scene_scoring import TableScore
from ...core.scoring import ScoredObject
from ..tf_poses import tf_available
from .collector import Scorer, TableCollector
from .options import parse_args
from .processes import start_demo_processes, stop_processes
from .record import record
from .report import (mean_iou, table_lines, tables_summary_line, world_line,
                     world_summary_line, write_report, write_tables_report)
from .scene_setup import DemoSetup, config_dir, default_placement, demo_setup

OBJECT_SIZE_M = 0.5  # config/demo_rig.yaml's and demo_node.yaml's object_size_m
# Seconds per table (--objects-per-scene) unless --object-switch-s: a view set of three objects
# took the node 1-5 s on this busy 2-core machine (latency p95 6 s), so at demo_rig.yaml's 8 s
# a third of the tables got no set at all in one run (load average 3-6).
TABLE_SWITCH_S = 16.0


def _refusal(args: argparse.Namespace) -> Optional[str]:
    """Return why the live demo cannot start with these options, or None."""
    if not args.weights.is_file():
        return (f'pix2voxpp-demo: weights file not found: {args.weights}\n'
                "Train them (training/README.md) or pass --weights with the authors' "
                'Pix2Vox++-F-ShapeNet.pth or your own checkpoint.')
    if args.objects < 1:
        return f'pix2voxpp-demo: --objects {args.objects}: must be at least 1'
    return None


def _set_environment(args: argparse.Namespace, setup: DemoSetup) -> int:
    """Set the DDS environment this process and its children share; returns the domain id."""
    domain = args.domain_id if args.domain_id is not None else random.randint(60, 200)
    os.environ['ROS_DOMAIN_ID'] = str(domain)  # before rclpy.init: this process listens there
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')  # all on this machine
    if setup.scene != 'plain':
        # 1280x720 frames (2.7 MB) arrive seconds late, past max_frame_age_s, through Fast
        # DDS's default 512 KB shared-memory segment.
        os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                              str((args.config_dir or config_dir()) / 'fastdds_large_images.xml'))
    return domain


def _object_lines(item: ScoredObject) -> list[str]:
    """Return the printed lines of one scored object."""
    lines = [format_score(item.name, item.iou, item.points, item.truth_voxels,
                          detail=f', latency {item.latency_s * 1000:.0f} ms')]
    if item.placement is not None:
        lines.append(world_line(item))
    return lines


Collector = Union[Scorer, TableCollector]
Scored = Union[ScoredObject, TableScore]


def _collect(args: argparse.Namespace, scorer: Collector, processes: list[Popen],
             lines: Callable[[Scored], list[str]]) -> Optional[list[Scored]]:
    """Print each item's score as it comes; None if the time is up or a process exited."""
    start = time.monotonic()
    scored: list[Scored] = []
    reported = 0
    what = 'tables' if isinstance(scorer, TableCollector) else 'objects'
    while len(scored) < args.objects:
        if time.monotonic() - start > args.timeout_s:
            print(f'pix2voxpp-demo: timed out after {args.timeout_s:.0f} s with '
                  f'{len(scored)} of {args.objects} {what}; see {args.out}/*.log',
                  file=sys.stderr)
            return None
        for process, name in zip(processes, ('rig', 'node')):
            if process.poll() is not None:
                print(f'pix2voxpp-demo: the {name} process exited ({process.returncode}); '
                      f'see {args.out}/{name}.log', file=sys.stderr)
                return None
        time.sleep(0.2)
        scored = scorer.score()[:args.objects]
        for item in scored[reported:]:
            print('\n'.join(lines(item)), flush=True)
        reported = len(scored)
    return scored


def _scorer(node, setup: DemoSetup) -> Collector:
    """Return the listener of a demo: one object per scene, or tables of several."""
    if setup.objects_per_scene > 1:
        return TableCollector(node, object_size_m=OBJECT_SIZE_M, cameras=setup.cameras,
                              compressed=setup.compressed)
    return Scorer(node, object_size_m=OBJECT_SIZE_M, cameras=setup.cameras,
                  compressed=setup.compressed, masks=setup.masks, settle_s=setup.settle_s,
                  placed=setup.placed, true_pose=setup.true_pose,
                  camera_poses=setup.camera_pose_matrices(), fixed_frame=setup.fixed_frame)


def _run_live(args: argparse.Namespace, setup: DemoSetup,
              domain: int) -> tuple[Optional[list[Scored]], Collector]:
    """Listen in a node of this process while the node and rig run; return scores, scorer."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init(args=[])
    node = rclpy.create_node('pix2voxpp_demo_scorer')
    scorer = _scorer(node, setup)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    items = (f'{args.objects} table(s) of {setup.objects_per_scene} objects, instance masks'
             if setup.objects_per_scene > 1 else
             f'{args.objects} object(s){", masks" if setup.masks else ""}')
    print(f'pix2voxpp-demo: {setup.scene} scene, weights {args.weights}, ROS_DOMAIN_ID '
          f'{domain}, {items}{", JPEG" if setup.compressed else ""}; logs in {args.out}/')
    if setup.note:
        print(f'pix2voxpp-demo: {setup.note}')
    processes = start_demo_processes(args, dict(os.environ), args.out,
                                     rig_parameters=setup.rig_parameters,
                                     node_parameters=setup.node_parameters,
                                     node_ready=lambda: scorer.node_listening(node))
    try:
        lines = table_lines if setup.objects_per_scene > 1 else _object_lines
        return _collect(args, scorer, processes, lines), scorer
    finally:
        stop_processes(processes)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown()


def main(argv: Optional[list[str]] = None) -> int:
    """Run the demo; returns the process exit status."""
    args = parse_args(argv)
    if args.record is not None:
        return record(args)  # no node, so no weights
    refusal = _refusal(args)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    try:  # tf_available: the node and the rig run in this process's environment
        setup = demo_setup(args.scene, masks=args.masks, compressed=args.compressed,
                           placement=args.placement or default_placement(args.scene),
                           tf=tf_available(), config=args.config_dir,
                           objects_per_scene=args.objects_per_scene)
    except (Pix2VoxError, ValueError) as exc:  # the rig's parameters file (calibrated)
        print(f'pix2voxpp-demo: {exc}', file=sys.stderr)
        return 2
    if setup.objects_per_scene > 1 and args.object_switch_s is None:
        args.object_switch_s = TABLE_SWITCH_S
    domain = _set_environment(args, setup)
    args.out.mkdir(parents=True, exist_ok=True)
    scored, scorer = _run_live(args, setup, domain)
    if scored is None:
        return 1
    if setup.objects_per_scene > 1:
        return _report_tables(args, setup, scored, scorer)
    # Latencies of every cloud that arrived until the listener stopped.
    missed = scorer.missed()
    summary = write_report(args.out, scored, scorer.latencies, weights=args.weights, setup=setup,
                           missed=missed)
    if missed:  # e.g. placed scenes: no view set of theirs could be placed
        print(f'pix2voxpp-demo: no scored cloud for {", ".join(missed)} (shown before the last '
              'scored object; see node.log)')
    print(f'mean IoU {mean_iou(scored):.3f} over {len(scored)} objects; end-to-end latency '
          f'median {summary["latency_s"]["median"] * 1000:.0f} ms; pictures and summary.json in '
          f'{args.out}/')
    if setup.placed:
        print(world_summary_line(summary))
    return 0


def _report_tables(args: argparse.Namespace, setup: DemoSetup, tables: list[TableScore],
                   scorer: TableCollector) -> int:
    """Write and print a tables demo's report; returns the exit status."""
    unscored = scorer.missed()
    summary = write_tables_report(args.out, tables, scorer.latencies, weights=args.weights,
                                  setup=setup, unscored=unscored,
                                  forgotten=scorer.scores.forgotten)
    if summary['sets_unpaired']:
        print(f'pix2voxpp-demo: {summary["sets_unpaired"]} object set(s) of the node left '
              "unscored: this listener lost part of their table's truth")
    if unscored:
        print(f'pix2voxpp-demo: no object set for the tables {"; ".join(map(" ".join, unscored))}'
              ' (shown before the last scored one; their objects count as missed; see node.log)')
    latency = summary['latency_s']
    print(f'{len(tables)} tables of {setup.objects_per_scene}: {tables_summary_line(summary)}; '
          f'end-to-end latency median {latency["median"] * 1000:.0f} ms; pictures and '
          f'summary.json in {args.out}/')
    return 0
