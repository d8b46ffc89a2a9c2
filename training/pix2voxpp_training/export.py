"""``pix2voxpp-export``: turn a training checkpoint into a deployment file for the robot.

The deployment file is a project checkpoint with weights only (no optimizer, no history),
optionally float16, whose metadata carries what the node needs and what a person asks later:
variant, threshold, training configuration, dataset and validation IoU, every training step
behind it (each step's ``--init``, back to the first), and with ``--test-json`` the test-split
figures ``pix2voxpp-eval --json`` measured. ``--onnx`` also (or
only) writes the network as ONNX with dynamic batch and views axes, for ONNX Runtime or TensorRT.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from pix2voxpp_ros.core.backends import BackendError, OnnxRuntimeRunner, export_onnx
from pix2voxpp_ros.core.checkpoint import (CheckpointError, WeightsMetadata, read_checkpoint,
                                           save_checkpoint)

ONNX_TOLERANCE = 1e-4  # largest difference from PyTorch accepted for the written ONNX model
MAX_TRAINING_STEPS = 16  # bound on the --init chain followed (a chain never loops, but be sure)


def summarize_test_split(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Condense ``pix2voxpp-eval --json`` output into the figures a deployment file carries.

    :returns: split, objects, and per view count the IoU (best over thresholds, and at the
        weights' threshold), F-Score@1% and, when measured, merger minus plain average with its
        95 % interval. A figure the evaluation did not compute (the weights' threshold not among
        those evaluated, F-scores off with ``--no-fscore``) is None.
    :raises ValueError: the dictionary is not an evaluation of ``pix2voxpp-eval``.
    """
    try:
        comparison = {c['views']: c for c in evaluation.get('comparison', [])}
        views = []
        for result in evaluation['results']:
            at_weights, fscore = result['iou']['at_weights_threshold'], result['fscore']
            row = {'views': result['views'], 'iou': round(result['iou']['best'], 4),
                   'iou_threshold': result['iou']['best_threshold'],
                   'iou_at_weights_threshold': (None if at_weights is None
                                                else round(at_weights, 4)),
                   'fscore_1pct': None if fscore is None else round(fscore['overall'], 4)}
            if result['views'] in comparison:
                c = comparison[result['views']]
                row['merger_minus_average'] = round(c['difference'], 4)
                row['merger_minus_average_ci95'] = [round(v, 4) for v in c['ci95']]
            views.append(row)
        return {'split': evaluation['split'], 'objects': evaluation['objects'], 'views': views}
    except (KeyError, TypeError) as exc:
        raise ValueError(f'not a pix2voxpp-eval result (missing {exc})') from exc


def training_steps(weights: Path, loaded: Any) -> list[dict[str, Any]]:
    """Describe the training steps behind a checkpoint, the last first.

    Each step names its checkpoint, stage, dataset and object counts, the epochs trained into
    that checkpoint (a best.pth: up to its best epoch), its schedule (as its configuration and
    command-line overrides set it) and its best validation IoU; then the step its ``--init``
    came from is read, until one started from scratch. A checkpoint of the chain that can no
    longer be read where training read it ends the list with
    ``{'checkpoint': path, 'unavailable': reason}``.

    :param weights: path of ``loaded``.
    :param loaded: the checkpoint read from ``weights``.
    """
    steps: list[dict[str, Any]] = []
    path: Path | None = weights
    while path is not None and len(steps) < MAX_TRAINING_STEPS:
        training: dict[str, Any] = loaded.extra.get('training') or {}
        provenance = loaded.metadata.provenance
        stage = training.get('stage')
        schedule = (training.get('config') or {}).get(f'stage{stage}') or {}
        steps.append({
            'checkpoint': str(path), 'stage': stage, 'dataset': provenance.get('dataset'),
            'objects': provenance.get('objects'), 'epochs': training.get('epoch'),
            'best_epoch': (training.get('best') or {}).get('epoch'),
            'val_iou': provenance.get('val_iou'),
            'schedule': {key: schedule.get(key) for key in
                         ('batch_size', 'lr', 'milestones', 'gamma', 'min_views', 'max_views')},
        })
        init = training.get('init')
        path = None if init is None else Path(init)
        if path is not None:
            try:
                loaded = read_checkpoint(path)
            except CheckpointError as exc:
                steps.append({'checkpoint': str(path), 'unavailable': str(exc)})
                path = None
    return steps


