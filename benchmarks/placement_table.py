"""Placement accuracy and time on the held-out tabletop and wrist scenes, in one process.

For each held-out object of the rig's sequence (same objects, scenes and cameras as
``pix2voxpp-demo``) this renders the views and true masks, reconstructs with the given weights
(the node's preprocessing with masks), places the scene in the fixed frame at a random pose and
size (:mod:`pix2voxpp_ros.core.synthetic.world`), estimates the placement from the masks and the
cameras' poses alone (:func:`pix2voxpp_ros.core.placement.place_object`) and scores it against
the truth, with and without silhouette carving. The wrist scene uses three frames of the orbiting
camera, 4 s apart.

Run (about 10 s per object on 2 cores)::

    .venv/bin/python benchmarks/placement_table.py --objects 16 --scene tabletop \
        --out out/placement
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import pix2voxpp_ros
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.metrics import (PlacementScore, iou, placement_summary,
                                        score_placement, world_iou)
from pix2voxpp_ros.core.placement import (CalibratedView, ObjectPose, PlacementError, carve,
                                          place_object)
from pix2voxpp_ros.core.rig_config import rig_config_from_values, rig_defaults
from pix2voxpp_ros.core.synthetic import dataset_object
from pix2voxpp_ros.core.synthetic.scenes import make_tabletop_scene, render_scene_view
from pix2voxpp_ros.core.synthetic.voxelize import voxelize
from pix2voxpp_ros.core.synthetic.world import camera_to_fixed, random_object_pose

WRIST_TIMES_S = (0.0, 4.0, 8.0)
PLACEMENT_FIELDS = tuple(PlacementScore.__dataclass_fields__)
DEFAULT_WEIGHTS = Path(pix2voxpp_ros.__file__).parent / 'weights' / 'pix2voxpp_f_synthetic.pth'


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--objects', type=int, default=16)
    parser.add_argument('--scene', choices=('tabletop', 'wrist'), default='tabletop')
    parser.add_argument('--weights', type=Path, help='checkpoint (default: the demo weights)')
    parser.add_argument('--out', type=Path, default=Path('out/placement'))
    return parser.parse_args(argv)


class SceneObject(NamedTuple):
    """One held-out object's scene, reconstructed: what placement gets and the truth."""

    name: str
    occupied: np.ndarray  # (32, 32, 32) bool, ShapeNet axes: the reconstruction
    views: list[CalibratedView]
    truth: np.ndarray  # (32, 32, 32) bool, ShapeNet axes
    truth_pose: ObjectPose


def scene_object(reconstructor: Reconstructor, config, count: int) -> SceneObject:
    """Render, reconstruct and place in the world object number ``count`` of the rig's sequence."""
    category = config.categories[count % len(config.categories)]
    index = config.first_index + count // len(config.categories)
    obj = dataset_object(category, index, seed=config.seed)
    if config.scene == 'wrist':
        cameras = [config.wrist_camera(t) for t in WRIST_TIMES_S]
        occluder = None
    else:
        cameras = config.cameras()
        occluder = cameras[0].azimuth_deg
    layout = make_tabletop_scene(obj, seed=config.seed + count, occluder_azimuth_deg=occluder)
    truth_pose = random_object_pose(np.random.default_rng([config.seed, count, 31]), category,
                                    layout.table_y)
    rendered = [render_scene_view(layout, camera) for camera in cameras]
    inputs = np.stack([reconstructor.preprocess(r.image, encoding='rgb8', roi_margin=-1.0,
                                                mask=r.mask.astype(np.uint8) * 255)
                       for r in rendered])  # (V, 3, 224, 224)
    return SceneObject(
        f'{category}/{index}', reconstructor.infer(inputs[None])[0] >= reconstructor.threshold,
        [CalibratedView(camera.intrinsics, camera_to_fixed(camera, truth_pose), r.mask)
         for camera, r in zip(cameras, rendered)], voxelize(obj), truth_pose)


def score_object(reconstructor: Reconstructor, config, count: int) -> dict:
    """Reconstruct, place and score object number ``count`` of the rig's sequence."""
    name, occupied, views, truth, truth_pose = scene_object(reconstructor, config, count)
    start = time.perf_counter()
    placement = place_object(occupied, views)
    place_s = time.perf_counter() - start
    start = time.perf_counter()
    carved = carve(occupied, placement.pose, views)
    carve_s = time.perf_counter() - start
    score = score_placement(occupied, placement.pose, truth, truth_pose)
    return {
        'name': name,
        **vars(score),  # size_m, world_iou, position/size/heading errors (core.metrics)
        'iou': iou(occupied, truth),
        'carved_iou': iou(carved, truth),
        'world_iou_carved': world_iou(carved, placement.pose, truth, truth_pose),
        'silhouette_iou': placement.silhouette_iou,
        'place_ms': 1000.0 * place_s,
        'carve_ms': 1000.0 * carve_s,
    }


def summary(objects: list[dict]) -> dict:
    """Means, medians and p90s of the per-object scores (the world ones: core.metrics)."""
    place = [o['place_ms'] for o in objects]
    scores = [PlacementScore(**{name: o[name] for name in PLACEMENT_FIELDS}) for o in objects]
    return {
        'objects': len(objects),
        'mean_iou': statistics.fmean(o['iou'] for o in objects),
        'mean_carved_iou': statistics.fmean(o['carved_iou'] for o in objects),
        'mean_world_iou': statistics.fmean(o['world_iou'] for o in objects),
        'mean_world_iou_carved': statistics.fmean(o['world_iou_carved'] for o in objects),
        **placement_summary(scores),
        'silhouette_iou_mean': statistics.fmean(o['silhouette_iou'] for o in objects),
        'place_ms': {'median': statistics.median(place), 'p95': float(np.percentile(place, 95))},
        'carve_ms_median': statistics.median(o['carve_ms'] for o in objects),
    }


def main(argv: list[str] | None = None) -> int:
    """Score every object; print one line each and the summary; write ``placement.json``."""
    args = _parse_args(argv)
    config = rig_config_from_values({**rig_defaults(), 'scene': args.scene})
    reconstructor = Reconstructor(args.weights or DEFAULT_WEIGHTS, device='cpu')
    objects = []
    for count in range(args.objects):
        try:
            item = score_object(reconstructor, config, count)
        except PlacementError as exc:
            print(f'object {count}: placement failed: {exc}', file=sys.stderr)
            return 1
        objects.append(item)
        heading = item['heading_error_deg']
        print(f'{item["name"]:12s} size {item["size_m"]:6.2f} m  iou {item["iou"]:.3f}  '
              f'world {item["world_iou"]:.3f} (carved {item["world_iou_carved"]:.3f})  '
              f'pos {100 * item["position_error_m"] / item["size_m"]:5.1f} %  '
              f'size {100 * item["size_error"]:+5.1f} %  heading '
              f'{"  –  " if heading is None else f"{heading:5.1f}"}  '
              f'sil {item["silhouette_iou"]:.3f}  {item["place_ms"]:.0f} ms', flush=True)
    result = summary(objects)
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f'placement_{args.scene}.json').write_text(
        json.dumps({'summary': result, 'objects': objects}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
