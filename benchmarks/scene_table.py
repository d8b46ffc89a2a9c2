"""The robot-scenes table: one demo run per scene setting, same weights and objects, scored.

Runs ``pix2voxpp-demo`` (the simulated rig and the reconstruction node over real DDS, each in its
own process) once per row, each row on the same held-out objects, and prints the README's
table: mean IoU, IoU per category (mean over that category's objects) and the end-to-end latency
median of each row. The rows:

* plain — the object alone on the training background, centred;
* tabletop, no masks — clutter, three different cameras, the node crops the image centre;
* tabletop, masks — the same frames with the rig's true object masks on ``mask_topics``;
* tabletop, masks, JPEG — the same over ``image_transport: compressed``;
* wrist, masks — one camera orbiting the object on the tabletop, moving-camera mode.

Run (about 2.5 minutes per row at 16 objects on 2 cores)::

    .venv/bin/python benchmarks/scene_table.py --objects 16 --out out/scenes
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROWS = (
    ('plain', ['--scene', 'plain']),
    ('tabletop, no masks', ['--scene', 'tabletop', '--no-masks']),
    ('tabletop, masks', ['--scene', 'tabletop']),
    ('tabletop, masks, JPEG', ['--scene', 'tabletop', '--compressed']),
    ('wrist, masks', ['--scene', 'wrist']),
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--objects', type=int, default=16, help='objects per row (default 16)')
    parser.add_argument('--weights', type=Path, help='checkpoint (default: the demo weights)')
    parser.add_argument('--out', type=Path, default=Path('out/scenes'))
    parser.add_argument('--rows', nargs='+', choices=[name for name, _ in ROWS],
                        help='only these rows')
    parser.add_argument('--demo-args', nargs=argparse.REMAINDER, default=[],
                        help='further options for every pix2voxpp-demo run')
    return parser.parse_args(argv)


def _category(name: str) -> str:
    return name.split('/')[0]


def table(summaries: dict[str, dict]) -> str:
    """Markdown table of the rows' mean IoU, per-category IoU and latency median."""
    categories: list[str] = []
    for summary in summaries.values():
        for item in summary['objects']:
            if _category(item['name']) not in categories:
                categories.append(_category(item['name']))
    lines = ['| scene | mean IoU | ' + ' | '.join(categories) + ' | latency median |',
             '|---|---|' + '---|' * len(categories) + '---|']
    for row, summary in summaries.items():
        by_category = {c: [o['iou'] for o in summary['objects'] if _category(o['name']) == c]
                       for c in categories}
        cells = [f'{statistics.fmean(v):.3f}' if v else '–' for v in by_category.values()]
        lines.append(f'| {row} | **{summary["mean_iou"]:.3f}** | ' + ' | '.join(cells) +
                     f' | {summary["latency_s"]["median"] * 1000:.0f} ms |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the demo for each row; print the table and write ``table.md`` and ``table.json``."""
    args = _parse_args(argv)
    demo = Path(sys.executable).with_name('pix2voxpp-demo')
    summaries: dict[str, dict] = {}
    for row, options in ROWS:
        if args.rows and row not in args.rows:
            continue
        out = args.out / row.replace(', ', '_').replace(' ', '_')
        command = [str(demo), '--objects', str(args.objects), '--out', str(out), *options,
                   *args.demo_args]
        if args.weights:
            command += ['--weights', str(args.weights)]
        print(f'=== {row}: {" ".join(command)}', flush=True)
        result = subprocess.run(command)
        if result.returncode != 0:
            print(f'scene_table: the demo failed for row {row!r} (exit {result.returncode})',
                  file=sys.stderr)
            return 1
        summaries[row] = json.loads((out / 'summary.json').read_text())
    text = table(summaries)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'table.md').write_text(text + '\n')
    (args.out / 'table.json').write_text(json.dumps(summaries, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
