"""What the demo writes once it has scored: per object a picture and a PLY, and ``summary.json``.

The picture shows the camera views (and masks) above the reconstruction and the ground truth;
for a placed cloud (``placement: calibrated``) each view shows the cloud projected into it with
that camera's calibration, the cloud in the fixed frame drawn over the image. The PLY is the
scored cloud as the node published it; the summary holds every object's IoU (and, placed, its
world scores: :class:`~pix2voxpp_ros.core.metrics.PlacementScore`) and the end-to-end
latencies. Tables of several objects (``--objects-per-scene``) get a picture per table (views,
instance label images, each true object beside the object paired with it) and a summary of
every object, found, missed and invented (:func:`write_tables_report`). No ROS here.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ...core.metrics import PlacementScore, placement_summary, round_floats, ros_grid_to_shapenet
from ...core.scene_scoring import TableScore, tables_summary
from ...core.scoring import ScoredObject
from ...core.visualize import render_grid_views
from ...core.voxels import write_ply
from .scene_setup import DemoSetup

PICTURE_ROW_PX = 200  # height of the row of camera views
CLOUD_RGB = (0, 230, 255)  # the projected cloud's colour, and its outline's
OUTLINE_RGB = (0, 0, 150)
CLOUD_ALPHA = 0.6  # how much of the view the projected cloud covers


def project(points: np.ndarray, intrinsics: np.ndarray,
            camera_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project fixed-frame points into a camera: pixels and depths of those in front of it.

    :param points: ``(N, 3)`` metres in the fixed frame.
    :param intrinsics: ``(3, 3)`` K.
    :param camera_pose: ``(4, 4)`` the optical frame (z forward) in the fixed frame.
    :returns: ``(M, 2)`` pixel coordinates and ``(M,)`` depths, metres (M ≤ N, depth > 0).
    """
    local = (np.asarray(points, dtype=np.float64) - camera_pose[:3, 3]) @ camera_pose[:3, :3]
    local = local[local[:, 2] > 1e-6]  # (M, 3) optical frame
    pixels = local @ np.asarray(intrinsics, dtype=np.float64).T  # (M, 3)
    return pixels[:, :2] / pixels[:, 2:], local[:, 2]


