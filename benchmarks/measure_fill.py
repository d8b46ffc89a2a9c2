"""Measure how much of the network's input square the object fills in the training renderings.

The fill is the longer side of the object's bounding box (alpha > 0) over the side of the crop
that becomes the network's input (the authors' centre 128×128 of a 137×137 rendering). The
node sizes a crop around a segmentation mask by the median of it
(``pix2voxpp_ros.core.preprocess.RENDERING_FILL``).

Run: ``python benchmarks/measure_fill.py [--per-category N] [--views V]``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pix2voxpp_ros.core.preprocess import rendering_crop
from pix2voxpp_ros.core.synthetic.camera import sample_r2n2_cameras
from pix2voxpp_ros.core.synthetic.dataset import object_seed
from pix2voxpp_ros.core.synthetic.render import render_view
from pix2voxpp_ros.core.synthetic.shapes import CATEGORIES, category, make_object


def fills(per_category: int, views: int, seed: int) -> dict[str, list[float]]:
    """Fill fraction of every rendering, by category."""
    out: dict[str, list[float]] = {}
    for cat in (category(name) for name in CATEGORIES):
        for index in range(per_category):
            obj_seed = object_seed(seed, cat.taxonomy_id, index)
            obj = make_object(cat.name, seed=obj_seed)
            for camera in sample_r2n2_cameras(np.random.default_rng([obj_seed, 1]), views):
                rgba = render_view(obj, camera)
                rows, columns = rendering_crop(*rgba.shape[:2])
                alpha = rgba[rows, columns, 3] > 0
                ys, xs = np.nonzero(alpha)
                if len(xs):
                    side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
                    out.setdefault(cat.name, []).append(side / alpha.shape[0])
    return out


def main() -> None:
    """Print the fill per category and overall (median, 10th and 90th percentile)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--per-category', type=int, default=4)
    parser.add_argument('--views', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    by_cat = fills(args.per_category, args.views, args.seed)
    every = [f for values in by_cat.values() for f in values]
    summary = {name: round(float(np.median(v)), 3) for name, v in by_cat.items()}
    summary['all_median'] = round(float(np.median(every)), 3)
    summary['all_p10'] = round(float(np.percentile(every, 10)), 3)
    summary['all_p90'] = round(float(np.percentile(every, 90)), 3)
    summary['renderings'] = len(every)
    print(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()
