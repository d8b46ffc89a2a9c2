"""The command line of ``pix2voxpp-demo``: every option, its default and its help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ...cli.options import add_inference_options
from .scene_setup import DEFAULT_WEIGHTS, PLACEMENTS, SCENES

DESCRIPTION = ('``pix2voxpp-demo``: the simulated rig and the reconstruction node end to end, '
               'scored.')


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """Parse the demo's options (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(prog='pix2voxpp-demo', description=DESCRIPTION)
    parser.add_argument('--objects', type=int, default=5,
                        help='objects to reconstruct and score (default 5); with '
                             '--objects-per-scene, tables')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS,
                        help='checkpoint for the node (default: the demo weights trained on '
                             "synthetic objects; the authors' release files work too)")
    parser.add_argument('--out', type=Path, default=Path('out/demo'), help='output folder')
    parser.add_argument('--object-switch-s', type=float, default=None,
                        help='seconds per object (default: config/demo_rig.yaml; tables of '
                             '--objects-per-scene: 16)')
    parser.add_argument('--timeout-s', type=float, default=420.0,
                        help='give up after this many seconds (default 420)')
    add_inference_options(parser, device='auto', backend='auto', precision='auto')
    parser.add_argument('--domain-id', type=int, default=None,
                        help='ROS_DOMAIN_ID for the demo (default: random, keeps runs apart)')
    parser.add_argument('--config-dir', type=Path, default=None,
                        help='folder with demo_rig.yaml and demo_node.yaml')
    parser.add_argument('--record', type=Path, metavar='BAG',
                        help="instead of the live demo: render the rig's --objects objects "
                             'of --scene straight into a new rosbag2 bag (images, or JPEG with '
                             '--compressed; object masks unless --no-masks or plain; camera '
                             'infos, ground truth, object names; no DDS) for pix2voxpp-bag')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                        help='storage of the --record bag (default mcap)')
    parser.add_argument('--scene', choices=SCENES, default='plain',
                        help="the rig's scene: plain (default), tabletop (clutter, three "
                             'different cameras) or wrist (one orbiting camera)')
    parser.add_argument('--no-masks', dest='masks', action='store_false',
                        help='tabletop and wrist: crop around the image centre instead of the '
                             "rig's object masks (plain never uses masks)")
    parser.add_argument('--placement', choices=PLACEMENTS, default=None,
                        help="calibrated: the node places each reconstruction in the rig's "
                             'fixed frame (camera_info, camera poses from TF, masks) and the demo '
                             'scores it there against the true placement; canonical: in the '
                             "object's frame (default: calibrated for tabletop and wrist, "
                             'canonical for plain and with --no-masks)')
    parser.add_argument('--objects-per-scene', type=int, default=1, metavar='N',
                        help='tabletop: N objects (2-5) on each table instead of one target '
                             'among distractors; the node runs with mask_mode instances on the '
                             "rig's instance label images (placement calibrated, TF) and every "
                             'object of a table is scored (found, missed, invented, placement). '
                             'Default 1')
    parser.add_argument('--compressed', action='store_true',
                        help='the rig publishes JPEG CompressedImage and the node subscribes '
                             'with image_transport compressed')
    return parser.parse_args(argv)
