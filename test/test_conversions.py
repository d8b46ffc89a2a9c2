"""Adapter tests of the message conversions with hand-built messages (no spinning, no node)."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pix2voxpp_ros.core.voxels import grid_to_points, grid_to_ros_axes
from pix2voxpp_ros.ros.conversions import (CLOUD_FIELD_NAMES, ImageConversionError,
                                           UnsupportedEncodingError, array_to_compressed,
                                           array_to_image, compressed_to_array,
                                           compressed_topic,
                                           check_image, grid_to_cloud,
                                           dense_cloud_to_grid, grid_to_dense_cloud,
                                           grid_to_markers, image_to_array, library_available,
                                           ns_to_stamp, points_to_cloud, probability_colours,
                                           reconstruction_messages, stamp_to_ns)

CHANNELS = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}
# cv_bridge needs Boost.Python: no wheel and no kit source, so here only a robot runs its path
# (the own path is checked against OpenCV's own conversions and hand-built rows instead).
IMAGE_BACKENDS = ['own', pytest.param('library', marks=pytest.mark.skipif(
    not library_available('cv_bridge'), reason='cv_bridge is not installed here (a robot has '
    'it from apt; it has no PyPI wheel and needs Boost.Python to build)'))]
CLOUD_BACKENDS = ['own', pytest.param('library', marks=pytest.mark.robot_tools('sensor_msgs_py'))]
HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id='object')


def hand_built(encoding: str, pixels: np.ndarray, *, padding: int = 0) -> Image:
    """Build an Image message field by field, rows padded with ``padding`` bytes of 0xEE."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, padding), 0xEE, np.uint8)], axis=1)
    msg = Image()
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.step = rows.shape[1] + padding
    msg.data = array.array('B', padded.tobytes())
    return msg


def pixels(encoding: str, *, height: int = 5, width: int = 7) -> np.ndarray:
    rng = np.random.default_rng(hash(encoding) % 2**32)
    channels = CHANNELS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def random_grid(seed: int = 0, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).random((size, size, size)).astype(np.float32)


# ------------------------------------------------------------------ images


@pytest.mark.parametrize('backend', IMAGE_BACKENDS)
@pytest.mark.parametrize('encoding', sorted(CHANNELS))
@pytest.mark.parametrize('padding', [0, 3])
def test_every_encoding_with_and_without_row_padding(encoding: str, padding: int,
                                                     backend: str) -> None:
    expected = pixels(encoding)
    result = image_to_array(hand_built(encoding, expected, padding=padding), backend=backend)
    assert result.dtype == np.uint8 and result.flags.c_contiguous
    assert result.shape == expected.shape  # (H, W) for mono8, (H, W, C) otherwise
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize('encoding', sorted(CHANNELS))
def test_backends_agree(encoding: str) -> None:
    msg = hand_built(encoding, pixels(encoding))
    np.testing.assert_array_equal(image_to_array(msg, backend='auto'),
                                  image_to_array(msg, backend='own'))


def test_unpadded_images_are_not_copied() -> None:
    msg = hand_built('rgb8', pixels('rgb8'))
    result = image_to_array(msg, backend='own')
    assert np.shares_memory(result, np.frombuffer(msg.data, dtype=np.uint8))


def test_rows_are_read_at_their_step() -> None:
    msg = Image(height=2, width=2, encoding='mono8', step=4)
    msg.data = array.array('B', [1, 2, 99, 99, 3, 4, 99, 99])
    np.testing.assert_array_equal(image_to_array(msg), [[1, 2], [3, 4]])


@pytest.mark.parametrize('mutate, match', [
    (lambda m: setattr(m, 'data', array.array('B')), 'data holds 0 bytes'),
    (lambda m: setattr(m, 'data', m.data[:-1]), 'data holds 104 bytes, expected'),
    (lambda m: setattr(m, 'data', m.data + array.array('B', [0])), 'data holds 106 bytes'),
    (lambda m: setattr(m, 'step', 20), 'step 20 is shorter than a row'),
    (lambda m: setattr(m, 'step', 22), 'data holds 105 bytes, expected step x height'),
    (lambda m: setattr(m, 'height', 6), 'expected step x height = 21 x 6'),
    (lambda m: setattr(m, 'width', 0), 'zero-size 0x5 image'),
    (lambda m: setattr(m, 'height', 0), 'zero-size 7x0 image'),
])
def test_malformed_images_raise_a_clear_error(mutate: object, match: str) -> None:
    msg = hand_built('rgb8', pixels('rgb8'))  # 5 rows of 7 rgb8 pixels: step 21, 105 bytes
    mutate(msg)  # type: ignore[operator]
    with pytest.raises(ImageConversionError, match=match):
        image_to_array(msg)


