"""Launch the Pix2Vox++ reconstruction node, optionally with RViz.

    ros2 launch pix2voxpp_ros pix2voxpp.launch.py weights:=/data/Pix2Vox++-A-ShapeNet.pth \
        camera_topics:="[/cam0/image_raw, /cam1/image_raw, /cam2/image_raw]" use_rviz:=true

Arguments: ``weights`` and ``camera_topics`` override the parameters of the same name when not
empty (topics as a YAML list or comma separated); ``params_file`` is a parameters file like
``config/pix2voxpp.yaml`` (and ``extra_params_file``, applied after it), handed to the node as
``ros2 run ... --params-file`` does, so every
section form ROS supports applies (``pix2voxpp:``, ``/**:``, ``/**/pix2voxpp:``,
``/robot1/pix2voxpp:`` with ``namespace:=robot1``, ...); ``namespace`` puts the node (and RViz)
in a namespace; ``use_rviz`` starts RViz with ``config/pix2voxpp.rviz``, whose topics are
``/pix2voxpp/...`` (edit them when namespaced); without rviz2 installed it warns and goes on.

The node configures and activates itself (parameter ``autostart``); a lifecycle manager can set
``autostart: false`` in the parameters file and drive the transitions instead.
"""

import os

from ament_index_python.packages import (PackageNotFoundError, get_package_prefix,
                                         get_package_share_directory)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pix2voxpp_ros.ros.launch_support import (NODE_EXECUTABLE, NODE_NAME, PACKAGE,
                                              PARAMETER_ARGUMENTS, is_true, node_parameters)


def _package_installed(name):
    """Return True when the ament index knows package ``name`` (e.g. rviz2)."""
    try:
        get_package_prefix(name)
    except PackageNotFoundError:
        return False
    return True


def _launch_setup(context, *args, **kwargs):
    arguments = {name: LaunchConfiguration(name).perform(context) for name in PARAMETER_ARGUMENTS}
    files = [LaunchConfiguration(name).perform(context).strip()
             for name in ('params_file', 'extra_params_file')]
    parameters = node_parameters(files, arguments)
    namespace = LaunchConfiguration('namespace').perform(context)
    actions = [Node(
        package=PACKAGE,
        executable=NODE_EXECUTABLE,
        name=NODE_NAME,
        namespace=namespace,
        parameters=parameters,
        output='screen',
        emulate_tty=True,
    )]
    if is_true(LaunchConfiguration('use_rviz').perform(context)):
        if not _package_installed('rviz2'):
            # Aborting here would leave the processes already started as orphans.
            actions.append(LogInfo(msg='WARNING: use_rviz is true but rviz2 is not installed '
                                       '(apt install ros-$ROS_DISTRO-rviz2); going on without '
                                       'RViz'))
            return actions
        rviz_config = os.path.join(get_package_share_directory(PACKAGE), 'config',
                                   'pix2voxpp.rviz')
        actions.append(Node(package='rviz2', executable='rviz2', name='rviz2',
                            namespace=namespace, arguments=['-d', rviz_config], output='screen'))
    return actions


def generate_launch_description():
    """Declare the arguments and start the node (and RViz) once they are known."""
    default_params = os.path.join(get_package_share_directory(PACKAGE), 'config',
                                  'pix2voxpp.yaml')
    return LaunchDescription([
        DeclareLaunchArgument('weights', default_value='',
                              description='Pix2Vox++ checkpoint (.pth); empty: from params_file'),
        DeclareLaunchArgument('camera_topics', default_value='',
                              description='Image topics, e.g. "[/cam0/image, /cam1/image]"; '
                                          'empty: from params_file'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Parameters file of the node'),
        DeclareLaunchArgument('extra_params_file', default_value='',
                              description='A second parameters file, applied after params_file '
                                          '(its values win); e.g. a few changes to the defaults'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node (and RViz)'),
        DeclareLaunchArgument('use_rviz', default_value='false',
                              description='Start RViz with config/pix2voxpp.rviz'),
        OpaqueFunction(function=_launch_setup),
    ])
