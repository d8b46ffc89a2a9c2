"""Launch the demo scene: the simulated three-camera rig, the reconstruction node and RViz.

    ros2 launch pix2voxpp_ros demo.launch.py [weights:=/path/to/weights.pth] [use_rviz:=false]

The rig (namespace ``/rig``) publishes ``/rig/camera_<i>/image_raw`` of held-out synthetic
objects; the node (``/pix2voxpp``) reconstructs them with ``config/demo_node.yaml``, the parameter
files that ``pix2voxpp-demo`` uses too on machines without ``ros2 launch``. ``weights`` defaults
to the demo weights shipped with the package (trained on synthetic objects).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pix2voxpp_ros.ros.demo import DEFAULT_WEIGHTS

PACKAGE = 'pix2voxpp_ros'


def generate_launch_description():
    """Start the rig, and the reconstruction node (with RViz) through pix2voxpp.launch.py."""
    share = get_package_share_directory(PACKAGE)
    rig = Node(
        package=PACKAGE,
        executable='sim_camera_rig',
        name='sim_camera_rig',
        namespace='rig',
        parameters=[os.path.join(share, 'config', 'demo_rig.yaml')],
        output='screen',
    )
    reconstruction = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'pix2voxpp.launch.py')),
        launch_arguments={
            'weights': LaunchConfiguration('weights'),
            'params_file': os.path.join(share, 'config', 'demo_node.yaml'),
            'use_rviz': LaunchConfiguration('use_rviz'),
        }.items(),
    )
    return LaunchDescription([
        DeclareLaunchArgument('weights', default_value=str(DEFAULT_WEIGHTS),
                              description='checkpoint for the reconstruction node'),
        DeclareLaunchArgument('use_rviz', default_value='true',
                              description='start RViz with config/pix2voxpp.rviz'),
        rig,
        reconstruction,
    ])
