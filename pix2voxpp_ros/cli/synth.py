"""``pix2voxpp-synth``: write a synthetic dataset in ShapeNet/3D-R2N2's file layout."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.synthetic import CATEGORIES, UnknownCategoryError, category, write_dataset
from ..core.synthetic.dataset import DEFAULT_SPLIT, DatasetError

PROG = 'pix2voxpp-synth'


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Generate procedural objects with 24 R2N2-style renderings and a 32³ grid '
                    'each, as ShapeNetRendering/, ShapeNetVox32/ and ShapeNet.json '
                    '(--resolution 128: a 128³ grid each, in ShapeNetVox128/).')
    parser.add_argument('--out', required=True, type=Path, help='output folder')
    parser.add_argument('--per-category', required=True, type=int, metavar='N',
                        help='models per category')
    parser.add_argument('--seed', required=True, type=int, metavar='S',
                        help='dataset seed; the same seed writes byte-identical files')
    parser.add_argument('--categories', nargs='+', metavar='NAME',
                        help=f'category names or taxonomy ids (default: all of '
                             f'{", ".join(CATEGORIES)})')
    parser.add_argument('--count', action='append', default=[], metavar='NAME=N',
                        help='models of one category instead of --per-category (repeatable), '
                             'e.g. --count chair=600 to weight the dataset towards chairs')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1, metavar='W',
                        help='worker processes (default: one per CPU core)')
    parser.add_argument('--split', nargs=3, type=float, default=list(DEFAULT_SPLIT),
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='split fractions (default: 0.7 0.1 0.2)')
    parser.add_argument('--supersample', type=int, default=2,
                        help='rays per pixel along each axis; 2 anti-aliases the edges as '
                             "Blender's renderings are (default 2, 1 for hard edges)")
    parser.add_argument('--resolution', type=int, choices=(32, 128), default=32,
                        help='grid edge: 32 (ShapeNetVox32, default) or 128 (objects built for '
                             'the 128³ network, ShapeNetVox128)')
    parser.add_argument('--quiet', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def _parse_counts(items: list[str], categories: list[str] | None) -> dict[str, int]:
    """``['chair=600', ...]`` -> ``{'chair': 600, ...}``; ValueError names the bad item."""
    allowed = None if not categories else {category(name).name for name in categories}
    counts: dict[str, int] = {}
    for item in items:
        name, _, number = item.partition('=')
        try:
            canonical = category(name).name
        except UnknownCategoryError as exc:
            raise ValueError(f'--count {item}: {exc}') from None
        if not number.isdecimal():
            raise ValueError(f'--count {item}: expected NAME=N with a whole number N')
        if int(number) < 1:
            raise ValueError(f'--count {item}: must be at least 1')
        if canonical in counts:
            raise ValueError(f'--count {item}: {canonical} has a count already')
        if allowed is not None and canonical not in allowed:
            raise ValueError(f'--count {item}: {name} is not among --categories')
        counts[canonical] = int(number)
    return counts


def _fail(message: str) -> int:
    print(f'{PROG}: {message}', file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    if args.per_category < 1:
        return _fail(f'--per-category {args.per_category}: must be at least 1')
    if args.seed < 0:
        return _fail(f'--seed {args.seed}: must be non-negative')
    if args.workers < 1:
        return _fail(f'--workers {args.workers}: must be at least 1')
    if not 1 <= args.supersample <= 4:
        return _fail(f'--supersample {args.supersample}: must be 1 to 4')
    for name in args.categories or []:
        try:
            category(name)
        except UnknownCategoryError as exc:
            return _fail(f'--categories: {exc}')
    try:
        counts = _parse_counts(args.count, args.categories)
    except ValueError as exc:
        return _fail(str(exc))
    if args.out.exists() and not args.out.is_dir():
        return _fail(f'--out {args.out}: exists and is not a folder')
    try:
        summary = write_dataset(args.out, per_category=args.per_category, seed=args.seed,
                                categories=args.categories, counts=counts,
                                workers=args.workers,
                                split=args.split, supersample=args.supersample,
                                resolution=args.resolution, progress=not args.quiet)
    except DatasetError as exc:
        return _fail(str(exc))
    except OSError as exc:
        print(f'{PROG}: cannot write the dataset: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {summary.count} models in {len(summary.models)} categories to {args.out} '
          f'in {summary.seconds:.1f} s ({summary.objects_per_second:.2f} objects/s, '
          f'{args.workers} workers)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
