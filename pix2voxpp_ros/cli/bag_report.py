"""``pix2voxpp-bag``'s results: IoU per object against the recorded truth, summary.json, the table.

Pure Python over the run's counters (:class:`~.bag_input.BagRunStats`): the scores of
reconstructions matched to a truth grid of their stamp, grouped by object as the demo groups
them; the summary written into the output bag; the lines printed at the end.
"""

from __future__ import annotations

import argparse
import math
import statistics
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..core.drops import DropReason
from ..core.metrics import format_score, iou
from ..core.node_config import NodeConfig
from ..core.voxels import pool_grid
from .bag_input import BagRunStats, Truth, resolve_inputs, resolve_topic

if TYPE_CHECKING:
    from ..core.placement import ObjectPose

Scored = tuple[int, np.ndarray, int]  # (stamp ns, occupied (D, D, D) bool in ROS axes, voxels)


def at_truth_resolution(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Bring a finer prediction (128³ weights) to the truth's grid: each block's majority.

    :raises ValueError: the truth's grid does not divide the prediction's.
    """
    factor, rest = divmod(prediction.shape[0], truth.shape[0])
    if factor == 1 and not rest:
        return prediction
    if rest or factor < 1:
        raise ValueError(f'a {prediction.shape[0]}³ reconstruction cannot be scored against a '
                         f'{truth.shape[0]}³ truth')
    return pool_grid(prediction, factor, reduce='mean') >= 0.5


def score_objects(scored: list[Scored], truth: Truth) -> dict:
    """Score every reconstruction (IoU) with a truth of its stamp, by object as the demo."""
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
        value = iou(at_truth_resolution(prediction, grid), grid)
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


def _rounded(scores: Optional[dict]) -> Optional[dict]:
    """Round the scores for the file only: the printed table uses full values."""
    if scores is None:
        return None
    return dict(scores, objects=[
        dict(row, iou=round(row['iou'], 4), mean_iou_all_sets=round(row['mean_iou_all_sets'], 4))
        for row in scores['objects']],
        mean_iou=None if scores['mean_iou'] is None else round(scores['mean_iou'], 4))


def summary(args: argparse.Namespace, config: NodeConfig, stats: BagRunStats, *,
            reconstruct_s: float, wall_s: float, scores: Optional[dict], counts: dict) -> dict:
    """Return what ``summary.json`` holds."""
    dropped_sets = dict(stats.sets_failed)
    if stats.sets_rate_dropped:
        dropped_sets[DropReason.RATE] = stats.sets_rate_dropped
    return {
        'bag': str(args.bag), 'out': str(args.out), 'weights': config.weights,
        'device': config.device, 'batch': 1 if config.instances else args.batch,
        'clock': args.clock,
        'camera_topics': [resolve_topic(t, args.node_name) for t in config.camera_topics],
        'image_transport': config.image_transport,
        'mask_topics': resolve_inputs(config, args.node_name).masks,
        'mask_mode': config.mask_mode,
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
        'scores': _rounded(scores),
        'placement': _placement(args, config, stats) if config.calibrated else None,
        'objects': {'published': stats.objects_published,
                    'dropped': {str(r): n for r, n in stats.objects_dropped.items()},
                    'ids': sorted(stats.object_ids)} if config.instances else None,
    }


def _placement(args: argparse.Namespace, config: NodeConfig, stats: BagRunStats) -> dict:
    """Where placed results went, what calibration was read, and every placement."""
    return {
        'fixed_frame': config.fixed_frame, 'object_frame': config.frame_id,
        'camera_poses': 'camera_poses' if config.camera_poses else 'recorded TF',
        'camera_info_topics': resolve_inputs(config, args.node_name).infos,
        'camera_info_unusable': stats.infos_bad, 'tf': dict(stats.tf),
        'placed': [_placed(*row) for row in stats.placed],
    }


def _placed(stamp: int, pose: ObjectPose, quality: float, object_id: Optional[int] = None
            ) -> dict:
    """Return one placement's row; with mask_mode instances it names its object's id."""
    row = {'stamp_ns': stamp} if object_id is None else {'stamp_ns': stamp,
                                                         'object_id': object_id}
    return dict(row, position_m=[round(float(v), 5) for v in pose.position],
                heading_deg=round(math.degrees(pose.heading_rad), 3),
                size_m=round(float(pose.size_m), 5), silhouette_iou=round(float(quality), 4))


def report(args: argparse.Namespace, stats: BagRunStats, summary: dict,
           scores: Optional[dict]) -> None:
    """Print the run's result: sets, drops, the IoU table, where the output went."""
    dropped = ', '.join(f'{n} {r}' for r, n in sorted(stats.frames_dropped.items())) or 'none'
    set_drops = ', '.join(f'{n} {r}' for r, n in sorted(summary['sets']['dropped'].items())) \
        or 'none'
    print(f'{stats.sets_found} view set(s) found, {stats.reconstructed} reconstructed in '
          f'{stats.passes} forward pass(es) ({summary["sets_per_s"]} sets/s, model '
          f'{stats.model_s:.1f} s); sets dropped: {set_drops}; frames dropped: {dropped}')
    objects = summary['objects']
    if objects is not None:
        left_out = ', '.join(f'{n} {r}' for r, n in objects['dropped'].items())
        print(f'{objects["published"]} object(s) written in {summary["placement"]["fixed_frame"]}'
              f' (ids {", ".join(map(str, objects["ids"])) or "none"}); left out: {left_out}')
    elif summary['placement'] is not None:
        placement = summary['placement']
        print(f'placed {len(placement["placed"])} in {placement["fixed_frame"]} (camera poses '
              f'from {placement["camera_poses"]})')
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
