"""Record the simulated rig straight into a rosbag2 bag, as ``ros2 bag record`` of the live rig.

No DDS and no real time: the rig's scenes (:func:`~.sim_camera_rig.render_scene`) are rendered once
per object and written tick by tick with the stamps the live rig would give them (``rate_hz``
apart, the next object every ``object_switch_s``); the wrist scene's moving camera is rendered
again at every tick, where the live rig's would be at that stamp. Topics (:mod:`.rig_topics`)
and messages are the live rig's, in its demo namespace ``/rig``, built by the same function:
images (raw, or JPEG on ``.../image_raw/compressed`` with the rig's ``compressed``), the object
masks (unless ``masks=False``) and camera infos of every camera, the ground-truth cloud and the
object name, each tick stamped alike. ``pix2voxpp-demo --record BAG`` calls :func:`record_rig_bag`.

A placed scene (tabletop or wrist with ``place_objects``) also gets what the live rig sends for
``placement: calibrated``: the cameras' optical frames in ``fixed_frame`` on ``/tf`` at every
tick, stamped like its images and written before them (fixed cameras too: they move in
``fixed_frame`` with every object, so each frame's pose is the one of its own stamp), and the
truth on ``~/true_placement`` every tick. Each camera's
``camera_info`` is written just before its image, so the first frame of a recording already has
its calibration (the live rig publishes both together; their order on the wire is not fixed).

Tables of several targets (``objects`` >= 2 in the rig's parameters) record what the live rig
publishes for them too: each camera's ``instance_mask`` (with ``masks``) and
``~/true_placements``; ``objects`` here then counts tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

from ..core.params_file import read_params_file
from ..core.rig_config import RIG_PARAMETER_NAMES, rig_config_from_values, rig_defaults
from .bag_io import (CAMERA_INFO_TYPE, CLOUD_TYPE, COMPRESSED_IMAGE_TYPE, IMAGE_TYPE,
                     MARKER_TYPE, MARKERS_TYPE, STRING_TYPE, TF_TYPE, BagWriter, tf_message_cdr)
from .conversions import compressed_topic
from .rig_topics import (OBJECT_TOPIC, RIG_NODE_NAME, TRUTH_TOPIC, image_topic, info_topic,
                         instance_mask_topic, mask_topic, true_placement_topic,
                         true_placements_topic)
from .sim_camera_rig import render_scene, tick_messages

TF_TOPIC = '/tf'
TRUE_PLACEMENT_TOPIC = true_placement_topic()
TRUE_PLACEMENTS_TOPIC = true_placements_topic()


def record_rig_bag(
    path: Union[str, Path],
    *,
    params_file: Optional[Union[str, Path]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    objects: int = 8,
    masks: bool = True,
    start_ns: Optional[int] = None,
    storage: str = 'mcap',
    overwrite: bool = False,
    progress: Optional[Callable[[str], None]] = None,
) -> dict[str, int]:
    """Write ``objects`` objects of the rig's sequence into a new bag at ``path``.

    :param params_file: the rig's parameters file (``config/demo_rig.yaml``); None: defaults.
    :param overrides: rig parameters that replace the file's (e.g. ``object_switch_s``,
        ``scene``, ``compressed``).
    :param masks: record the object masks too, as the live rig publishes them.
    :param start_ns: stamp of the first tick; default the current system time.
    :param progress: called with a line per object.
    :returns: messages written per topic.
    :raises ValueError: invalid rig parameters.
    :raises BagError: the bag cannot be written (it is then not left behind).
    :raises ParamsFileError: the parameters file cannot be read.
    """
    values = rig_defaults()
    if params_file is not None:
        from_file = read_params_file(params_file, node_name=RIG_NODE_NAME)
        values.update({k: v for k, v in from_file.items() if k in RIG_PARAMETER_NAMES})
    values.update(overrides or {})
    config = rig_config_from_values(values)
    if objects < 1:
        raise ValueError(f'objects must be at least 1, got {objects}')
    cameras = config.cameras()
    period_ns = int(round(1e9 / config.rate_hz))
    ticks = max(1, int(round(config.object_switch_s * config.rate_hz)))
    stamp_ns = time.time_ns() if start_ns is None else int(start_ns)
    started_ns = stamp_ns - period_ns  # the live rig starts a period before its first tick
    images = [compressed_topic(image_topic(i)) if config.compressed else image_topic(i)
              for i in range(len(cameras))]
    tables = config.objects > 1
    with BagWriter(path, storage=storage, overwrite=overwrite) as bag:
        if config.placed:  # first: a reader may order messages of one time by topic
            bag.add_topic(TF_TOPIC, TF_TYPE)
            bag.add_topic(TRUE_PLACEMENTS_TOPIC if tables else TRUE_PLACEMENT_TOPIC,
                          MARKERS_TYPE if tables else MARKER_TYPE)
        for i, topic in enumerate(images):
            bag.add_topic(info_topic(i), CAMERA_INFO_TYPE)
            bag.add_topic(topic, COMPRESSED_IMAGE_TYPE if config.compressed else IMAGE_TYPE)
            if masks:
                bag.add_topic(mask_topic(i), IMAGE_TYPE)
                if tables:
                    bag.add_topic(instance_mask_topic(i), IMAGE_TYPE)
        bag.add_topic(TRUTH_TOPIC, CLOUD_TYPE)
        bag.add_topic(OBJECT_TOPIC, STRING_TYPE)
        for count in range(objects):
            scene = render_scene(config, cameras, count)
            if progress is not None:
                progress(f'object {count + 1}/{objects}: {scene.name}, {ticks} tick(s)')
            for tick in range(ticks):
                messages = tick_messages(config, scene, cameras, stamp_ns,
                                         time_s=(stamp_ns - started_ns) / 1e9, tick=tick)
                if messages.transforms:  # before the images, as the live rig
                    bag.write(TF_TOPIC, tf_message_cdr(messages.transforms), stamp_ns)
                for i, camera in enumerate(messages.cameras):
                    bag.write(info_topic(i), camera.info, stamp_ns)
                    bag.write(images[i], camera.image, stamp_ns)
                    if masks:
                        bag.write(mask_topic(i), camera.mask, stamp_ns)
                        if camera.instance_mask is not None:
                            bag.write(instance_mask_topic(i), camera.instance_mask, stamp_ns)
                if messages.true_placement is not None:
                    bag.write(TRUE_PLACEMENT_TOPIC, messages.true_placement, stamp_ns)
                if messages.true_placements is not None:
                    bag.write(TRUE_PLACEMENTS_TOPIC, messages.true_placements, stamp_ns)
                bag.write(TRUTH_TOPIC, messages.truth, stamp_ns)
                bag.write(OBJECT_TOPIC, messages.name, stamp_ns)
                stamp_ns += period_ns
        return dict(bag.counts)