def export_weights(weights: str | Path, out: str | Path, *, half: bool = False,
                   test: dict[str, Any] | None = None) -> WeightsMetadata:
    """Write the deployment file of a training (or release) checkpoint.

    :param weights: e.g. ``RUN/checkpoints/best.pth`` of stage 2.
    :param out: the deployment file; parent folders are created.
    :param half: store floating-point tensors as float16 (half the size).
    :param test: test-split figures (:func:`summarize_test_split`), stored as
        ``provenance['test']``.
    :returns: the metadata written.
    :raises CheckpointError: the input is unreadable, or the written file does not read back.
    """
    weights, out = Path(weights), Path(out)
    loaded = read_checkpoint(weights)
    training: dict[str, Any] = loaded.extra.get('training') or {}
    config = loaded.model.config
    provenance = dict(loaded.metadata.provenance)
    provenance.update({
        'variant': config.variant,
        'use_refiner': config.use_refiner,
        'use_merger': config.use_merger,
        'threshold': loaded.metadata.threshold,
        'exported_from': str(weights),
        'half': half,
    })
    if training:
        best = training.get('best', {})
        provenance.update({
            'config': training.get('config'),
            'stage': training.get('stage'),
            'epoch': best.get('epoch', training.get('epoch')),
            'val_iou': best.get('iou'),
            'training_steps': training_steps(weights, loaded),
        })
    if test is not None:
        provenance['test'] = test
    metadata = WeightsMetadata(**{**loaded.metadata.to_dict(), 'provenance': provenance})
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, loaded.model, metadata=metadata, half=half)
    read_checkpoint(out)  # the node must be able to load what we wrote
    return metadata


def export_onnx_checked(weights: str | Path, out: str | Path) -> float:
    """Write the ONNX model of a checkpoint and check it against PyTorch with ONNX Runtime.

    :returns: the largest difference from PyTorch over 1 and 3 views; ``nan`` when ONNX Runtime
        is not installed and the check was skipped.
    :raises CheckpointError: the weights are unreadable.
    :raises BackendError: the export failed or ONNX Runtime's results differ by more than
        :data:`ONNX_TOLERANCE`.
    """
    import numpy as np
    import torch

    loaded = read_checkpoint(weights)
    size = loaded.metadata.input_size
    model = loaded.model.float().eval()
    export_onnx(model, out, size=size)
    try:
        runner = OnnxRuntimeRunner(out)
    except BackendError:
        return float('nan')
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, 3, size, size, generator=generator) * 2 - 1
    worst = 0.0
    with torch.inference_mode():
        for views in (images[:, :1], images):
            worst = max(worst, float(np.abs(runner(views.numpy()) - model(views).numpy()).max()))
    if not worst <= ONNX_TOLERANCE:
        raise BackendError(f'ONNX Runtime differs from PyTorch by {worst:.3g} on {out}')
    return worst


def build_parser() -> argparse.ArgumentParser:
    """Build the ``pix2voxpp-export`` command line."""
    parser = argparse.ArgumentParser(
        prog='pix2voxpp-export',
        description='Write a deployment file (weights and metadata only) from a checkpoint.')
    parser.add_argument('--weights', type=Path, required=True,
                        help='training checkpoint, e.g. RUN/checkpoints/best.pth of stage 2')
    parser.add_argument('--out', type=Path, help='deployment file (.pth) to write')
    parser.add_argument('--half', action='store_true', help='store weights as float16')
    parser.add_argument('--test-json', type=Path, metavar='EVAL.json',
                        help='pix2voxpp-eval --json of these weights: its test-split figures go '
                             "into the file's metadata")
    parser.add_argument('--onnx', type=Path, metavar='OUT.onnx',
                        help='also write the network as ONNX (dynamic batch and views axes), '
                        'checked against PyTorch with ONNX Runtime when it is installed')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pix2voxpp-export``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.onnx is None:
        parser.error('give --out, --onnx or both')
    try:
        if args.onnx is not None:
            difference = export_onnx_checked(args.weights, args.onnx)
            checked = ('not checked: ONNX Runtime is not installed' if math.isnan(difference)
                       else f'ONNX Runtime within {difference:.1g} of PyTorch')
            print(f'wrote {args.onnx} ({args.onnx.stat().st_size / 1e6:.1f} MB, inputs '
                  f'images (batch, views, 3, 224, 224), {checked})')
        if args.out is None:
            return 0
        test = None
        if args.test_json is not None:
            try:
                test = summarize_test_split(json.loads(args.test_json.read_text()))
            except (ValueError, OSError) as exc:  # JSONDecodeError is a ValueError
                raise CheckpointError(f'--test-json {args.test_json}: {exc}') from exc
        metadata = export_weights(args.weights, args.out, half=args.half, test=test)
    except (CheckpointError, BackendError, OSError) as exc:
        print(f'pix2voxpp-export: error: {exc}', file=sys.stderr)
        return 2
    provenance = metadata.provenance
    size_mb = args.out.stat().st_size / 1e6
    print(f'wrote {args.out} ({size_mb:.1f} MB, Pix2Vox++/{provenance["variant"]}, '
          f'{"fp16" if args.half else "fp32"}, threshold {metadata.threshold:g}, '
          f'val IoU {provenance.get("val_iou")})')
    if not provenance['use_merger']:
        print('note: these weights have no merger (stage 1); several views will be averaged',
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
