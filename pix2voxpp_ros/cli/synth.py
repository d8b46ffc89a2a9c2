"""``pix2voxpp-synth``: write a synthetic dataset in ShapeNet/3D-R2N2's file layout.

``--recipe robot`` writes the wide variety of objects seen from where robots look;
``--contact-sheet PNG`` draws objects of every category, rendered and as voxels, instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.synthetic import CATEGORIES, UnknownCategoryError, category, write_dataset
from ..core.synthetic.dataset import DEFAULT_SPLIT, DatasetError
from ..core.synthetic.recipes import RECIPES, RecipeError, recipe
from ..core.synthetic.shapes import VARIETIES

PROG = 'pix2voxpp-synth'


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description='Generate procedural objects with 24 R2N2-style renderings and a 32³ grid '
                    'each, as ShapeNetRendering/, ShapeNetVox32/ and ShapeNet.json '
                    '(--resolution 128: a 128³ grid each, in ShapeNetVox128/).')
    parser.add_argument('--out', type=Path, help='output folder (required for a dataset)')
    parser.add_argument('--per-category', type=int, metavar='N',
                        help='models per category (required for a dataset)')
    parser.add_argument('--seed', type=int, metavar='S',
                        help='dataset seed (required for a dataset; a contact sheet: 0); the '
                             'same seed and recipe write byte-identical files')
    parser.add_argument('--recipe', default='r2n2', metavar='NAME',
                        help=f'what the dataset draws ({", ".join(RECIPES)}; default r2n2): '
                             "r2n2 the classic objects at R2N2's elevations 25-30 degrees and "
                             'one field of view, robot the wide variety of objects at '
                             'elevations 0-75 degrees, from 1.5 to 6 grid edges away, the field '
                             "of view framing each object as R2N2's renderings do; recorded in "
                             'recipe.json (not written for plain r2n2)')
    parser.add_argument('--variety', metavar='NAME',
                        help="objects of another variety than the recipe's "
                             f'({", ".join(VARIETIES)}); with --contact-sheet also "both" '
                             '(its default)')
    parser.add_argument('--elevation', nargs=2, type=float, metavar=('LOW', 'HIGH'),
                        help="another elevation range than the recipe's, degrees in [0, 90)")
    parser.add_argument('--contact-sheet', type=Path, metavar='PNG',
                        help='draw objects 0..N-1 (--sheet-objects) of every category of dataset '
                             '--seed, rendered and as 32³ voxels, for --variety, to a PNG '
                             'instead of writing a dataset')
    parser.add_argument('--sheet-objects', type=int, default=6, metavar='N',
                        help='objects per category and variety on the contact sheet (default 6)')
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


def _category_problem(names: list[str] | None) -> str | None:
    """Return the message naming the first unknown name of ``--categories``, if any."""
    for name in names or []:
        try:
            category(name)
        except UnknownCategoryError as exc:
            return f'--categories: {exc}'
    return None


def _fail(message: str) -> int:
    print(f'{PROG}: {message}', file=sys.stderr)
    return 2


def _contact_sheet(args: argparse.Namespace) -> int:
    """Draw the contact sheet of ``--variety`` (both by default) to ``--contact-sheet``."""
    import cv2  # only needed here

    from ..core.synthetic.sheet import contact_sheet

    variety = args.variety or 'both'
    if variety != 'both' and variety not in VARIETIES:
        return _fail(f'--variety {variety}: unknown; known: {", ".join(VARIETIES)}, both')
    if args.sheet_objects < 1:
        return _fail(f'--sheet-objects {args.sheet_objects}: must be at least 1')
    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        return _fail(f'--seed {seed}: must be non-negative')
    problem = _category_problem(args.categories)
    if problem:
        return _fail(problem)
    if args.contact_sheet.suffix.lower() != '.png':
        return _fail(f'--contact-sheet {args.contact_sheet}: must name a .png file')
    varieties = VARIETIES if variety == 'both' else (variety,)
    names = None if not args.categories else [category(n).name for n in args.categories]
    sheet = contact_sheet(seed=seed, objects=args.sheet_objects, varieties=varieties,
                          categories=names)
    args.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.contact_sheet), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f'{PROG}: cannot write {args.contact_sheet}', file=sys.stderr)
        return 1
    print(f'wrote {args.contact_sheet} ({", ".join(varieties)}, {args.sheet_objects} objects '
          f'per category, seed {seed})')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    if args.contact_sheet is not None:
        return _contact_sheet(args)
    for option, value in (('--out', args.out), ('--per-category', args.per_category),
                          ('--seed', args.seed)):
        if value is None:
            return _fail(f'{option} is required to write a dataset (or give --contact-sheet)')
    if args.recipe not in RECIPES:
        return _fail(f'--recipe {args.recipe}: unknown; known: {", ".join(RECIPES)}')
    if args.variety is not None and args.variety not in VARIETIES:
        return _fail(f'--variety {args.variety}: unknown; known: {", ".join(VARIETIES)}')
    try:
        chosen = recipe(args.recipe, variety=args.variety, elevation_deg=args.elevation)
    except RecipeError as exc:  # what is left to refuse: the elevation range
        return _fail(f'--elevation: {exc}')
    if args.per_category < 1:
        return _fail(f'--per-category {args.per_category}: must be at least 1')
    if args.seed < 0:
        return _fail(f'--seed {args.seed}: must be non-negative')
    if args.workers < 1:
        return _fail(f'--workers {args.workers}: must be at least 1')
    if not 1 <= args.supersample <= 4:
        return _fail(f'--supersample {args.supersample}: must be 1 to 4')
    problem = _category_problem(args.categories)
    if problem:
        return _fail(problem)
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
                                resolution=args.resolution, recipe=chosen,
                                progress=not args.quiet)
    except DatasetError as exc:
        return _fail(str(exc))
    except OSError as exc:
        print(f'{PROG}: cannot write the dataset: {exc}', file=sys.stderr)
        return 1
    print(f'wrote {summary.count} models in {len(summary.models)} categories to {args.out} '
          f'in {summary.seconds:.1f} s ({summary.objects_per_second:.2f} objects/s, '
          f'{args.workers} workers; recipe {chosen.name}, {chosen.variety} objects, elevations '
          f'{chosen.elevation_deg[0]:g}-{chosen.elevation_deg[1]:g} degrees)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
