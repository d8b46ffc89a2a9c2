#!/usr/bin/env python3
r"""Draw docs/car128.png: a held-out synthetic car at 128³ beside the 32³ network's answer.

Top row: the car's input views (R2N2-style renderings of the test split). Below, each from the
front, the side and the top: the 128³ network's grid, the 32³ network's grid repeated to 128³
(each voxel the 4³ block it covers: the baseline of ``pix2voxpp-eval --compare-upsampled``) and
the true 128³ grid, with their IoU. Both networks run as the node runs them (``Reconstructor``,
the weights' own threshold). Usage (after ``training/scripts/train_car128.sh``)::

    python docs/make_car128_picture.py --weights out/car128cpu/pix2voxpp_f_car128.pth \
        --data out/car128cpu/data [--index 0] [--views 3] [--out docs/car128.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.metrics import iou
from pix2voxpp_ros.core.visualize import render_grid_views
from pix2voxpp_ros.core.voxels import read_binvox, upsample_grid

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_32 = REPO / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'
ROW_PX = 224


def _test_object(data: Path, index: int) -> tuple[str, str]:
    """Return ``(taxonomy_id, model_id)`` of the ``index``-th test object."""
    taxonomy = json.loads((data / 'ShapeNet.json').read_text())
    objects = [(entry['taxonomy_id'], model) for entry in taxonomy for model in entry['test']]
    if not 0 <= index < len(objects):
        raise SystemExit(f'make_car128_picture: --index {index} is outside the '
                         f'{len(objects)} test objects of {data}')
    return objects[index]


def draw(weights: Path, weights_32: Path, data: Path, index: int, views: int) -> np.ndarray:
    """Return the picture (BGR) of test object ``index`` from its first ``views`` renderings."""
    taxonomy_id, model_id = _test_object(data, index)
    folder = data / 'ShapeNetRendering' / taxonomy_id / model_id / 'rendering'
    frames = [cv2.cvtColor(cv2.imread(str(folder / f'{v:02d}.png'), cv2.IMREAD_UNCHANGED),
                           cv2.COLOR_BGRA2RGBA) for v in range(views)]  # (137, 137, 4) each
    truth, _, _ = read_binvox(data / 'ShapeNetVox128' / taxonomy_id / model_id / 'model.binvox')
    panels = []
    # OpenCV's fonts are ASCII: 128^3 for 128³.
    for path, label in ((weights, '128^3 network'),
                        (weights_32, '32^3 network repeated to 128^3')):
        network = Reconstructor(path, device='cpu', backend='torch')
        grid = network.reconstruct(frames, encodings='rgba8') >= network.threshold
        factor = truth.shape[0] // grid.shape[0]
        grid = upsample_grid(grid, factor) if factor > 1 else grid  # (128, 128, 128) bool
        panels.append(render_grid_views(grid.astype(np.float32), threshold=0.5, cell_px=2,
                                        title=f'{label}  IoU {iou(grid, truth):.3f}'))
    panels.append(render_grid_views(truth.astype(np.float32), threshold=0.5, cell_px=2,
                                    title=f'ground truth 128^3  car {model_id[:8]}'))
    on_grey = [(f[..., :3] * (f[..., 3:] / 255.0) + 240 * (1 - f[..., 3:] / 255.0))
               .astype(np.uint8) for f in frames]
    top = np.hstack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), (ROW_PX, ROW_PX),
                                interpolation=cv2.INTER_CUBIC) for f in on_grey])
    width = max(top.shape[1], max(p.shape[1] for p in panels))

    def pad(image: np.ndarray) -> np.ndarray:
        return cv2.copyMakeBorder(image, 0, 10, 0, width - image.shape[1], cv2.BORDER_CONSTANT,
                                  value=(255, 255, 255))
    return np.vstack([pad(top)] + [pad(p) for p in panels])


def main(argv: list[str] | None = None) -> int:
    """Draw the picture; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--weights', type=Path, required=True, help='a 128³ checkpoint')
    parser.add_argument('--weights32', type=Path, default=WEIGHTS_32,
                        help='the 32³ weights to compare (default: the shipped demo weights)')
    parser.add_argument('--data', type=Path, required=True,
                        help='a 128³ dataset (pix2voxpp-synth --resolution 128)')
    parser.add_argument('--index', type=int, default=0, help='which test object')
    parser.add_argument('--views', type=int, default=3, choices=range(1, 6))
    parser.add_argument('--out', type=Path, default=REPO / 'docs' / 'car128.png')
    args = parser.parse_args(argv)
    picture = draw(args.weights, args.weights32, args.data, args.index, args.views)
    if not cv2.imwrite(str(args.out), picture):
        print(f'make_car128_picture: cannot write {args.out}', file=sys.stderr)
        return 1
    print(f'wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
