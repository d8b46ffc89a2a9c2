"""``pix2voxpp-eval``: the paper's multi-view table for a set of weights.

The table holds IoU and F-Score@1% per number of views and per category, written as text,
JSON, CSV and a PNG plot.

Views ``0..n-1`` of each test object go through the released test transform; each object is
encoded once and fused for every requested ``n``. The table's IoU is the released code's number:
for each ``n`` the maximum over thresholds of the mean IoU (all categories at that threshold);
the JSON also holds every threshold and the weights' own recommended threshold.

``--compare-upsampled W.pth`` scores a coarser network on the same images and truth, its grid
repeated to the evaluated network's (each 32³ voxel the 4³ block it covers, as
:func:`pix2voxpp_ros.core.voxels.upsample_grid`), and reports the difference per number of views
with paired bootstrap intervals (IoU, and F-Score@1% when computed): a 128³ network against the
32³ one it must beat.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pix2voxpp_ros.core.checkpoint import read_checkpoint
from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.inference import resolve_device
from pix2voxpp_ros.core.synthetic.dataset import voxel_folder

from .config import AugmentSection, DataSection
from .data import SPLITS, ShapeNetViews, list_objects, make_eval_loader
from .engine import reconstruct_view_prefixes
from .metrics import (THRESHOLDS, fscore_batch, iou_per_threshold, paired_bootstrap,
                      summarize_iou)
from .transforms import TestTransform


class EvaluationError(Pix2VoxError, RuntimeError):
    """Bad evaluation arguments (views, split, empty selection)."""


@dataclass
class ViewResult:
    """Per-sample metrics of one number of views."""

    views: int
    ious: np.ndarray  # (N, T)
    fscores: np.ndarray | None  # (N,); None when F-scores are off


def run_evaluation(weights: str | Path, data: str | Path, views: Sequence[int], *,
                   split: str = 'test', device: str = 'auto', max_objects: int | None = None,
                   categories: Sequence[str] | None = None, merger: bool = True,
                   batch_size: int = 8, workers: int = 1, fscore: bool = True,
                   fscore_threshold: float = 0.3, thresholds: Sequence[float] = THRESHOLDS,
                   compare_average: bool = False, compare_upsampled: str | Path | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Evaluate weights on a split for several numbers of views.

    :param weights: a release or project checkpoint.
    :param data: dataset folder in the ShapeNet / 3D-R2N2 layout.
    :param views: numbers of views, each in 1..24.
    :param merger: ``False`` replaces the merger by the plain average of the views.
    :param compare_average: also fuse the same encoded views by their plain average and add
        ``report['average']`` (the same report for it) and ``report['comparison']`` (merger
        minus average per number of views, with a paired bootstrap 95 % interval).
    :param compare_upsampled: weights of a coarser network (32³ for a 128³ one, the same input
        preprocessing) scored on the same images, its grid upsampled: adds
        ``report['upsampled']`` and ``report['upsampled_comparison']`` (this network minus the
        upsampled one, IoU and F-score, paired bootstrap 95 % intervals).
    :returns: the report (what ``--json`` writes).
    :raises EvaluationError: bad views or an empty selection.
    :raises CheckpointError: unreadable weights.
    :raises ShapeNetDataError: incomplete dataset (the file is named).
    """
    section = DataSection(categories=tuple(categories) if categories else None,
                          max_objects=max_objects, workers=workers)
    counts = _check_selection(views, split, section)
    torch_device = resolve_device(device)
    loaded = read_checkpoint(weights, device=torch_device)
    model = loaded.model.eval()
    if not merger:
        model.merger = None
    resolution = model.config.resolution  # a 128³ network is scored on ShapeNetVox128
    section = replace(section, voxels=voxel_folder(resolution))
    baseline = None if compare_upsampled is None else _baseline(
        compare_upsampled, loaded.metadata, resolution, torch_device)
    records = list_objects(data, split, section)
    if not records:
        raise EvaluationError(f'{Path(data) / section.taxonomy}: the {split} split has no '
                              'objects (of the selected categories)')
    augment = AugmentSection(test_background=int(round(loaded.metadata.background * 255)))
    dataset = ShapeNetViews(records, train=False,
                            transform=TestTransform(augment, metadata=loaded.metadata),
                            views_per_model=section.views_per_model, resolution=resolution)
    loader = make_eval_loader(dataset, views=counts[-1], batch_size=batch_size, workers=workers)
    fusions = ('model', 'average') if compare_average and model.merger is not None \
        else ('model',)
    scores = _score(model, tqdm(loader, desc=f'{split} ({len(records)} objects)',
                                disable=not progress),
                    counts, fusions, device=torch_device, thresholds=thresholds,
                    fscore_threshold=fscore_threshold if fscore else None, baseline=baseline)
    if baseline is not None:
        fusions = (*fusions, 'upsampled')
    names = {r.taxonomy_id: r.taxonomy_name or r.taxonomy_id for r in records}
    reports = {}
    for fusion in fusions:
        results = [ViewResult(n, np.concatenate(scores.ious[fusion][n]),
                              np.concatenate(scores.fscores[fusion][n]) if fscore else None)
                   for n in counts]
        reports[fusion] = build_report(
            results, scores.taxonomy_ids, names, thresholds=tuple(thresholds),
            weights=str(compare_upsampled if fusion == 'upsampled' else weights), split=split,
            merger=(baseline[0].merger is not None if fusion == 'upsampled'
                    else fusion == 'model' and model.merger is not None),
            weights_threshold=(baseline[2] if fusion == 'upsampled'
                               else loaded.metadata.threshold),
            fscore_threshold=fscore_threshold)
    report = reports['model']
    if 'average' in reports:
        report['average'] = reports['average']
        report['comparison'] = compare_fusions(
            {n: np.concatenate(scores.ious['model'][n]) for n in counts},
            {n: np.concatenate(scores.ious['average'][n]) for n in counts},
            report, reports['average'], thresholds=tuple(thresholds))
    if 'upsampled' in reports:
        report['upsampled'] = reports['upsampled']
        report['upsampled_comparison'] = compare_fusions(
            {n: np.concatenate(scores.ious['model'][n]) for n in counts},
            {n: np.concatenate(scores.ious['upsampled'][n]) for n in counts},
            report, reports['upsampled'], thresholds=tuple(thresholds),
            names=('network', 'upsampled'),
            fscores=None if not fscore else (
                {n: np.concatenate(scores.fscores['model'][n]) for n in counts},
                {n: np.concatenate(scores.fscores['upsampled'][n]) for n in counts}))
    return report