def test_zero_size_image_with_no_data() -> None:
    with pytest.raises(ImageConversionError, match='zero-size'):
        image_to_array(Image(encoding='rgb8'))


@pytest.mark.parametrize('encoding', ['16UC1', 'bayer_rggb8', 'yuv422', '32FC1', 'RGB8', ''])
def test_unknown_encodings_raise_unsupported(encoding: str) -> None:
    msg = hand_built('rgb8', pixels('rgb8'))
    msg.encoding = encoding
    with pytest.raises(UnsupportedEncodingError, match=f"'{encoding}'"):
        image_to_array(msg)
    assert issubclass(UnsupportedEncodingError, ImageConversionError)


def test_check_image_returns_the_layout() -> None:
    assert check_image(hand_built('bgra8', pixels('bgra8'), padding=2)) == (5, 7, 4, 30)


@pytest.mark.parametrize('encoding', sorted(CHANNELS))
def test_array_to_image_round_trip(encoding: str) -> None:
    image = pixels(encoding)
    msg = array_to_image(image, encoding=encoding, stamp=HEADER.stamp, frame_id='cam')
    assert (msg.height, msg.width, msg.step) == (5, 7, 7 * CHANNELS[encoding])
    assert msg.header.frame_id == 'cam' and msg.header.stamp == HEADER.stamp
    np.testing.assert_array_equal(image_to_array(msg), image)
    with pytest.raises(ImageConversionError):
        array_to_image(image.astype(np.uint16), encoding=encoding)
    with pytest.raises(UnsupportedEncodingError):
        array_to_image(image, encoding='16UC1')


def test_stamps_convert_exactly() -> None:
    ns = 1_700_000_000_123_456_789
    assert ns_to_stamp(ns) == Time(sec=1_700_000_000, nanosec=123_456_789)
    assert stamp_to_ns(ns_to_stamp(ns)) == ns


# ------------------------------------------------------------------ the cloud


def decode(cloud: PointCloud2) -> np.ndarray:
    """(N, 4) from the message bytes, read at the offsets the fields declare."""
    dtype = np.dtype({'names': [f.name for f in cloud.fields],
                      'formats': ['<f4'] * len(cloud.fields),
                      'offsets': [f.offset for f in cloud.fields], 'itemsize': cloud.point_step})
    rows = np.frombuffer(bytes(cloud.data), dtype=dtype)
    return np.stack([rows[name] for name in CLOUD_FIELD_NAMES], axis=-1)


@pytest.mark.parametrize('backend', CLOUD_BACKENDS)
def test_cloud_fields_layout_and_values(backend: str) -> None:
    grid = random_grid()
    cloud = grid_to_cloud(grid, threshold=0.7, object_size_m=0.4, header=HEADER, backend=backend)
    points, values = grid_to_points(grid, threshold=0.7, object_size_m=0.4, ros_axes=True)
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        ('x', 0, PointField.FLOAT32, 1), ('y', 4, PointField.FLOAT32, 1),
        ('z', 8, PointField.FLOAT32, 1), ('occupancy', 12, PointField.FLOAT32, 1)]
    assert cloud.point_step == 16 and cloud.height == 1 and cloud.width == len(points) > 0
    assert cloud.row_step == 16 * len(points) and len(cloud.data) == cloud.row_step
    assert cloud.is_bigendian == (sys.byteorder != 'little') and cloud.is_dense
    assert cloud.header == HEADER
    decoded = decode(cloud)
    np.testing.assert_array_equal(decoded[:, :3], points)
    np.testing.assert_array_equal(decoded[:, 3], values)
    assert decoded[:, 3].min() >= 0.7
    assert np.abs(decoded[:, :3]).max() < 0.2  # inside the 0.4 m cube centred on the origin


def test_cloud_backends_agree() -> None:
    grid = random_grid(1)
    mine = grid_to_cloud(grid, threshold=0.5, object_size_m=1.0, header=HEADER, backend='own')
    auto = grid_to_cloud(grid, threshold=0.5, object_size_m=1.0, header=HEADER, backend='auto')
    assert mine == auto  # (not the CDR bytes: their alignment padding is not initialised)


def test_empty_cloud() -> None:
    cloud = grid_to_cloud(np.zeros((4, 4, 4), np.float32), threshold=0.5, object_size_m=1.0,
                          header=HEADER)
    assert cloud.width == 0 and cloud.row_step == 0 and len(cloud.data) == 0
    assert len(cloud.fields) == 4 and cloud.point_step == 16


def test_points_to_cloud_checks_lengths() -> None:
    with pytest.raises(ValueError, match='2 points but 3'):
        points_to_cloud(np.zeros((2, 3)), np.zeros(3), header=HEADER)


