"""Which of the robot's own ROS tools this test run has, for the tests that need them.

A robot has tf2_ros, launch/launch_ros, ros2cli and sensor_msgs_py from apt; the PyPI wheels
here have none, and ``test/robot_tools.sh`` (``make test``) provides them from the offline kit
in ``../shared/ros-kit``. A test marked ``@pytest.mark.robot_tools('tf2_ros', ...)`` skips,
saying how to get what is missing, unless the run was started with the kit
(``PIX2VOXPP_ROBOT_TOOLS=required``): then a missing tool fails the test, so CI cannot pass
with these tests silently skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

HOW = ('on a robot: source /opt/ros/$ROS_DISTRO/setup.bash (apt: ros-$ROS_DISTRO-tf2-ros, '
       '-launch-ros, -ros2cli, -sensor-msgs-py); here: make test with ../shared/ros-kit beside '
       'the repository')
REQUIRED = os.environ.get('PIX2VOXPP_ROBOT_TOOLS') == 'required'


def _module(name: str) -> str:
    return '' if importlib.util.find_spec(name) is not None else f'{name} does not import'


def _package() -> str:
    try:
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory('pix2voxpp_ros')
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or no ament index at all
        return 'pix2voxpp_ros is not in the ament index (colcon build, then source install/)'
    return ''


# What each tool needs to be usable here; each check returns '' or why not.
CHECKS = {
    'tf2_ros': lambda: _module('tf2_ros'),
    'launch': lambda: _module('launch_ros') or _package(),
    'ros2cli': lambda: '' if shutil.which('ros2') else 'ros2 (ros2cli) is not on the PATH',
    'sensor_msgs_py': lambda: _module('sensor_msgs_py'),
}


def missing(*tools: str) -> str:
    """Return why one of ``tools`` (keys of :data:`CHECKS`) is unusable here, or ''."""
    for tool in tools:
        reason = CHECKS[tool]()
        if reason:
            return reason
    return ''