_INPUT_FIELDS = ('input_size', 'mean', 'std', 'channel_order', 'background')


def _baseline(path: str | Path, metadata: Any, resolution: int, device: torch.device
              ) -> tuple[torch.nn.Module, int, float]:
    """Load the coarser network to compare with: ``(model, upsampling factor, threshold)``.

    :raises EvaluationError: its grid does not divide this one's into a larger factor, or it
        wants other input preprocessing (then the same images would not be fair to it).
    """
    other = read_checkpoint(path, device=device)
    coarse = other.model.config.resolution
    if coarse >= resolution or resolution % coarse:
        raise EvaluationError(f'--compare-upsampled {path}: a {coarse}³ network cannot be '
                              f'upsampled to the {resolution}³ grid evaluated')
    for name in _INPUT_FIELDS:
        if getattr(other.metadata, name) != getattr(metadata, name):
            raise EvaluationError(f'--compare-upsampled {path}: its {name} '
                                  f'{getattr(other.metadata, name)!r} differs from '
                                  f'{getattr(metadata, name)!r} of --weights; the same images '
                                  'would not fit both')
    return other.model.eval(), resolution // coarse, other.metadata.threshold


def _check_selection(views: Sequence[int], split: str, section: DataSection) -> list[int]:
    """Return the sorted distinct numbers of views; refuse bad ones or an unknown split."""
    counts = sorted(set(int(v) for v in views))
    if not counts or counts[0] < 1 or counts[-1] > section.views_per_model:
        raise EvaluationError(f'--views must be in 1..{section.views_per_model}, got {views}')
    if split not in SPLITS:
        raise EvaluationError(f'--split must be one of {", ".join(SPLITS)}, got {split!r}')
    return counts


