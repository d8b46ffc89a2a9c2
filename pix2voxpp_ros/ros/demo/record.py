"""``pix2voxpp-demo --record BAG``: the rig's scenes rendered straight into a bag, no DDS.

The rig gets the overrides the live demo would give it (:func:`.scene_setup.demo_setup`);
:func:`~pix2voxpp_ros.ros.rig_bag.record_rig_bag` writes the bag, and the command that
reconstructs it with ``pix2voxpp-bag`` (with the live demo's node overrides) is printed. A placed
scene (tabletop or wrist, with masks) records its cameras' TF and camera infos, so that command
places the results (``placement:=calibrated`` in the rig's ``fixed_frame``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .scene_setup import config_dir, demo_setup


def record(args: argparse.Namespace) -> int:
    """Render the rig's scenes into a bag (``--record``); returns the exit status."""
    from ..bag_io import BagError
    from ...core.params_file import ParamsFileError
    from ..rig_bag import record_rig_bag
    config = args.config_dir or config_dir()
    setup = demo_setup(args.scene, masks=args.masks, compressed=args.compressed)
    overrides = setup.rig_overrides()  # what the live demo gives the rig
    if args.object_switch_s is not None:
        overrides['object_switch_s'] = args.object_switch_s
    try:
        counts = record_rig_bag(args.record, params_file=config / 'demo_rig.yaml',
                                overrides=overrides, objects=args.objects, masks=setup.masks,
                                storage=args.storage,
                                progress=lambda line: print(f'  {line}', flush=True))
    except (BagError, ParamsFileError, ValueError) as exc:
        print(f'pix2voxpp-demo: {exc}', file=sys.stderr)
        return 1
    print(f'recorded {sum(counts.values())} messages on {len(counts)} topics -> {args.record}')
    parameters = list(setup.node_parameters)  # what the live demo gives the node
    if setup.masks and ('/tf' in counts or '/tf_static' in counts) and \
            not any(p.startswith('placement:=') for p in parameters):
        # A placed scene with masks: pix2voxpp-bag places it from the recorded calibration.
        parameters += ['placement:=calibrated', f'fixed_frame:={_fixed_frame(config, overrides)}']
    if parameters:
        options = ' '.join(f'-p "{p}"' if "'" in p else f'-p {shlex.quote(p)}'
                           for p in parameters)  # topic lists: readable quotes
        print(f'reconstruct it with: pix2voxpp-bag {shlex.quote(str(args.record))} --params '
              f'{shlex.quote(str(config / "demo_node.yaml"))} --weights '
              f'{shlex.quote(str(args.weights))} {options} --out OUT_BAG')
    return 0


def _fixed_frame(config: Path, overrides: dict) -> str:
    """Return the rig's ``fixed_frame``: the override, its parameters file's, or the default."""
    from ...core.params_file import read_params_file
    from ...core.rig_config import rig_defaults
    from ..rig_topics import RIG_NODE_NAME
    values = {**rig_defaults(), **read_params_file(config / 'demo_rig.yaml',
                                                   node_name=RIG_NODE_NAME), **overrides}
    return str(values['fixed_frame'])
