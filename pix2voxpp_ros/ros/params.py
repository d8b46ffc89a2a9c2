"""The reconstruction node's parameters on rclpy: declared with descriptors, read back.

The schema (names, defaults, descriptions, checks, :class:`~..core.node_config.NodeConfig`) is
:mod:`pix2voxpp_ros.core.node_config`, importable without ROS; this module only declares a table
of :class:`~..core.node_config.ParamSpec` on a node and reads the values back. Parameters are
declared with dynamic typing: the schema type-checks them and gives readable reasons.
"""

from __future__ import annotations

from typing import Any, Sequence

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.parameter import Parameter

from ..core.node_config import PARAMETERS, ParamSpec

_ARRAY_TYPES = {'int_list': Parameter.Type.INTEGER_ARRAY, 'str_list': Parameter.Type.STRING_ARRAY}


def declare_parameters(node: Any, specs: Sequence[ParamSpec] = PARAMETERS) -> None:
    """Declare every parameter of ``specs`` (default the node's table) with its descriptor."""
    for spec in specs:
        when = 'any time' if spec.dynamic else 'while unconfigured'
        descriptor = ParameterDescriptor(
            name=spec.name, description=spec.description,
            additional_constraints=f'{spec.constraints}; settable {when}'.lstrip('; '),
            dynamic_typing=True)
        node.declare_parameter(spec.name, spec.default, descriptor)
        if spec.kind in _ARRAY_TYPES and node.get_parameter(spec.name).value is None:
            # An empty list (the default, or `[]` in a parameters file) has no element type:
            # rcl leaves it "not set". Give it its type, as `ros2 param get` should show it.
            node.set_parameters([Parameter(spec.name, _ARRAY_TYPES[spec.kind], [])])


def read_values(node: Any, specs: Sequence[ParamSpec] = PARAMETERS) -> dict[str, Any]:
    """Return the current value of every parameter of ``specs`` on ``node``."""
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}
