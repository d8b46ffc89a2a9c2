"""``mask_mode: instances``: ``pix2voxpp-bag`` writes, byte for byte, what the live node publishes.

One recording (``rosbags``) of a table with three objects, three cameras at ``camera_poses``,
instance label images whose ids change at every tick (mono8, then mono16), goes two ways with
one parameters file (PyTorch, one thread): into ``pix2voxpp-bag`` (its own process) and, read
back message by message, into the real ``pix2voxpp_node`` over Fast DDS. Every view set's
``~/occupancy`` (all objects, their ids), ``~/objects`` and ``~/markers`` must hold the same
values in the output bag as on the wire, field for field and byte for byte of the cloud data.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from geometry_msgs.msg import PoseArray
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from object_bag_helpers import (CAMERAS, INFOS, LABELS, SEED, by_instance, changing_ids,
                                params, pose_numbers, record)
from ros_helpers import Rig, isolate_ros_domain, wait_for, write_params
from test_bag_node import STARTUP_S, start_both, stop_both
from pix2voxpp_ros.core.synthetic.multi import make_view_set
from pix2voxpp_ros.core.views import NS_PER_S
from pix2voxpp_ros.ros.bag_io import CLOUD_TYPE, MARKERS_TYPE, POSE_ARRAY_TYPE, typestore
from pix2voxpp_ros.ros.conversions import stamp_to_ns

pytestmark = pytest.mark.timeout(300)

NODE = '/pix2voxpp'
TICKS = 3
OUTPUTS = ('occupancy', 'objects', 'markers')
TYPES = {'occupancy': CLOUD_TYPE, 'objects': POSE_ARRAY_TYPE, 'markers': MARKERS_TYPE}


def _stamp(msg: object) -> int:
    if isinstance(msg, MarkerArray):
        return stamp_to_ns(msg.markers[0].header.stamp) if msg.markers else -1
    return stamp_to_ns(msg.header.stamp)


def _canonical(raw: bytes, kind: str) -> bytes:
    """Return a message's CDR with zero padding: equal for equal field values."""
    msgtype = TYPES[kind]
    return bytes(typestore().serialize_cdr(typestore().deserialize_cdr(raw, msgtype), msgtype))


def test_output_bag_equals_what_the_live_node_publishes(tmp_path: Path) -> None:
    isolate_ros_domain()
    scene = make_view_set(3, seed=SEED)
    # Stamps a minute in the past: fresh for both clocks with max_frame_age_s of an hour.
    start = time.time_ns() - 60 * NS_PER_S
    bag = tmp_path / 'recording'
    stamps = record(bag, scene, start, changing_ids(scene, TICKS, seed=11), tf=False)
    yaml = write_params(tmp_path / 'node.yaml', params(pose_numbers(scene)))
    out = tmp_path / 'offline'
    tool, node = start_both(bag, yaml, out)
    rig = Rig([], node=NODE, reliable=True)
    types = {**{t: Image for t in CAMERAS + LABELS}, **{t: CameraInfo for t in INFOS}}
    try:
        publishers = {t: rig.node.create_publisher(kind, t, 5) for t, kind in types.items()}
        live = {'objects': rig.subscribe(PoseArray, f'{NODE}/objects'),
                'markers': rig.subscribe(MarkerArray, f'{NODE}/markers')}
        wait_for(lambda: all(p.get_subscription_count() for p in publishers.values()),
                 timeout=STARTUP_S, what='the node to subscribe to images, labels and infos')
        wait_for(lambda: all(rig.node.get_publishers_info_by_topic(f'{NODE}/{t}')
                             for t in OUTPUTS), timeout=STARTUP_S, what='the node outputs')
        # The node discovers our marker subscription (and then builds markers), and every
        # writer its reader: on a loaded machine a first camera_info was lost with 0.5 s.
        time.sleep(2.0)
        with Reader(bag) as reader:
            recorded = [(c.topic, raw) for c, _, raw in reader.messages()]
        # Each camera's calibration first, as a running camera has sent it long before: the
        # node's executor may take a tick's image before the camera_info sent just ahead of it
        # (Jazzy did), and that frame is then rightly dropped as no_camera_info.
        for topic in INFOS:
            raw = next(raw for t, raw in recorded if t == topic)
            publishers[topic].publish(deserialize_message(raw, types[topic]))
        time.sleep(1.0)
        for topic, raw in recorded:
            msg = deserialize_message(raw, types[topic])
            publishers[topic].publish(msg)
            if topic == CAMERAS[-1]:  # a tick is complete: wait for its cloud
                rig.wait_for_cloud(stamp_to_ns(msg.header.stamp), timeout=STARTUP_S)
        live['occupancy'] = [rig.wait_for_cloud(stamp) for stamp in stamps]
        for kind in ('objects', 'markers'):
            wait_for(lambda: {_stamp(m) for m in list(live[kind])} >= set(stamps), timeout=30,
                     what=f'~/{kind} of every set')
        output, _ = tool.communicate(timeout=STARTUP_S)
        assert tool.returncode == 0, output
    finally:
        code = stop_both(tool, node, rig)
    assert code == 0

    with Reader(out) as reader:
        offline: dict[str, list[bytes]] = {}
        for connection, _, raw in reader.messages():
            offline.setdefault(connection.topic, []).append(bytes(raw))
    assert f'{NODE}/grid' not in offline
    ids = []
    for kind in OUTPUTS:
        written = offline[f'{NODE}/{kind}']
        assert len(written) == TICKS, kind
        for raw, stamp in zip(written, stamps):
            ours = deserialize_message(raw, type(live[kind][0]))
            assert _stamp(ours) == stamp, kind
            theirs = [m for m in live[kind] if _stamp(m) == stamp][-1]
            # Every field, value for value (CDR padding bytes are whatever memory held).
            assert _canonical(raw, kind) == _canonical(serialize_message(theirs), kind), \
                (kind, stamp)
            if kind == 'occupancy':
                ids.append(sorted(by_instance(ours)))
    assert ids == [[1, 2, 3]] * TICKS  # the same objects whatever ids the cameras gave
