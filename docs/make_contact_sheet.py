#!/usr/bin/env python3
"""Draw docs/synthetic_contact_sheet.png: one synthetic object per category, views and voxels.

Each row is one category: four R2N2-style 137×137 renderings (on a grey background, as the
network sees them after preprocessing) and the object's 32³ ground-truth grid drawn with
matplotlib, y up. Usage::

    python docs/make_contact_sheet.py [--seed 0] [--out docs/synthetic_contact_sheet.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pix2voxpp_ros.core.synthetic import (  # noqa: E402
    CATEGORIES, dataset_object, object_seed, render_view, sample_r2n2_cameras, voxelize)

VIEWS = 4


def _on_grey(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] / 255.0) * alpha + (240 / 255.0) * (1.0 - alpha)


def draw(out: Path, *, seed: int, index: int) -> None:
    """Render the sheet for object ``index`` of every category of dataset ``seed``."""
    rows = len(CATEGORIES)
    fig = plt.figure(figsize=(2.0 * (VIEWS + 1), 2.0 * rows), dpi=90)
    for row, cat in enumerate(CATEGORIES.values()):
        obj = dataset_object(cat.name, index, seed=seed)
        rng = np.random.default_rng([object_seed(seed, cat.taxonomy_id, index), 1])
        for col, camera in enumerate(sample_r2n2_cameras(rng, VIEWS)):
            ax = fig.add_subplot(rows, VIEWS + 1, row * (VIEWS + 1) + col + 1)
            ax.imshow(_on_grey(render_view(obj, camera, supersample=2)))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f'az {camera.azimuth_deg:.0f}', fontsize=7)
            if col == 0:
                ax.set_ylabel(f'{cat.name}\n{cat.taxonomy_id}', fontsize=8)
        grid = voxelize(obj)
        ax = fig.add_subplot(rows, VIEWS + 1, row * (VIEWS + 1) + VIEWS + 1, projection='3d')
        # matplotlib's z is up: plot ShapeNet (x, y, z) as (x, -z, y), a rotation (no mirror);
        # the camera then looks from the front (+z) and the right (+x) of the object.
        ax.voxels(grid.transpose(0, 2, 1)[:, ::-1, :], facecolors='#6a8caf',
                  edgecolor='#33333333', linewidth=0.2)
        ax.view_init(elev=25, azim=-60)
        ax.set_xlim(0, grid.shape[0])
        ax.set_ylim(0, grid.shape[2])
        ax.set_zlim(0, grid.shape[1])
        ax.set_box_aspect((1, 1, 1))
        ax.set_axis_off()
        ax.set_title(f'32³ voxels ({int(grid.sum())})', fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and draw the sheet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seed', type=int, default=0, help='dataset seed')
    parser.add_argument('--index', type=int, default=0, help='object index in each category')
    parser.add_argument('--out', type=Path,
                        default=Path(__file__).resolve().parent / 'synthetic_contact_sheet.png')
    args = parser.parse_args(argv)
    draw(args.out, seed=args.seed, index=args.index)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
