"""What the demo writes once it has scored: per object a picture and a PLY, and ``summary.json``.

The picture shows the camera views (and masks) above the reconstruction and the ground truth;
the PLY is the scored cloud as the node published it; the summary holds every object's IoU and
the end-to-end latencies. No ROS here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...core.scoring import ScoredObject
from ...core.visualize import render_grid_views
from ...core.voxels import SHAPENET_TO_ROS, write_ply
from .scene_setup import DemoSetup

PICTURE_ROW_PX = 200  # height of the row of camera views


def ros_grid_to_shapenet(grid: np.ndarray) -> np.ndarray:
    """Invert :func:`pix2voxpp_ros.core.voxels.grid_to_ros_axes` (for pictures)."""
    order = [int(np.argmax(row)) for row in SHAPENET_TO_ROS]  # ROS axis i reads ShapeNet order[i]
    return np.ascontiguousarray(grid.transpose(np.argsort(order)))


def _row(images: list[np.ndarray]) -> np.ndarray:
    """Scale images to one height and put them side by side."""
    height = PICTURE_ROW_PX
    return np.hstack([cv2.resize(v, (int(v.shape[1] * height / v.shape[0]), height),
                                 interpolation=cv2.INTER_AREA) for v in images])


def picture(item: ScoredObject) -> np.ndarray:
    """Camera views (and their masks) on top; reconstruction and ground truth below (BGR)."""
    top = cv2.cvtColor(_row(item.views), cv2.COLOR_RGB2BGR)
    if item.masks:
        masks = cv2.cvtColor(_row(item.masks), cv2.COLOR_GRAY2BGR)
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


def mean_iou(scored: list[ScoredObject]) -> float:
    """Return the mean IoU of the scored objects."""
    return statistics.fmean(item.iou for item in scored)


def summary(scored: list[ScoredObject], latencies: list[float], *, weights: Path,
            setup: DemoSetup) -> dict[str, Any]:
    """Return ``summary.json``'s content: each object's score, the mean IoU, the latencies."""
    latencies = sorted(latencies)
    return {
        'objects': [{'name': s.name, 'iou': round(s.iou, 4), 'stamp_ns': s.stamp_ns,
                     'points': s.points, 'truth_voxels': s.truth_voxels,
                     'latency_s': round(s.latency_s, 4)} for s in scored],
        'mean_iou': round(mean_iou(scored), 4),
        'latency_s': {'median': round(statistics.median(latencies), 4),
                      'p95': round(latencies[int(0.95 * (len(latencies) - 1))], 4),
                      'clouds': len(latencies)},
        'weights': str(weights), 'cameras': setup.cameras,
        'scene': setup.scene, 'masks': setup.masks, 'compressed': setup.compressed,
    }


def write_report(out: Path, scored: list[ScoredObject], latencies: list[float], *,
                 weights: Path, setup: DemoSetup) -> dict[str, Any]:
    """Write every object's picture and PLY and ``summary.json`` under ``out``; return it."""
    for k, item in enumerate(scored):
        path = out / f'{k:02d}_{item.name.replace("/", "_")}.png'
        cv2.imwrite(str(path), picture(item))
        # The scored cloud as the node published it (metres, ROS axes, occupancy).
        write_ply(path.with_suffix('.ply'), item.cloud[:, :3], item.cloud[:, 3])
    content = summary(scored, latencies, weights=weights, setup=setup)
    (out / 'summary.json').write_text(json.dumps(content, indent=2))
    return content