@dataclass
class _Scores:
    """Per-batch metrics, fusion -> views -> list of ``(B, T)`` IoUs or ``(B,)`` F-scores."""

    ious: dict[str, dict[int, list[np.ndarray]]]
    fscores: dict[str, dict[int, list[np.ndarray]]]
    taxonomy_ids: list[str]


def _score(model: torch.nn.Module, batches: Any, counts: Sequence[int],
           fusions: Sequence[str], *, device: torch.device, thresholds: Sequence[float],
           fscore_threshold: float | None,
           baseline: tuple[torch.nn.Module, int, float] | None = None) -> _Scores:
    """Reconstruct every batch from its first views and score it (F-scores unless None).

    :param baseline: ``(coarser network, factor, threshold)``: also score its volumes, repeated
        ``factor`` times along each axis, as the fusion ``'upsampled'``.
    """
    names = (*fusions, 'upsampled') if baseline is not None else tuple(fusions)
    scores = _Scores({f: {n: [] for n in counts} for f in names},
                     {f: {n: [] for n in counts} for f in names}, [])
    with torch.inference_mode():
        for batch in batches:
            images = batch['images'].to(device)
            target = batch['volume']
            scores.taxonomy_ids.extend(batch['taxonomy_id'])
            predictions = reconstruct_view_prefixes(model, images, counts, fusions=fusions)
            if len(fusions) == 1:
                predictions = {fusions[0]: predictions}
            if baseline is not None:
                coarse = reconstruct_view_prefixes(baseline[0], images, counts)
                predictions['upsampled'] = {  # nearest: each voxel becomes its block
                    n: F.interpolate(v.float()[:, None], scale_factor=baseline[1],
                                     mode='nearest')[:, 0] for n, v in coarse.items()}
            for fusion, volumes in predictions.items():
                for n, occupancy in volumes.items():
                    occupancy = occupancy.float().cpu()
                    scores.ious[fusion][n].append(
                        iou_per_threshold(occupancy, target, thresholds))
                    if fscore_threshold is not None:
                        scores.fscores[fusion][n].append(
                            fscore_batch(occupancy, target, threshold=fscore_threshold))
    return scores


def compare_fusions(merger_ious: dict[int, np.ndarray], average_ious: dict[int, np.ndarray],
                    merger_report: dict[str, Any], average_report: dict[str, Any], *,
                    thresholds: tuple[float, ...], names: tuple[str, str] = ('merger', 'average'),
                    fscores: tuple[dict[int, np.ndarray], dict[int, np.ndarray]] | None = None
                    ) -> list[dict[str, Any]]:
    """Merger minus plain average per number of views, on the same objects and views.

    Each fusion's per-object IoUs are taken at that fusion's own best threshold (the numbers of
    its table), and the mean of the paired differences gets a percentile bootstrap 95 %
    interval over objects (:func:`paired_bootstrap`). The same compares any two predictions of
    the same objects (``names`` label the keys: ``<first>_iou``, ``<second>_better_share``).

    :param merger_ious: ``{views: (N, T)}`` per-object IoU per threshold, merger.
    :param average_ious: the same for the plain average.
    :param fscores: per-object F-scores ``{views: (N,)}`` of both, to compare them too.
    """
    first, second = names
    rows = []
    for merged_row, average_row in zip(merger_report['results'], average_report['results']):
        n = merged_row['views']
        t_merger = thresholds.index(merged_row['iou']['best_threshold'])
        t_average = thresholds.index(average_row['iou']['best_threshold'])
        differences = merger_ious[n][:, t_merger] - average_ious[n][:, t_average]
        interval = paired_bootstrap(differences)
        row = {'views': n, f'{first}_iou': merged_row['iou']['best'],
               f'{second}_iou': average_row['iou']['best'],
               'difference': interval.mean, 'ci95': [interval.low, interval.high],
               'objects': int(len(differences)), 'resamples': interval.resamples,
               f'{first}_better_share': float(np.mean(differences > 0)),
               f'{second}_better_share': float(np.mean(differences < 0))}
        if fscores is not None:
            fscore = paired_bootstrap(fscores[0][n] - fscores[1][n])
            row.update(fscore_difference=fscore.mean, fscore_ci95=[fscore.low, fscore.high])
        rows.append(row)
    return rows


