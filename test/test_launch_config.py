"""What the launch file computes, the parameters file and the RViz config, without ``ros2 launch``.

The launch file's logic lives in :mod:`pix2voxpp_ros.ros.launch_support` and is tested here; the
YAML and RViz files are loaded and compared with the node's real declared parameters and
publishers. The launch files themselves run under the real ``ros2 launch`` in
``test_ros2_launch.py``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml

from ros_helpers import isolate_ros_domain
from pix2voxpp_ros.core.node_config import PARAMETER_NAMES, PARAMETERS, find_problems
from pix2voxpp_ros.ros import reconstruction_node
from pix2voxpp_ros.ros.launch_support import (NODE_EXECUTABLE, NODE_NAME, PACKAGE,
                                              PARAMETER_ARGUMENTS, is_true, node_parameters,
                                              parse_topics)

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / 'config' / 'pix2voxpp.yaml'
RVIZ = REPO / 'config' / 'pix2voxpp.rviz'
DEFAULTS = {spec.name: spec.default for spec in PARAMETERS}


@pytest.fixture(scope='module')
def live_node() -> Any:
    """Construct the real node class (not configured) in a context of its own."""
    isolate_ros_domain()
    import rclpy
    from rclpy.context import Context

    from pix2voxpp_ros.ros.reconstruction_node import ReconstructionNode

    context = Context()
    rclpy.init(context=context)
    node = ReconstructionNode(context=context)
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


# ------------------------------------------------------------------ what the launch file computes
# (the launch file itself runs under the real ``ros2 launch`` in test_ros2_launch.py)


def test_the_launch_executable_is_an_installed_console_script_of_the_node() -> None:
    scripts = {e.name: e for e in entry_points(group='console_scripts')
               if e.dist is not None and e.dist.name == PACKAGE}
    assert NODE_EXECUTABLE in scripts, f'{NODE_EXECUTABLE} is not a console script of {PACKAGE}'
    assert scripts[NODE_EXECUTABLE].load() is reconstruction_node.main


def test_launch_overrides_are_node_parameters(live_node: Any) -> None:
    assert NODE_NAME == reconstruction_node.NODE_NAME
    for name in PARAMETER_ARGUMENTS:
        assert live_node.has_parameter(name), f'launch argument {name} is no node parameter'


def test_launch_hands_the_parameters_file_itself_to_the_node(tmp_path: Path) -> None:
    """The files go to the node as --params-file, so rcl applies every section form.

    (Reading the file in the launch file and picking sections missed ``/robot1/pix2voxpp:`` and
    ``/**/pix2voxpp:``.)
    """
    assert node_parameters([str(PARAMS), ''], {'weights': '', 'camera_topics': ''}) == [
        str(PARAMS)]
    assert node_parameters([str(PARAMS)], {'weights': ' /w.pth ', 'camera_topics': '/a, /b'}) == [
        str(PARAMS), {'weights': '/w.pth', 'camera_topics': ['/a', '/b']}]  # overrides last
    extra = tmp_path / 'extra.yaml'
    extra.write_text('pix2voxpp:\n  ros__parameters:\n    max_rate_hz: 0.5\n')
    assert node_parameters([str(PARAMS), str(extra)], {}) == [str(PARAMS), str(extra)]  # in order
    assert node_parameters([''], {'weights': '/w.pth'}) == [{'weights': '/w.pth'}]
    with pytest.raises(RuntimeError, match='missing.yaml'):
        node_parameters([str(tmp_path / 'missing.yaml')], {})


@pytest.mark.parametrize('text', ['[/a/image, /b/image]', '/a/image,/b/image',
                                  ' /a/image /b/image ', "['/a/image', '/b/image']"])
def test_launch_parses_camera_topics(text: str) -> None:
    assert parse_topics(text) == ['/a/image', '/b/image']


@pytest.mark.parametrize('text, expected', [('true', True), ('True', True), (' 1', True),
                                            ('yes', True), ('false', False), ('', False),
                                            ('0', False)])
def test_launch_reads_yes_and_no(text: str, expected: bool) -> None:
    assert is_true(text) is expected


# ------------------------------------------------------------------ the parameters file


def test_parameters_file_lists_exactly_the_declared_parameters(live_node: Any) -> None:
    data = yaml.safe_load(PARAMS.read_text())
    assert list(data) == [NODE_NAME]
    values = data[NODE_NAME]['ros__parameters']
    assert set(values) == set(PARAMETER_NAMES)
    live = {name for name in PARAMETER_NAMES if live_node.has_parameter(name)}
    assert live == set(PARAMETER_NAMES)
    for name, value in values.items():
        expected = DEFAULTS[name]
        assert value == expected, f'{name}: file says {value!r}, the node defaults to {expected!r}'


def test_parameters_file_values_are_valid_and_commented(tmp_path: Path) -> None:
    values = yaml.safe_load(PARAMS.read_text())[NODE_NAME]['ros__parameters']
    weights = tmp_path / 'w.pth'
    weights.write_bytes(b'')
    assert find_problems({**values, 'weights': str(weights)}) == []
    lines = PARAMS.read_text().splitlines()
    for index, line in enumerate(lines):
        key = line.strip().split(':')[0]
        if line.startswith('    ') and not line.strip().startswith('#') and key in values:
            assert lines[index - 1].strip().startswith('#'), f'{key} has no comment above it'


def test_live_node_descriptors_have_descriptions(live_node: Any) -> None:
    for descriptor in live_node.describe_parameters(list(PARAMETER_NAMES)):
        assert descriptor.description, f'{descriptor.name} has no description'


# ------------------------------------------------------------------ the RViz config


def displays() -> dict[str, dict]:
    config = yaml.safe_load(RVIZ.read_text())
    return {d['Class']: d for d in config['Visualization Manager']['Displays']}


def test_rviz_shows_the_cloud_coloured_by_occupancy() -> None:
    config = yaml.safe_load(RVIZ.read_text())
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == \
        DEFAULTS['frame_id']
    cloud = displays()['rviz_default_plugins/PointCloud2']
    assert cloud['Topic']['Value'] == f'/{NODE_NAME}/occupancy'
    assert cloud['Color Transformer'] == 'Intensity'
    assert cloud['Channel Name'] == 'occupancy'
    assert cloud['Autocompute Intensity Bounds'] is False
    assert (cloud['Min Intensity'], cloud['Max Intensity']) == (0, 1)
    assert cloud['Style'] == 'Boxes'
    assert cloud['Size (m)'] == pytest.approx(DEFAULTS['object_size_m'] / 32)
    markers = displays()['rviz_default_plugins/MarkerArray']
    assert markers['Topic']['Value'] == f'/{NODE_NAME}/markers'


def test_rviz_topics_are_published_by_the_node(live_node: Any) -> None:
    published = {name for name, _ in live_node.get_publisher_names_and_types_by_node(
        NODE_NAME, '/')} | {pub.topic_name for pub in live_node.publishers}
    topics = {d['Topic']['Value'] for d in displays().values() if 'Topic' in d}
    assert topics and topics <= published, f'{topics - published} are not published'
    for display in displays().values():
        if 'Topic' in display:  # QoS the node's latched, reliable outputs can serve
            assert display['Topic']['Reliability Policy'] in ('Reliable', 'Best Effort')
