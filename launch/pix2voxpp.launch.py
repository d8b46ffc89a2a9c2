"""Launch the Pix2Vox++ reconstruction node, optionally with RViz.

    ros2 launch pix2voxpp_ros pix2voxpp.launch.py weights:=/data/Pix2Vox++-A-ShapeNet.pth \
        camera_topics:="[/cam0/image_raw, /cam1/image_raw, /cam2/image_raw]" use_rviz:=true

Arguments: ``weights`` and ``camera_topics`` override the parameters of the same name when not
empty (topics as a YAML list or comma separated); ``params_file`` is a parameters file like
``config/pix2voxpp.yaml`` (its ``pix2voxpp`` or ``/**`` section is used, so it works in any
namespace); ``namespace`` puts the node (and RViz) in a namespace; ``use_rviz`` starts RViz with
``config/pix2voxpp.rviz``, whose topics are ``/pix2voxpp/...`` (edit them when namespaced).

The node configures and activates itself (parameter ``autostart``); a lifecycle manager can set
``autostart: false`` in the parameters file and drive the transitions instead.
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = 'pix2voxpp_ros'
NODE_NAME = 'pix2voxpp'
# Launch arguments that, when not empty, override the node parameter of the same name.
PARAMETER_ARGUMENTS = ('weights', 'camera_topics')


def _read_parameters(path):
    """Read the node's parameters from a parameters file: its '/**', then its own section."""
    if not path:
        return {}
    with open(path) as stream:
        data = yaml.safe_load(stream) or {}
    parameters = {}
    for key in ('/**', NODE_NAME, '/' + NODE_NAME):
        section = data.get(key) or {}
        parameters.update(section.get('ros__parameters') or {})
    # Empty values are the node's defaults; leaving them out avoids untyped empty parameters.
    return {k: v for k, v in parameters.items() if v not in ('', [], None)}


def _parse_topics(text):
    """Split '[/a, /b]' (YAML), '/a,/b' or '/a /b' into ['/a', '/b']."""
    text = text.strip()
    if text.startswith('['):
        return [str(topic) for topic in yaml.safe_load(text)]
    return [topic for topic in text.replace(',', ' ').split() if topic]


def _launch_setup(context, *args, **kwargs):
    parameters = _read_parameters(LaunchConfiguration('params_file').perform(context))
    for argument in PARAMETER_ARGUMENTS:
        value = LaunchConfiguration(argument).perform(context).strip()
        if value:
            parameters[argument] = _parse_topics(value) if argument == 'camera_topics' else value
    namespace = LaunchConfiguration('namespace').perform(context)
    actions = [Node(
        package=PACKAGE,
        executable='pix2voxpp_node',
        name=NODE_NAME,
        namespace=namespace,
        parameters=[parameters],
        output='screen',
        emulate_tty=True,
    )]
    if LaunchConfiguration('use_rviz').perform(context).lower() in ('true', '1', 'yes'):
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
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of the node (and RViz)'),
        DeclareLaunchArgument('use_rviz', default_value='false',
                              description='Start RViz with config/pix2voxpp.rviz'),
        OpaqueFunction(function=_launch_setup),
    ])