def build_report(results: Sequence[ViewResult], taxonomy_ids: Sequence[str],
                 names: dict[str, str], *, thresholds: tuple[float, ...], weights: str,
                 split: str, merger: bool, weights_threshold: float,
                 fscore_threshold: float) -> dict[str, Any]:
    """Summarize per-sample metrics into the JSON report."""
    labels = np.asarray(taxonomy_ids)
    rows = []
    for result in results:
        summary = summarize_iou(result.ious, taxonomy_ids, thresholds)
        best = summary.best_index
        at_weights = (thresholds.index(weights_threshold)
                      if weights_threshold in thresholds else None)
        rows.append({
            'views': result.views,
            'iou': {
                'thresholds': list(thresholds),
                'overall': [float(v) for v in summary.overall],
                'best': summary.best_iou,
                'best_threshold': summary.best_threshold,
                'at_weights_threshold': (None if at_weights is None
                                         else float(summary.overall[at_weights])),
                'per_category': {names.get(k, k): [float(v) for v in values]
                                 for k, values in summary.per_category.items()},
                'per_category_best': {names.get(k, k): float(values[best])
                                      for k, values in summary.per_category.items()},
            },
            'fscore': None if result.fscores is None else {  # JSON null: not computed
                'overall': float(np.mean(result.fscores)),
                'per_category': {names.get(k, k): float(np.mean(result.fscores[labels == k]))
                                 for k in summary.per_category},
            },
            'counts': {names.get(k, k): n for k, n in summary.counts.items()},
        })
    return {
        'weights': weights, 'split': split, 'merger': merger, 'objects': len(taxonomy_ids),
        'views': [r.views for r in results], 'thresholds': list(thresholds),
        'weights_threshold': weights_threshold, 'fscore_threshold': fscore_threshold,
        'results': rows,
    }


