"""``pix2voxpp-demo --record BAG``: the rig's scenes rendered straight into a bag, no DDS.

The rig gets the overrides the live demo would give it (:func:`.scene_setup.demo_setup`);
:func:`~pix2voxpp_ros.ros.rig_bag.record_rig_bag` writes the bag, and the command that
reconstructs it with ``pix2voxpp-bag`` (with the live demo's node overrides) is printed. A placed
scene (tabletop or wrist) records its cameras' TF and camera infos, so with the live demo's
placement (``--placement``; calibrated by default there, with masks) that command places the
results in the rig's ``fixed_frame``. With ``--objects-per-scene`` the bag holds tables of that
many objects (instance label images, every object's truth) and the command runs the tool with
``mask_mode: instances``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from .scene_setup import config_dir, default_placement, demo_setup


def record(args: argparse.Namespace) -> int:
    """Render the rig's scenes into a bag (``--record``); returns the exit status."""
    from ..bag_io import BagError
    from ...core.params_file import ParamsFileError
    from ..rig_bag import record_rig_bag
    config = args.config_dir or config_dir()
    try:
        # The live demo's placement; the recording carries the cameras' TF whether or not
        # tf2_ros imports here (pix2voxpp-bag reads it with rosbags).
        setup = demo_setup(args.scene, masks=args.masks, compressed=args.compressed,
                           placement=getattr(args, 'placement', None)
                           or default_placement(args.scene), tf=True, config=config,
                           objects_per_scene=getattr(args, 'objects_per_scene', 1))
        overrides = setup.rig_overrides()  # what the live demo gives the rig
        if args.object_switch_s is not None:
            overrides['object_switch_s'] = args.object_switch_s
        counts = record_rig_bag(args.record, params_file=config / 'demo_rig.yaml',
                                overrides=overrides, objects=args.objects, masks=setup.masks,
                                storage=args.storage,
                                progress=lambda line: print(f'  {line}', flush=True))
    except (BagError, ParamsFileError, ValueError) as exc:
        print(f'pix2voxpp-demo: {exc}', file=sys.stderr)
        return 1
    print(f'recorded {sum(counts.values())} messages on {len(counts)} topics -> {args.record}')
    if setup.node_parameters:  # what the live demo gives the node, for pix2voxpp-bag
        options = ' '.join(f'-p "{p}"' if "'" in p else f'-p {shlex.quote(p)}'
                           for p in setup.node_parameters)  # topic lists: readable quotes
        print(f'reconstruct it with: pix2voxpp-bag {shlex.quote(str(args.record))} --params '
              f'{shlex.quote(str(config / "demo_node.yaml"))} --weights '
              f'{shlex.quote(str(args.weights))} {options} --out OUT_BAG')
    return 0