def test_cloud_survives_cdr_and_decodes_with_rosbags() -> None:
    from rosbags.typesys import Stores, get_typestore

    grid = random_grid(2)
    cloud = grid_to_cloud(grid, threshold=0.6, object_size_m=0.5, header=HEADER)
    raw = serialize_message(cloud)
    assert deserialize_message(raw, PointCloud2) == cloud
    other = get_typestore(Stores.ROS2_HUMBLE).deserialize_cdr(raw, 'sensor_msgs/msg/PointCloud2')
    assert other.header.frame_id == 'object'
    assert (other.header.stamp.sec, other.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert [(f.name, f.offset, f.datatype, f.count) for f in other.fields] == [
        (n, 4 * i, 7, 1) for i, n in enumerate(CLOUD_FIELD_NAMES)]
    assert (other.height, other.width, other.point_step) == (1, cloud.width, 16)
    rows = np.frombuffer(np.asarray(other.data, dtype=np.uint8).tobytes(), dtype='<f4')
    rows = rows.reshape(-1, 4)
    points, values = grid_to_points(grid, threshold=0.6, object_size_m=0.5, ros_axes=True)
    np.testing.assert_array_equal(rows[:, :3], points)
    np.testing.assert_array_equal(rows[:, 3], values)


# ------------------------------------------------------------------ markers


def test_markers_are_one_cube_list_coloured_by_probability() -> None:
    grid = random_grid(3)
    array_msg = grid_to_markers(grid, threshold=0.8, object_size_m=0.32, header=HEADER)
    points, values = grid_to_points(grid, threshold=0.8, object_size_m=0.32, ros_axes=True)
    assert len(array_msg.markers) == 1
    marker = array_msg.markers[0]
    assert marker.type == Marker.CUBE_LIST and marker.action == Marker.ADD
    assert marker.header == HEADER and marker.ns == 'occupancy' and marker.id == 0
    assert marker.scale.x == marker.scale.y == marker.scale.z == pytest.approx(0.04)
    assert marker.pose.orientation.w == 1.0
    assert len(marker.points) == len(marker.colors) == len(points) > 0
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in marker.points], points, atol=1e-7)
    colours = np.array([[c.r, c.g, c.b, c.a] for c in marker.colors])
    np.testing.assert_allclose(colours, probability_colours(values, threshold=0.8), atol=1e-6)
    high = int(np.argmax(values))
    assert colours[high, 0] > colours[high, 2]  # the most likely voxel is the reddest


def test_probability_colours_ends() -> None:
    colours = probability_colours(np.array([0.3, 0.65, 1.0]), threshold=0.3)
    np.testing.assert_allclose(colours, [[0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 0, 1]], atol=1e-6)


def test_markers_delete_all_when_nothing_is_occupied() -> None:
    array_msg = grid_to_markers(np.zeros((4, 4, 4), np.float32), threshold=0.5,
                                object_size_m=1.0, header=HEADER)
    assert [m.action for m in array_msg.markers] == [Marker.DELETEALL]
    assert array_msg.markers[0].header.frame_id == 'object'


# ------------------------------------------------------------------ the grid for planners


def test_grid_cloud_is_dense_organized_ros_axes_row_major() -> None:
    grid = random_grid(4, size=4)
    cloud = grid_to_dense_cloud(grid, object_size_m=0.4, header=HEADER)
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (16, 4, 16, 64)
    assert cloud.is_dense and cloud.header == HEADER
    assert [f.name for f in cloud.fields] == list(CLOUD_FIELD_NAMES)
    rows = np.frombuffer(bytes(cloud.data), dtype=np.float32).reshape(64, 4)
    ros = grid_to_ros_axes(grid)
    for a, b, c in [(0, 0, 0), (1, 2, 3), (3, 0, 2)]:
        row = rows[a * 16 + b * 4 + c]
        assert row[3] == ros[a, b, c]
        np.testing.assert_allclose(row[:3], (np.array([a, b, c]) + 0.5) * 0.1 - 0.2, atol=1e-6)
    # ROS x reads ShapeNet z, ROS y reads ShapeNet x, ROS z (up) reads ShapeNet y (up).
    assert ros[3, 1, 2] == grid[1, 2, 3]


def test_grid_cloud_round_trips_and_matches_the_occupancy_cloud() -> None:
    grid = random_grid(5, size=8)
    size_m = 0.8
    msg = deserialize_message(serialize_message(
        grid_to_dense_cloud(grid, object_size_m=size_m, header=HEADER)), PointCloud2)
    data, voxel, origin = dense_cloud_to_grid(msg)
    assert voxel == pytest.approx(0.1) and np.allclose(origin, -0.35)
    np.testing.assert_array_equal(data, grid_to_ros_axes(grid))
    points, values = grid_to_points(grid, threshold=0.5, object_size_m=size_m, ros_axes=True)
    index = np.rint((points - origin) / voxel).astype(int)  # centre -> (a, b, c)
    np.testing.assert_array_equal(data[index[:, 0], index[:, 1], index[:, 2]], values)