def format_table(report: dict[str, Any]) -> str:
    """Format the paper-style table: one row per category, one column per number of views."""
    rows = report['results']
    categories = list(rows[0]['counts'])
    header = f'{"category":<14}{"n":>5}' + ''.join(f'{str(r["views"]) + "-view":>9}'
                                                   for r in rows)
    fusion = 'merger' if report['merger'] else 'average of views'
    lines = [f'{report["split"]} split, {report["objects"]} objects, fusion: {fusion}', '',
             'IoU (max over thresholds of the mean IoU, as the released code reports)', header]
    for name in categories:
        lines.append(f'{name:<14}{rows[0]["counts"][name]:>5}'
                     + ''.join(f'{r["iou"]["per_category_best"][name]:>9.4f}' for r in rows))
    lines.append(f'{"overall":<14}{report["objects"]:>5}'
                 + ''.join(f'{r["iou"]["best"]:>9.4f}' for r in rows))
    lines.append(f'{"threshold":<19}'
                 + ''.join(f'{r["iou"]["best_threshold"]:>9g}' for r in rows))
    if rows[0]['fscore'] is not None:
        lines += ['', f'F-Score@1% (binarized at {report["fscore_threshold"]:g})', header]
        for name in categories:
            lines.append(f'{name:<14}{rows[0]["counts"][name]:>5}'
                         + ''.join(f'{r["fscore"]["per_category"][name]:>9.4f}' for r in rows))
        lines.append(f'{"overall":<14}{report["objects"]:>5}'
                     + ''.join(f'{r["fscore"]["overall"]:>9.4f}' for r in rows))
    if 'upsampled_comparison' in report:
        lines += ['', f'Against {Path(report["upsampled"]["weights"]).name} upsampled, on the '
                  'same images and truth (paired bootstrap 95 % intervals over objects)',
                  f'{"views":>6}{"IoU":>9}{"upsmpl":>9}{"diff":>9}   95 % interval'
                  '        F-score diff   95 % interval']
        for row in report['upsampled_comparison']:
            low, high = row['ci95']
            fscore = '' if 'fscore_difference' not in row else (
                f'  {row["fscore_difference"]:>+9.4f}   [{row["fscore_ci95"][0]:+.4f}, '
                f'{row["fscore_ci95"][1]:+.4f}]')
            lines.append(f'{row["views"]:>6}{row["network_iou"]:>9.4f}'
                         f'{row["upsampled_iou"]:>9.4f}{row["difference"]:>+9.4f}   '
                         f'[{low:+.4f}, {high:+.4f}]{fscore}')
    if 'comparison' in report:
        lines += ['', 'Merger against the plain average of the same views (IoU; paired '
                  'bootstrap 95 % interval over objects)',
                  f'{"views":>6}{"merger":>9}{"average":>9}{"diff":>9}   95 % interval']
        for row in report['comparison']:
            low, high = row['ci95']
            verdict = 'merger better' if low > 0 else 'average better' if high < 0 else \
                'not resolved'
            lines.append(f'{row["views"]:>6}{row["merger_iou"]:>9.4f}{row["average_iou"]:>9.4f}'
                         f'{row["difference"]:>+9.4f}   [{low:+.4f}, {high:+.4f}]  {verdict}')
    return '\n'.join(lines)


