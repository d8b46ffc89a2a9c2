"""The clouds, the grid and the markers as the robot's own ``sensor_msgs_py`` reads them.

On every robot ``conversions`` builds clouds with ``sensor_msgs_py`` (backend ``auto``), and
RViz, planners and users' scripts decode them with ``read_points_numpy``: both paths must give
what the own path gives, byte for byte where the layout is the same. Skipped (or, in a run with
the kit, failed) where sensor_msgs_py does not import.
"""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from pix2voxpp_ros.core.voxels import grid_to_points, grid_to_ros_axes
from pix2voxpp_ros.ros.conversions import (CLOUD_FIELD_NAMES, grid_to_cloud, grid_to_dense_cloud,
                                           grid_to_markers, points_to_cloud)

pytestmark = pytest.mark.robot_tools('sensor_msgs_py')

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=5), frame_id='object')


def grid(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).random((size, size, size), dtype=np.float32)


def test_the_library_cloud_is_the_own_cloud_byte_for_byte() -> None:
    probabilities = grid(0)
    own = grid_to_cloud(probabilities, threshold=0.6, object_size_m=0.5, header=HEADER,
                        backend='own')
    library = grid_to_cloud(probabilities, threshold=0.6, object_size_m=0.5, header=HEADER,
                            backend='library')
    assert library.width == own.width > 0
    assert [(f.name, f.offset, f.datatype, f.count) for f in library.fields] == \
        [(f.name, f.offset, f.datatype, f.count) for f in own.fields]
    assert (library.point_step, library.row_step, library.height) == \
        (own.point_step, own.row_step, own.height)
    assert bytes(library.data) == bytes(own.data)
    assert library == own


def test_read_points_numpy_decodes_the_occupancy_cloud() -> None:
    from sensor_msgs_py.point_cloud2 import read_points, read_points_numpy
    probabilities = grid(1)
    cloud = grid_to_cloud(probabilities, threshold=0.5, object_size_m=0.4, header=HEADER,
                          backend='own')
    decoded = read_points_numpy(cloud, field_names=CLOUD_FIELD_NAMES)  # (N, 4)
    points, values = grid_to_points(probabilities, threshold=0.5, object_size_m=0.4,
                                    ros_axes=True)
    np.testing.assert_array_equal(decoded[:, :3], points)
    np.testing.assert_array_equal(decoded[:, 3], values)
    rows = read_points(cloud, field_names=('occupancy',), skip_nans=True)
    np.testing.assert_array_equal(rows['occupancy'], values)


def test_read_points_numpy_decodes_the_dense_grid_in_ros_axes() -> None:
    from sensor_msgs_py.point_cloud2 import read_points_numpy
    probabilities = grid(2, size=8)
    cloud = grid_to_dense_cloud(probabilities, object_size_m=0.8, header=HEADER)
    decoded = read_points_numpy(cloud, field_names=CLOUD_FIELD_NAMES)  # (512, 4), row-major
    assert decoded.shape == (8 ** 3, 4)
    np.testing.assert_array_equal(decoded[:, 3].reshape(8, 8, 8), grid_to_ros_axes(probabilities))
    index = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing='ij'), -1).reshape(-1, 3)
    np.testing.assert_allclose(decoded[:, :3], (index + 0.5) * 0.1 - 0.4, atol=1e-6)


def test_the_markers_show_the_voxels_read_points_numpy_finds() -> None:
    from sensor_msgs_py.point_cloud2 import read_points_numpy
    probabilities = grid(3)
    cloud = grid_to_cloud(probabilities, threshold=0.8, object_size_m=0.32, header=HEADER)
    markers = grid_to_markers(probabilities, threshold=0.8, object_size_m=0.32, header=HEADER)
    centres = np.array([[p.x, p.y, p.z] for p in markers.markers[0].points])
    np.testing.assert_allclose(centres, read_points_numpy(cloud, field_names=('x', 'y', 'z')),
                               atol=1e-7)


def test_a_cloud_made_by_create_cloud_reads_back_through_the_own_layout() -> None:
    from sensor_msgs_py.point_cloud2 import create_cloud
    points = np.random.default_rng(4).random((50, 3)).astype(np.float32)
    values = np.random.default_rng(5).random(50).astype(np.float32)
    own = points_to_cloud(points, values, header=HEADER, backend='own')
    library = create_cloud(HEADER, own.fields, np.column_stack([points, values]))
    assert bytes(library.data) == bytes(own.data)
    assert (library.point_step, library.width, library.height) == (16, 50, 1)
