"""Recordings of a table with several objects, for ``pix2voxpp-bag`` with ``mask_mode: instances``.

One :func:`~pix2voxpp_ros.core.synthetic.multi.make_view_set` table (three cameras, three
held-out objects) recorded tick by tick with ``rosbags`` as a robot records it: each camera's
``camera_info``, instance label image (a segmenter's, ids per camera) and rgb8 image, stamped
alike; optionally the cameras on ``/tf`` before each tick's frames. Each tick may carry other
label images (new ids, mono16, broken ones). Shared by ``test_bag_objects`` and
``test_bag_objects_node``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from bag_helpers import TS, header_message, image_message, transform_message, write_bag
from pix2voxpp_ros.core.geometry import matrix_to_quaternion
from pix2voxpp_ros.core.synthetic.multi import MultiObjectViewSet
from pix2voxpp_ros.core.views import NS_PER_S

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / 'pix2voxpp_ros' / 'weights' / 'pix2voxpp_f_synthetic.pth'
SEED = 4  # a sofa, a mug and a bottle (test_multi_object.py: placed within 2.6 % of their size)
CAMERAS = [f'/table/camera_{i}/image_raw' for i in range(3)]
LABELS = [f'/table/camera_{i}/instance_mask' for i in range(3)]
INFOS = [f'/table/camera_{i}/camera_info' for i in range(3)]
FRAMES = [f'table/camera_{i}_optical' for i in range(3)]
TF_TOPIC = '/tf'
TICK_NS = NS_PER_S // 2
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
TF = 'tf2_msgs/msg/TFMessage'
TYPES = {**{t: CAMERA_INFO for t in INFOS}, TF_TOPIC: TF}  # the rest: sensor_msgs/Image

# A label image of one tick: an array (mono8 from uint8, mono16 from uint16), an array sent
# with another encoding, or raw bytes that are no Image at all.
Label = Any


def params(camera_poses: Optional[Sequence[float]] = None) -> dict[str, Any]:
    """Return the parameters both the tool and the node run with (PyTorch, one thread)."""
    values = {
        'weights': str(WEIGHTS), 'camera_topics': CAMERAS, 'mask_topics': LABELS,
        'mask_mode': 'instances', 'placement': 'calibrated', 'fixed_frame': 'world',
        'min_views': 3, 'sync_slop_s': 0.1, 'max_frame_age_s': 3600.0, 'max_rate_hz': 0.0,
        'mask_timeout_s': 10.0, 'device': 'cpu', 'backend': 'torch', 'num_threads': 1,
        'qos_reliability': 'reliable', 'collision_objects': True}
    if camera_poses is not None:
        values['camera_poses'] = list(camera_poses)
    return values


def pose_numbers(scene: MultiObjectViewSet) -> list[float]:
    """Return ``camera_poses``: x y z qx qy qz qw of each camera's optical frame in world."""
    numbers: list[float] = []
    for matrix in scene.camera_to_fixed:
        numbers.extend(float(v) for v in matrix[:3, 3])
        numbers.extend(matrix_to_quaternion(matrix[:3, :3]))
    return numbers


def new_ids(labels: np.ndarray, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Give every instance of a label image another id, drawn in 1..the dtype's maximum."""
    old = np.unique(labels)
    old = old[old > 0]
    top = int(np.iinfo(dtype).max)
    table = np.zeros(int(labels.max()) + 1, dtype=dtype)  # old id -> new id, 0 stays 0
    table[old] = rng.choice(top, size=len(old), replace=False) + 1
    return table[labels]


def without(labels: np.ndarray, label_id: int) -> np.ndarray:
    """Return the label image with one instance turned into background."""
    return np.where(labels == label_id, 0, labels).astype(labels.dtype)


def _camera_info(scene: MultiObjectViewSet, camera: int, stamp_ns: int) -> Any:
    k = np.asarray(scene.intrinsics[camera], dtype=np.float64)
    height, width = scene.images[camera].shape[:2]
    return TS.types[CAMERA_INFO](
        header=header_message(stamp_ns, FRAMES[camera]), height=height, width=width,
        distortion_model='plumb_bob', d=np.zeros(5), k=k.reshape(-1),
        r=np.eye(3).reshape(-1), p=np.concatenate([k, np.zeros((3, 1))], axis=1).reshape(-1),
        binning_x=0, binning_y=0, roi=TS.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _label_message(label: Label, stamp_ns: int, camera: int) -> Any:
    if isinstance(label, bytes):
        return label
    if isinstance(label, tuple):  # (array, encoding): a label image of a wrong encoding
        return image_message(label[0], stamp_ns, label[1], frame_id=FRAMES[camera])
    encoding = 'mono16' if label.dtype == np.uint16 else 'mono8'
    return image_message(label, stamp_ns, encoding, frame_id=FRAMES[camera])


def tick_messages(scene: MultiObjectViewSet, stamp_ns: int, labels: Sequence[Label], *,
                  tf: bool) -> list[tuple[str, int, Any]]:
    """One tick: the cameras on /tf (with ``tf``), then each camera's info, labels and image.

    Recorded a microsecond apart in that order, as a recorder receives them.
    """
    messages = []
    if tf:
        transforms = [transform_message('world', FRAMES[i], tuple(float(v) for v in m[:3, 3]),
                                        tuple(matrix_to_quaternion(m[:3, :3])), stamp_ns)
                      for i, m in enumerate(scene.camera_to_fixed)]
        messages.append((TF_TOPIC, TS.types[TF](transforms=transforms)))
    for i, image in enumerate(scene.images):
        messages += [(INFOS[i], _camera_info(scene, i, stamp_ns)),
                     (LABELS[i], _label_message(labels[i], stamp_ns, i)),
                     (CAMERAS[i], image_message(image, stamp_ns, 'rgb8', frame_id=FRAMES[i]))]
    return [(topic, stamp_ns + 1000 * n, msg) for n, (topic, msg) in enumerate(messages)]


def record(path: Path, scene: MultiObjectViewSet, start_ns: int,
           ticks: Sequence[Sequence[Label]], *, tf: bool) -> list[int]:
    """Write one tick per entry of ``ticks`` (its label images), ``TICK_NS`` apart.

    :returns: the ticks' stamps.
    """
    stamps = [start_ns + k * TICK_NS for k in range(len(ticks))]
    messages = [m for stamp, labels in zip(stamps, ticks)
                for m in tick_messages(scene, stamp, labels, tf=tf)]
    write_bag(path, messages, types=TYPES)
    return stamps


def changing_ids(scene: MultiObjectViewSet, count: int, *, seed: int) -> list[list[np.ndarray]]:
    """Return ``count`` ticks of label images: as rendered, then new ids at every tick.

    mono8 and mono16 in turn, as segmenters that number their instances anew in every frame.
    """
    rng = np.random.default_rng(seed)
    ticks = [list(scene.labels)]
    for k in range(1, count):
        dtype = np.uint16 if k % 2 == 0 else np.uint8
        ticks.append([new_ids(label, rng, dtype) for label in scene.labels])
    return ticks


def by_instance(cloud: Any) -> dict[int, np.ndarray]:
    """``{instance: (N, 3) float32 points}`` of an objects cloud (rosbags or rclpy message)."""
    rows = np.frombuffer(bytes(cloud.data), dtype=np.dtype(
        {'names': ['xyz', 'instance'], 'formats': [('<f4', 3), '<u4'], 'offsets': [0, 16],
         'itemsize': 20}), count=cloud.width)
    return {int(k): rows['xyz'][rows['instance'] == k] for k in np.unique(rows['instance'])}