def overlay_cloud(view: np.ndarray, points: np.ndarray, voxel_m: float, intrinsics: np.ndarray,
                  camera_pose: np.ndarray) -> np.ndarray:
    """Draw the voxels of a placed cloud over a camera's rgb view ``(H, W, 3)``, blended."""
    pixels, depths = project(points, intrinsics, camera_pose)
    near = (np.abs(pixels) < 1e5).all(axis=1)  # OpenCV takes 32-bit coordinates
    pixels, depths = pixels[near], depths[near]
    radii = np.maximum(1, np.rint(0.5 * intrinsics[0, 0] * voxel_m / depths)).astype(int)
    covered = np.zeros(view.shape[:2], np.uint8)  # (H, W) where a projected voxel lands
    for (u, v), radius in zip(np.rint(pixels).astype(int), radii):
        cv2.circle(covered, (int(u), int(v)), int(radius), 255, -1)
    filled = np.where(covered[..., None] > 0, np.asarray(CLOUD_RGB, np.uint8), view)
    drawn = cv2.addWeighted(filled, CLOUD_ALPHA, view, 1.0 - CLOUD_ALPHA, 0.0)
    contours, _ = cv2.findContours(covered, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # The outline stays about 2 px wide once the row scales the view to its height.
    thickness = max(1, round(2 * view.shape[0] / PICTURE_ROW_PX))
    return cv2.drawContours(drawn, contours, -1, OUTLINE_RGB, thickness)


def _views(item: ScoredObject) -> list[np.ndarray]:
    """Return the camera views, the placed cloud drawn over each where its calibration is known."""
    if item.pose is None or len(item.calibration) != len(item.views):
        return item.views
    voxel_m = item.pose.size_m / item.prediction.shape[0]
    return [overlay_cloud(view, item.cloud[:, :3], voxel_m, k, pose)
            for view, (k, pose) in zip(item.views, item.calibration)]


def _row(images: list[np.ndarray]) -> np.ndarray:
    """Scale images to one height and put them side by side."""
    height = PICTURE_ROW_PX
    return np.hstack([cv2.resize(v, (int(v.shape[1] * height / v.shape[0]), height),
                                 interpolation=cv2.INTER_AREA) for v in images])


def picture(item: ScoredObject) -> np.ndarray:
    """Camera views (and their masks) on top; reconstruction and ground truth below (BGR).

    A placed cloud is drawn over the views, and the titles give its world scores.
    """
    top = cv2.cvtColor(_row(_views(item)), cv2.COLOR_RGB2BGR)
    if item.masks:
        masks = cv2.cvtColor(_row(item.masks), cv2.COLOR_GRAY2BGR)
        top = np.vstack([top, np.full((4, top.shape[1], 3), 255, np.uint8), masks])
    recon = render_grid_views(ros_grid_to_shapenet(item.prediction).astype(np.float32),
                              threshold=0.5, cell_px=5,
                              title=f'reconstruction  IoU {item.iou:.3f}' + (
                                  '' if item.placement is None else
                                  f'  world IoU {item.placement.world_iou:.3f}'))
    truth = render_grid_views(ros_grid_to_shapenet(item.truth).astype(np.float32),
                              threshold=0.5, cell_px=5, title=f'ground truth  {item.name}' + (
                                  '' if item.placement is None else
                                  f'  {item.placement.size_m:.2f} m'))
    bottom = np.hstack([recon, np.full((recon.shape[0], 10, 3), 255, np.uint8), truth])
    width = max(top.shape[1], bottom.shape[1])

    def pad(image: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(image, 0, 0, 0, width - image.shape[1], cv2.BORDER_CONSTANT,
                                  value=(255, 255, 255))
    return np.vstack([pad(top), np.full((10, width, 3), 255, np.uint8), pad(bottom)])


def mean_iou(scored: list[ScoredObject]) -> float:
    """Return the mean IoU of the scored objects."""
    return statistics.fmean(item.iou for item in scored)


def world_line(item: ScoredObject) -> str:
    """Return the printed line of a placed object's world scores (relative: of its true size)."""
    return f'  {"":<14} {placement_text(item.placement)}'


def placement_text(score: PlacementScore) -> str:
    """Return a placed object's world scores as text (relative errors: of its true size)."""
    heading = ('– (round)' if score.heading_error_deg is None
               else f'{score.heading_error_deg:.1f} deg')
    return (f'world IoU {score.world_iou:.3f}  position '
            f'{100 * score.position_error_rel:.1f} % of {score.size_m:.2f} m  size '
            f'{100 * score.size_error:+.1f} %  heading {heading}')


def world_summary_line(content: dict[str, Any]) -> str:
    """Return the printed line of ``summary.json``'s world means and medians."""
    world = content['world']
    heading = world['heading_error_deg']
    return (f'mean world IoU {world["world_iou"]["mean"]:.3f}; position error median '
            f'{100 * world["position_error_rel"]["median"]:.1f} % of the size, size error '
            f'median {100 * world["size_error_abs"]["median"]:.1f} %, heading error median '
            + ('–' if heading['median'] is None else f'{heading["median"]:.1f} deg')
            + f' ({heading["objects"]} objects with a heading)')


def _object_entry(item: ScoredObject) -> dict[str, Any]:
    """One object of ``summary.json``."""
    entry = {'name': item.name, 'iou': round(item.iou, 4), 'stamp_ns': item.stamp_ns,
             'points': item.points, 'truth_voxels': item.truth_voxels,
             'latency_s': round(item.latency_s, 4)}
    if item.placement is not None:
        entry.update(item.placement.as_dict(),
                     position_error_rel=round(item.placement.position_error_rel, 4),
                     placed_size_m=round(item.pose.size_m, 4))
    return entry


def summary(scored: list[ScoredObject], latencies: list[float], *, weights: Path,
            setup: DemoSetup, missed: Sequence[str] = ()) -> dict[str, Any]:
    """Return ``summary.json``'s content: each object's score, the mean IoU, the latencies.

    Placed scenes add per object ``size_m``, ``world_iou``, ``position_error_m``,
    ``size_error``, ``heading_error_deg`` (:class:`~..core.metrics.PlacementScore`), and
    ``world``: their means, medians and p90s (:func:`~..core.metrics.placement_summary`).
    ``missed``: objects shown before the last scored one that got no scored cloud.
    """
    latencies = sorted(latencies)
    content = {
        'objects': [_object_entry(s) for s in scored],
        'mean_iou': round(mean_iou(scored), 4),
        'latency_s': {'median': round(statistics.median(latencies), 4),
                      'p95': round(latencies[int(0.95 * (len(latencies) - 1))], 4),
                      'clouds': len(latencies)},
        'weights': str(weights), 'cameras': setup.cameras,
        'scene': setup.scene, 'masks': setup.masks, 'compressed': setup.compressed,
        'placement': setup.placement, 'missed': list(missed),
    }
    placed = [s.placement for s in scored if s.placement is not None]
    if setup.placed:
        content.update(fixed_frame=setup.fixed_frame, placement_note=setup.note,
                       world=round_floats(placement_summary(placed)))
        content['mean_world_iou'] = content['world']['world_iou']['mean']
    return content


def write_report(out: Path, scored: list[ScoredObject], latencies: list[float], *,
                 weights: Path, setup: DemoSetup, missed: Sequence[str] = ()) -> dict[str, Any]:
    """Write every object's picture and PLY and ``summary.json`` under ``out``; return it."""
    for k, item in enumerate(scored):
        path = out / f'{k:02d}_{item.name.replace("/", "_")}.png'
        cv2.imwrite(str(path), picture(item))
        # The scored cloud as the node published it (metres, ROS axes, occupancy).
        write_ply(path.with_suffix('.ply'), item.cloud[:, :3], item.cloud[:, 3])
    content = summary(scored, latencies, weights=weights, setup=setup, missed=missed)
    (out / 'summary.json').write_text(json.dumps(content, indent=2))
    return content


# --- tables of several objects (--objects-per-scene) --------------------------------------------

def table_lines(table: TableScore) -> list[str]:
    """Return the printed lines of one scored table: the counts, then each paired object."""
    lines = [f'  table {table.name}: found {len(table.objects)}/{table.total}'
             + (f', missed {", ".join(table.missed)}' if table.missed else '')
             + f', invented {len(table.invented)}, latency {table.latency_s * 1000:.0f} ms']
    for score in table.objects:
        lines.append(f'    {score.name:<12} id {score.found:<3} IoU {score.iou:.3f}  '
                     f'{placement_text(score.placement)}')
    return lines


def tables_summary_line(content: dict[str, Any]) -> str:
    """Return the printed line of a tables ``summary.json``'s totals."""
    totals = content['totals']
    world = totals['world']
    share = totals['found_share']

    def spread(name: str, scale: float = 100.0, unit: str = ' %') -> str:
        values = world[name]
        if values['median'] is None:
            return '–'
        return f'{scale * values["median"]:.1f}/{scale * values["p90"]:.1f}{unit}'
    mean = totals['mean_world_iou']
    return (f'{totals["found"]} of {totals["objects"]} objects found'
            + ('' if share is None else f' ({100 * share:.1f} %)')
            + f', {totals["invented"]} invented; mean world IoU '
            + ('–' if mean is None else f'{mean:.3f}')
            + f'; median/p90 position {spread("position_error_rel")} of the size, size '
            f'{spread("size_error_abs")}, heading {spread("heading_error_deg", 1.0, " deg")}')


def _label_colours(labels: np.ndarray) -> np.ndarray:
    """Colour an instance label image (BGR): each id its own colour, the background black."""
    coloured = cv2.applyColorMap(((labels.astype(np.int64) * 97) % 255).astype(np.uint8),
                                 cv2.COLORMAP_HSV)
    coloured[labels == 0] = 0
    return coloured


def table_picture(table: TableScore) -> np.ndarray:
    """Draw the views and label images, and below each true object beside its paired one (BGR)."""
    rows = []
    if table.views:
        rows.append(cv2.cvtColor(_row(table.views), cv2.COLOR_RGB2BGR))
    if table.labels:
        rows.append(_row([_label_colours(labels) for labels in table.labels]))
    paired = {score.name: score for score in table.objects}
    found = {obj.label: obj for obj in table.found}
    for truth in table.truths:
        score = paired.get(truth.label)
        panels = [render_grid_views(ros_grid_to_shapenet(truth.grid).astype(np.float32),
                                    threshold=0.5, cell_px=3,
                                    title=f'truth {truth.label} {truth.pose.size_m:.2f} m')]
        if score is not None:
            panels.append(render_grid_views(
                ros_grid_to_shapenet(found[score.found].grid).astype(np.float32),
                threshold=0.5, cell_px=3,
                title=f'id {score.found}  world IoU {score.placement.world_iou:.3f}'))
        rows.append(np.hstack([p for panel in panels
                               for p in (panel, np.full((panel.shape[0], 10, 3), 255,
                                                        np.uint8))]))
    width = max(row.shape[1] for row in rows)
    padded = [cv2.copyMakeBorder(row, 0, 10, 0, width - row.shape[1], cv2.BORDER_CONSTANT,
                                 value=(255, 255, 255)) for row in rows]
    return np.vstack(padded)


def tables_report(tables: Sequence[TableScore], latencies: list[float], *, weights: Path,
                  setup: DemoSetup, unscored: Sequence[Sequence[str]] = (),
                  forgotten: int = 0) -> dict[str, Any]:
    """Return a tables demo's ``summary.json``: every table's objects and the totals.

    :param unscored: tables shown before the last scored one that got no object set.
    :param forgotten: object sets received whose truth never came whole (``sets_unpaired``).
    :returns: ``tables`` (per table ``name``, ``stamp_ns``, ``latency_s``, ``objects`` with
        each paired object's canonical and world scores, ``missed``, ``invented``), ``totals``
        (:func:`~..core.scene_scoring.tables_summary`), ``mean_world_iou``, ``latency_s`` and
        the demo's settings.
    """
    latencies = sorted(latencies)
    totals = round_floats(tables_summary(tables, unscored))
    return {
        'tables': [{'name': t.name, 'stamp_ns': t.stamp_ns, 'latency_s': round(t.latency_s, 4),
                    'objects': [o.as_dict() for o in t.objects], 'missed': t.missed,
                    'invented': t.invented} for t in tables],
        'totals': totals, 'mean_world_iou': totals['mean_world_iou'],
        'latency_s': {'median': round(statistics.median(latencies), 4),
                      'p95': round(latencies[int(0.95 * (len(latencies) - 1))], 4),
                      'sets': len(latencies)} if latencies else None,
        'weights': str(weights), 'cameras': setup.cameras, 'scene': setup.scene,
        'objects_per_scene': setup.objects_per_scene, 'masks': 'instances',
        'compressed': setup.compressed, 'placement': setup.placement,
        'fixed_frame': setup.fixed_frame, 'placement_note': setup.note,
        'unscored_tables': [' '.join(names) for names in unscored],
        'sets_unpaired': forgotten,
    }


def write_tables_report(out: Path, tables: Sequence[TableScore], latencies: list[float], *,
                        weights: Path, setup: DemoSetup, unscored: Sequence[Sequence[str]] = (),
                        forgotten: int = 0) -> dict[str, Any]:
    """Write every table's picture and ``summary.json`` under ``out``; return the summary."""
    for k, table in enumerate(tables):
        name = '_'.join(n.replace('/', '') for n in table.name.split(' '))
        cv2.imwrite(str(out / f'{k:02d}_{name}.png'), table_picture(table))
    content = tables_report(tables, latencies, weights=weights, setup=setup, unscored=unscored,
                            forgotten=forgotten)
    (out / 'summary.json').write_text(json.dumps(content, indent=2))
    return content