def test_a_cloud_that_is_not_a_grid_is_refused() -> None:
    cloud = grid_to_cloud(random_grid(6, size=4), threshold=0.5, object_size_m=1.0,
                          header=HEADER)
    with pytest.raises(ValueError, match='not a dense'):
        dense_cloud_to_grid(cloud)


def test_reconstruction_messages_share_one_header_and_agree() -> None:
    grid = random_grid(7, size=8)
    out = reconstruction_messages(grid, threshold=0.6, object_size_m=0.5, header=HEADER)
    assert out.cloud.header == out.grid.header == out.markers.markers[0].header == HEADER
    assert len(out.markers.markers[0].points) == out.cloud.width
    assert reconstruction_messages(grid, threshold=0.6, object_size_m=0.5, header=HEADER,
                                   markers=False).markers is None


def test_128_grid_messages_follow_its_shape_and_stay_practical() -> None:
    """Voxel size edge / 128 in cloud and markers; ~/grid max-pooled to 32³; visible markers."""
    grid = np.zeros((128, 128, 128), np.float32)
    grid[40:100, 20:60, 10:50] = 0.9  # a solid block, 60 x 40 x 40 voxels
    grid[64, 64, 127] = 0.7  # one voxel alone, on the border
    out = reconstruction_messages(grid, threshold=0.5, object_size_m=1.28, header=HEADER)
    points, _ = grid_to_points(grid, threshold=0.5, object_size_m=1.28, ros_axes=True)
    assert out.cloud.width == len(points) == 60 * 40 * 40 + 1
    cloud = np.frombuffer(bytes(out.cloud.data), np.float32).reshape(-1, 4)
    np.testing.assert_allclose(cloud[:, :3] % 0.01, 0.005, atol=1e-5)  # centres 1 cm apart
    data, voxel, origin = dense_cloud_to_grid(out.grid)  # what a planner reads: 32³
    assert data.shape == (32, 32, 32) and voxel == pytest.approx(0.04)
    np.testing.assert_allclose(origin, -0.62, atol=1e-6)
    block = grid_to_ros_axes(grid).reshape(32, 4, 32, 4, 32, 4)
    np.testing.assert_array_equal(data, block.max(axis=(1, 3, 5)))
    assert len(serialize_message(out.grid)) < 0.6e6  # not 33.6 MB
    marker = out.markers.markers[0]
    assert marker.scale.x == pytest.approx(0.01)
    inside = 58 * 38 * 38  # the block's hidden voxels are not drawn
    assert len(marker.points) == out.cloud.width - inside
    drawn = {tuple(np.rint(np.array([p.x, p.y, p.z]) * 100 - 0.5).astype(int))
             for p in marker.points}
    assert drawn <= {tuple(np.rint(p * 100 - 0.5).astype(int)) for p in points}
    small = reconstruction_messages(grid[::4, ::4, ::4], threshold=0.5, object_size_m=1.28,
                                    header=HEADER)  # 32³: every voxel drawn, grid as it is
    assert len(small.markers.markers[0].points) == small.cloud.width
    assert dense_cloud_to_grid(small.grid)[0].shape == (32, 32, 32)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_compressed_png_round_trip_in_opencv_order(encoding: str) -> None:
    channels = {'mono8': 1, 'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4}[encoding]
    image = np.random.default_rng(1).integers(0, 256, (6, 5, channels), dtype=np.uint8)
    msg = array_to_compressed(image, encoding=encoding, image_format='png',
                              stamp=Time(sec=3, nanosec=4))
    assert msg.header.stamp == Time(sec=3, nanosec=4) and msg.format.startswith(encoding)
    decoded, decoded_encoding = compressed_to_array(
        deserialize_message(serialize_message(msg), type(msg)))
    back = array_to_image(decoded, encoding=decoded_encoding)
    assert image_to_array(back).reshape(6, 5, -1).shape[2] == channels
    order = {'rgb8': [2, 1, 0], 'rgba8': [2, 1, 0, 3]}.get(encoding, list(range(channels)))
    np.testing.assert_array_equal(decoded.reshape(6, 5, channels), image[:, :, order])


def test_corrupt_compressed_data_raises_conversion_error() -> None:
    msg = array_to_compressed(np.zeros((8, 8, 3), np.uint8), encoding='rgb8')
    assert msg.format == 'rgb8; jpeg compressed bgr8'
    msg.data = msg.data[:len(msg.data) // 2]
    with pytest.raises(ImageConversionError, match="format 'rgb8; jpeg compressed bgr8'"):
        compressed_to_array(msg)
    assert compressed_topic('/cam/image_raw/') == '/cam/image_raw/compressed'