def write_csv(report: dict[str, Any], path: Path) -> None:
    """One row per (views, category) with IoU per threshold, best IoU and F-score.

    The F-score cells are empty when F-scores were not computed.
    """
    thresholds = report['thresholds']
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['views', 'category', 'count', *[f'iou@{t:g}' for t in thresholds],
                         'iou_best', 'best_threshold', 'fscore@1%'])
        for row in report['results']:
            iou, fscore = row['iou'], row['fscore']
            for name, values in iou['per_category'].items():
                writer.writerow([row['views'], name, row['counts'][name],
                                 *[f'{v:.6f}' for v in values],
                                 f'{iou["per_category_best"][name]:.6f}', iou['best_threshold'],
                                 '' if fscore is None else f'{fscore["per_category"][name]:.6f}'])
            writer.writerow([row['views'], 'overall', report['objects'],
                             *[f'{v:.6f}' for v in iou['overall']], f'{iou["best"]:.6f}',
                             iou['best_threshold'],
                             '' if fscore is None else f'{fscore["overall"]:.6f}'])


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Plot IoU and F-score against the number of views: overall bold, categories thin.

    Without F-scores the plot has the IoU panel only.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = report['results']
    views = [r['views'] for r in rows]
    panels = [('iou', 'IoU')] + ([] if rows[0]['fscore'] is None else [('fscore', 'F-Score@1%')])
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 0.5, 4.2),
                                squeeze=False)
    for axis, (key, title) in zip(axes[0], panels):
        for name in rows[0]['counts']:
            values = [r['iou']['per_category_best'][name] if key == 'iou'
                      else r['fscore']['per_category'][name] for r in rows]
            axis.plot(views, values, marker='.', linewidth=1, alpha=0.6, label=name)
        overall = [r['iou']['best'] if key == 'iou' else r['fscore']['overall'] for r in rows]
        axis.plot(views, overall, marker='o', linewidth=2.5, color='black', label='overall')
        for other, style, label in (('average', '--', 'overall, plain average'),
                                    ('upsampled', ':', 'overall, coarser network upsampled')):
            if other in report:
                values = [r['iou']['best'] if key == 'iou' else r['fscore']['overall']
                          for r in report[other]['results']]
                axis.plot(views, values, marker='o', linewidth=2, linestyle=style,
                          color='grey', label=label)
        axis.set_xlabel('views')
        axis.set_ylabel(title)
        axis.set_xticks(views)
        axis.grid(alpha=0.3)
        axis.set_title(f'{title}, {report["split"]} split')
    axes[0][-1].legend(fontsize=7, loc='best')
    fusion = 'merger' if report['merger'] else 'average'
    figure.suptitle(f'{Path(report["weights"]).name} ({fusion})')
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``pix2voxpp-eval`` command line."""
    parser = argparse.ArgumentParser(
        prog='pix2voxpp-eval',
        description='Multi-view evaluation: IoU and F-Score@1% per number of views and category.')
    parser.add_argument('--weights', type=Path, required=True, help='checkpoint (.pth)')
    parser.add_argument('--data', type=Path, required=True, help='dataset folder')
    parser.add_argument('--views', type=int, nargs='+', default=[1, 2, 3, 4, 5, 8, 12, 16, 20],
                        help='numbers of views (views 0..n-1 of each object)')
    parser.add_argument('--split', default='test', choices=SPLITS)
    parser.add_argument('--max-objects', type=int, help='cap on the objects evaluated')
    parser.add_argument('--categories', nargs='+', help='taxonomy ids or names')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--workers', type=int, default=1, help='DataLoader workers')
    parser.add_argument('--no-merger', action='store_true',
                        help='average the views instead of the merger (comparison)')
    parser.add_argument('--compare-average', action='store_true',
                        help='also fuse the same views by their plain average: both tables and '
                             'merger minus average with a paired bootstrap 95 %% interval')
    parser.add_argument('--compare-upsampled', type=Path, metavar='COARSE.pth',
                        help='also score a coarser network (32³ weights for 128³ ones) on the '
                             'same images, its grid upsampled, and the difference with paired '
                             'bootstrap 95 %% intervals')
    parser.add_argument('--no-fscore', action='store_true', help='skip F-Score@1%%')
    parser.add_argument('--json', type=Path, help='write the report here (and, unless given, '
                        'the CSV and PNG next to it)')
    parser.add_argument('--csv', type=Path, help='CSV output')
    parser.add_argument('--plot', type=Path, help='PNG plot of IoU against views')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pix2voxpp-eval``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.max_objects is not None and args.max_objects < 1:
            raise EvaluationError(f'--max-objects must be positive, got {args.max_objects}')
        if args.batch_size < 1 or args.workers < 0:
            raise EvaluationError('--batch-size must be positive and --workers 0 or more')
        report = run_evaluation(
            args.weights, args.data, args.views, split=args.split, device=args.device,
            max_objects=args.max_objects, categories=args.categories,
            merger=not args.no_merger, batch_size=args.batch_size, workers=args.workers,
            fscore=not args.no_fscore, compare_average=args.compare_average,
            compare_upsampled=args.compare_upsampled, progress=not args.no_progress)
    except (Pix2VoxError, ValueError) as exc:
        print(f'pix2voxpp-eval: error: {exc}', file=sys.stderr)
        return 2
    print(format_table(report))
    if 'average' in report:
        print('\n' + format_table(report['average']).split('\n\n', 1)[1].replace(
            'IoU (max', 'Plain average of the views: IoU (max', 1))
    if 'upsampled' in report:
        name = Path(report['upsampled']['weights']).name
        print('\n' + format_table(report['upsampled']).split('\n\n', 1)[1].replace(
            'IoU (max', f'{name} upsampled: IoU (max', 1))
    csv_path, plot_path = args.csv, args.plot
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + '\n')
        csv_path = csv_path or args.json.with_suffix('.csv')
        plot_path = plot_path or args.json.with_suffix('.png')
    for path, writer in ((csv_path, write_csv), (plot_path, write_plot)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer(report, path)
    written = [str(p) for p in (args.json, csv_path, plot_path) if p is not None]
    if written:
        print('wrote ' + ', '.join(written))
    return 0


if __name__ == '__main__':
    sys.exit(main())
