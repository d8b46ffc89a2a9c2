"""The layers that must run without ROS import without it: core, the CLI tools, training.

Robots' training machines and CI may lack ROS. Every module of a layer is imported in a fresh
interpreter, then ``sys.modules`` is searched for ROS packages.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ROS_MODULES = ('rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'visualization_msgs',
               'diagnostic_msgs', 'geometry_msgs', 'cv_bridge', 'sensor_msgs_py', 'rosidl',
               'builtin_interfaces', 'rcl_interfaces')

PROBE = """
import importlib, pkgutil, sys
packages, modules = {packages!r}, {modules!r}
for name in packages:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + '.'):
        if not info.name.endswith('.__main__'):
            modules.append(info.name)
for name in modules:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {ros!r})
print(len(modules), loaded)
"""
# layer: (packages walked, modules imported), and how many modules the walk must find at least
LAYERS = {
    'core': (['pix2voxpp_ros.core'], [], 8),
    'cli reconstruct, synth, options': ([], ['pix2voxpp_ros.cli.reconstruct',
                                             'pix2voxpp_ros.cli.synth',
                                             'pix2voxpp_ros.cli.options'], 3),
    'training': (['pix2voxpp_training'], [], 8),
}


@pytest.mark.parametrize('layer', LAYERS)
def test_layer_imports_no_ros(layer: str) -> None:
    packages, modules, least = LAYERS[layer]
    probe = PROBE.format(packages=packages, modules=list(modules), ros=ROS_MODULES)
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                            timeout=120, check=True)
    count, loaded = result.stdout.strip().split(' ', 1)
    assert int(count) >= least  # the probe really imported the layer's modules
    assert loaded == '[]', f'{layer} pulled in ROS modules: {loaded}'
