"""Does bf16 keep the results? Voxel agreement and IoU change against fp32 on a test split.

For every object of the test split (views 0..n-1 of its renderings, the released test transform)
the grid of each bf16 path (PyTorch autocast, OpenVINO) is compared with PyTorch fp32 at the
weights' threshold: the share of voxels on the same side of the threshold, and the mean IoU with
the ground truth. ``precision: auto`` may pick bf16 only if agreement >= 99.5 % and the IoU change
<= 0.005 (``BF16_KEEPS_RESULTS`` in ``pix2voxpp_ros/core/inference.py``).

    pix2voxpp-synth --out /tmp/bf16data --per-category 10 --seed 1 --workers 1 --quiet
    .venv/bin/python benchmarks/bf16_agreement.py --data /tmp/bf16data
        [--weights pix2voxpp_ros/weights/pix2voxpp_f_synthetic.pth] [--views 1 3]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import cv2
import numpy as np

from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.metrics import iou_at
from pix2voxpp_ros.core.preprocess import preprocess_rendering
from pix2voxpp_ros.core.voxels import read_binvox

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / 'pix2voxpp_ros/weights/' \
    'pix2voxpp_f_synthetic.pth'
MIN_AGREEMENT = 0.995
MAX_IOU_CHANGE = 0.005


def test_objects(root: Path) -> list[tuple[Path, Path]]:
    """Return (rendering folder, binvox file) of every test-split object."""
    objects = []
    for category in json.loads((root / 'ShapeNet.json').read_text()):
        for model in category['test']:
            taxonomy = category['taxonomy_id']
            objects.append((root / 'ShapeNetRendering' / taxonomy / model / 'rendering',
                            root / 'ShapeNetVox32' / taxonomy / model / 'model.binvox'))
    return objects


def main() -> None:
    """Measure every bf16 path against fp32 and print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, required=True, help='a synthetic dataset root')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument('--views', nargs='+', type=int, default=[1, 3])
    parser.add_argument('--json', type=Path, default=Path('out/bf16_agreement.json'))
    args = parser.parse_args()
    warnings.simplefilter('ignore')
    runs = {'torch fp32': Reconstructor(args.weights, device='cpu', backend='torch',
                                        warmup_views=0)}
    runs['torch bf16'] = Reconstructor(args.weights, device='cpu', backend='torch',
                                       precision='bf16', warmup_views=0)
    for precision in ('fp32', 'bf16'):
        candidate = Reconstructor(args.weights, device='cpu', backend='openvino',
                                  precision=precision, warmup_views=0)
        if candidate.backend == 'openvino':
            runs[f'openvino {precision}'] = candidate
    reference = runs['torch fp32']
    threshold = reference.threshold
    objects = test_objects(args.data)
    rows = []
    for views in args.views:
        grids: dict[str, list[np.ndarray]] = {name: [] for name in runs}
        truths = []
        for folder, binvox in objects:
            images = np.stack([preprocess_rendering(
                cv2.imread(str(folder / f'{v:02d}.png'), cv2.IMREAD_UNCHANGED),
                metadata=reference.metadata) for v in range(views)])[None]
            for name, run in runs.items():
                grids[name].append(run.infer(images)[0])
            truths.append(read_binvox(binvox)[0])
        fp32 = np.stack(grids['torch fp32'])
        fp32_iou = np.mean([iou_at(g, t, threshold) for g, t in zip(fp32, truths)])
        for name, found in grids.items():
            stacked = np.stack(found)
            mean_iou = float(np.mean([iou_at(g, t, threshold)
                                      for g, t in zip(stacked, truths)]))
            agreement = float(((stacked >= threshold) == (fp32 >= threshold)).mean())
            row = {'path': name, 'views': views, 'objects': len(objects),
                   'agreement': agreement, 'iou': mean_iou, 'iou_change': mean_iou - fp32_iou,
                   'max_abs_difference': float(np.abs(stacked - fp32).max())}
            row['keeps_results'] = bool(agreement >= MIN_AGREEMENT and
                                        abs(row['iou_change']) <= MAX_IOU_CHANGE)
            rows.append(row)
            print(f'{name:>14} {views} view(s), {len(objects)} objects: agreement '
                  f'{100 * agreement:.3f} %, IoU {mean_iou:.4f} (change {row["iou_change"]:+.4f}),'
                  f' max |p - p_fp32| {row["max_abs_difference"]:.4f}, '
                  f'{"keeps" if row["keeps_results"] else "MISSES"}', flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({'weights': str(args.weights), 'threshold': threshold,
                                     'rows': rows}, indent=2))
    print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
