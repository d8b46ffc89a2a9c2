"""The core must import without ROS: robots' training machines and CI may lack it."""

from __future__ import annotations

import subprocess
import sys

ROS_MODULES = ('rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'visualization_msgs',
               'diagnostic_msgs', 'geometry_msgs', 'cv_bridge', 'sensor_msgs_py', 'rosidl')

PROBE = f"""
import importlib, pkgutil, sys
import pix2voxpp_ros.core as core
for info in pkgutil.walk_packages(core.__path__, 'pix2voxpp_ros.core.'):
    importlib.import_module(info.name)
import pix2voxpp_ros.cli.reconstruct
loaded = sorted(m for m in sys.modules if m.split('.')[0] in {ROS_MODULES!r})
print(len([m for m in sys.modules if m.startswith('pix2voxpp_ros.core.')]), loaded)
"""


def test_core_imports_no_ros() -> None:
    result = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True,
                            timeout=120, check=True)
    count, loaded = result.stdout.strip().split(' ', 1)
    assert int(count) >= 8  # the probe really imported the core's modules
    assert loaded == '[]', f'pix2voxpp_ros.core pulled in ROS modules: {loaded}'
