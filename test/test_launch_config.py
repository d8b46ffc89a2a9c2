"""Checks of the launch file, the parameters file and the RViz config without ``ros2 launch``.

launch and launch_ros are not installable here, so the launch file is parsed with ``ast`` (and
its two pure helper functions are run on their own); the YAML and RViz files are loaded and
compared with the node's real declared parameters and publishers.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ros_helpers import isolate_ros_domain
from pix2voxpp_ros.ros.params import PARAMETER_NAMES, PARAMETERS, find_problems
from pix2voxpp_ros.ros.reconstruction_node import NODE_NAME

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch' / 'pix2voxpp.launch.py'
DEMO_LAUNCH = REPO / 'launch' / 'demo.launch.py'
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


def console_scripts() -> dict[str, str]:
    """``{name: 'module:function'}`` from setup.py's entry points, read with ast."""
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    entries = ast.literal_eval(value)
                    return {e.split('=')[0].strip(): e.split('=')[1].strip() for e in entries}
    raise AssertionError('setup.py declares no console_scripts')


def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))


def module_constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = <literal>`` assignments."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and
            getattr(n.func, 'id', getattr(n.func, 'attr', None)) == name]


def keyword_value(call: ast.Call, keyword: str, constants: dict[str, Any]) -> Any:
    for kw in call.keywords:
        if kw.arg == keyword:
            if isinstance(kw.value, ast.Name):
                return constants[kw.value.id]
            return ast.literal_eval(kw.value)
    return None


# ------------------------------------------------------------------ the launch file


def test_launch_file_compiles_and_has_the_entry_point() -> None:
    tree = launch_tree()
    compile(tree, str(LAUNCH), 'exec')
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in functions


def test_launch_executables_are_console_scripts_of_this_package() -> None:
    tree = launch_tree()
    constants = module_constants(tree)
    scripts = console_scripts()
    ours = [c for c in calls(tree, 'Node')
            if keyword_value(c, 'package', constants) == 'pix2voxpp_ros']
    assert ours, 'the launch file starts no node of this package'
    for call in ours:
        executable = keyword_value(call, 'executable', constants)
        assert executable in scripts, f'{executable} is not a console script in setup.py'
        module, function = scripts[executable].split(':')
        assert callable(getattr(importlib.import_module(module), function))
        assert keyword_value(call, 'name', constants) == NODE_NAME


def test_launch_arguments_and_overrides_exist_on_the_node(live_node: Any) -> None:
    tree = launch_tree()
    constants = module_constants(tree)
    declared = {ast.literal_eval(c.args[0]) for c in calls(tree, 'DeclareLaunchArgument')}
    assert declared == {'weights', 'camera_topics', 'params_file', 'extra_params_file',
                        'namespace', 'use_rviz'}
    overrides = constants['PARAMETER_ARGUMENTS']
    assert set(overrides) <= declared
    for name in overrides:
        assert live_node.has_parameter(name), f'launch argument {name} is no node parameter'
    used = {ast.literal_eval(c.args[0]) for c in calls(tree, 'LaunchConfiguration')
            if isinstance(c.args[0], ast.Constant)}
    assert used <= declared
    assert constants['NODE_NAME'] == NODE_NAME


def launch_helpers() -> dict[str, Any]:
    """Run the launch file's pure helpers (not the launch_ros parts) in a namespace."""
    tree = launch_tree()
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and
            n.name in ('_node_parameters', '_parse_topics')]
    namespace: dict[str, Any] = {'os': os, 'yaml': yaml, **module_constants(tree)}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(LAUNCH), 'exec'), namespace)
    return namespace


