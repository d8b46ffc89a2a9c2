"""Launch the demo scene: the simulated three-camera rig, the reconstruction node and RViz.

    ros2 launch pix2voxpp_ros demo.launch.py [weights:=/path/to/weights.pth] [use_rviz:=false]
        [params_file:=my_node.yaml]

The rig (namespace ``/rig``) publishes ``/rig/camera_<i>/image_raw`` of held-out synthetic
objects; the node (``/pix2voxpp``) reconstructs them with ``config/demo_node.yaml`` (the
parameters ``pix2voxpp-demo`` uses too on machines without ``ros2 launch``), then a user's
``params_file`` on top of it: a file with only ``max_rate_hz: 0.5`` changes only that.
``weights`` defaults to the demo weights shipped with the package (trained on synthetic
objects). RViz starts when it is installed (``use_rviz``, default true).

The rig's 900 KB frames cross between processes; Fast DDS's default 512 KB shared-memory segment
delays them by seconds. Unless ``FASTDDS_DEFAULT_PROFILES_FILE`` is already set, the demo points
it at the package's ``config/fastdds_large_images.xml`` for the processes it starts.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node

from pix2voxpp_ros.ros.demo import DEFAULT_WEIGHTS

PACKAGE = 'pix2voxpp_ros'
FASTDDS_PROFILE_VARIABLE = 'FASTDDS_DEFAULT_PROFILES_FILE'


def generate_launch_description():
    """Start the rig, and the reconstruction node (with RViz) through pix2voxpp.launch.py."""
    share = get_package_share_directory(PACKAGE)
    large_images = os.path.join(share, 'config', 'fastdds_large_images.xml')
    rig = Node(
        package=PACKAGE,
        executable='pix2voxpp-sim-rig',
        name='sim_camera_rig',
        namespace='rig',
        parameters=[os.path.join(share, 'config', 'demo_rig.yaml')],
        output='screen',
    )
    reconstruction = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'pix2voxpp.launch.py')),
        # Set in this order: 'params_file' names the user's file until the line that reuses it.
        launch_arguments={
            'extra_params_file': LaunchConfiguration('params_file'),
            'params_file': os.path.join(share, 'config', 'demo_node.yaml'),
            'weights': LaunchConfiguration('weights'),
            'use_rviz': LaunchConfiguration('use_rviz'),
        }.items(),
    )
    return LaunchDescription([
        DeclareLaunchArgument('weights', default_value=str(DEFAULT_WEIGHTS),
                              description='checkpoint for the reconstruction node'),
        DeclareLaunchArgument('params_file', default_value='',
                              description='your parameters file for the reconstruction node, '
                                          "applied on top of the demo's config/demo_node.yaml"),
        DeclareLaunchArgument('use_rviz', default_value='true',
                              description='start RViz with config/pix2voxpp.rviz (skipped with '
                                          'a warning when rviz2 is not installed)'),
        # A profile the user set wins; otherwise the large shared-memory segment.
        SetEnvironmentVariable(FASTDDS_PROFILE_VARIABLE, EnvironmentVariable(
            FASTDDS_PROFILE_VARIABLE, default_value=large_images)),
        rig,
        reconstruction,
    ])