def test_launch_hands_the_parameters_file_itself_to_the_node(tmp_path: Path) -> None:
    """The files go to the node as --params-file, so rcl applies every section form.

    (Reading the file in the launch file and picking sections missed ``/robot1/pix2voxpp:`` and
    ``/**/pix2voxpp:``.)
    """
    parameters = launch_helpers()['_node_parameters']
    assert parameters([str(PARAMS), ''], {'weights': '', 'camera_topics': ''}) == [str(PARAMS)]
    assert parameters([str(PARAMS)], {'weights': ' /w.pth ', 'camera_topics': '/a, /b'}) == [
        str(PARAMS), {'weights': '/w.pth', 'camera_topics': ['/a', '/b']}]  # overrides last
    extra = tmp_path / 'extra.yaml'
    extra.write_text('pix2voxpp:\n  ros__parameters:\n    max_rate_hz: 0.5\n')
    assert parameters([str(PARAMS), str(extra)], {}) == [str(PARAMS), str(extra)]  # in order
    assert parameters([''], {'weights': '/w.pth'}) == [{'weights': '/w.pth'}]
    with pytest.raises(RuntimeError, match='missing.yaml'):
        parameters([str(tmp_path / 'missing.yaml')], {})


def test_launch_file_reads_no_parameters_file_itself() -> None:
    source = LAUNCH.read_text()
    assert 'safe_load(stream' not in source and "'/**'" not in source
    node = next(c for c in calls(launch_tree(), 'Node')
                if keyword_value(c, 'package', module_constants(launch_tree())) == 'pix2voxpp_ros')
    parameters = next(kw.value for kw in node.keywords if kw.arg == 'parameters')
    assert isinstance(parameters, ast.Name) and parameters.id == 'parameters'


def test_missing_rviz_is_a_warning_not_an_abort() -> None:
    tree = launch_tree()
    setup = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and
                 n.name == '_launch_setup')
    source = ast.get_source_segment(LAUNCH.read_text(), setup)
    assert "_package_installed('rviz2')" in source and 'LogInfo(' in source
    assert source.index("_package_installed('rviz2')") < source.index("package='rviz2'")


def test_demo_launch_passes_the_users_params_file_and_the_large_image_profile() -> None:
    tree = ast.parse(DEMO_LAUNCH.read_text(), filename=str(DEMO_LAUNCH))
    declared = {ast.literal_eval(c.args[0]) for c in calls(tree, 'DeclareLaunchArgument')}
    assert {'weights', 'params_file', 'use_rviz'} <= declared
    include = calls(tree, 'IncludeLaunchDescription')[0]
    arguments = next(kw.value for kw in include.keywords if kw.arg == 'launch_arguments')
    mapping = arguments.func.value  # {...}.items()
    passed = {ast.literal_eval(k): v for k, v in zip(mapping.keys, mapping.values)}
    # The user's values, never fixed ones; the user's file goes on top of the demo's own.
    for name, argument in (('weights', 'weights'), ('extra_params_file', 'params_file'),
                           ('use_rviz', 'use_rviz')):
        value = passed[name]
        assert isinstance(value, ast.Call) and value.func.id == 'LaunchConfiguration' and \
            ast.literal_eval(value.args[0]) == argument, f'{argument} is not passed through'
    demo_file = ast.get_source_segment(DEMO_LAUNCH.read_text(), passed['params_file'])
    assert "'demo_node.yaml'" in demo_file
    # Include arguments are set one after the other in the same scope: the user's params_file
    # must be read before 'params_file' is set to the demo's own file.
    assert list(passed).index('extra_params_file') < list(passed).index('params_file')
    environment = calls(tree, 'SetEnvironmentVariable')
    assert len(environment) == 1
    constants = module_constants(tree)
    assert constants[environment[0].args[0].id] == 'FASTDDS_DEFAULT_PROFILES_FILE'
    assert (REPO / 'config' / 'fastdds_large_images.xml').is_file()
    assert "'fastdds_large_images.xml'" in DEMO_LAUNCH.read_text()


@pytest.mark.parametrize('text', ['[/a/image, /b/image]', '/a/image,/b/image',
                                  ' /a/image /b/image ', "['/a/image', '/b/image']"])
def test_launch_parses_camera_topics(text: str) -> None:
    assert launch_helpers()['_parse_topics'](text) == ['/a/image', '/b/image']


def test_setup_installs_launch_and_config_files() -> None:
    source = (REPO / 'setup.py').read_text()
    assert "glob('launch/*.launch.py')" in source
    assert "glob('config/*.yaml')" in source and "glob('config/*.rviz')" in source


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
