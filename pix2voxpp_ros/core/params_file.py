"""Read a ROS 2 parameters file (``--params-file`` format) without ROS, as a node would see it.

Tools that run the node's logic offline (``pix2voxpp-bag``) take the node's own YAML file, so one
file serves the robot and the desk. The file is parsed with ``yaml.safe_load`` (never executed);
the sections that apply to a node are the wildcards ``/**`` (or ``**``) and the node's own name
(``pix2voxpp``, ``/pix2voxpp`` or ``/**/pix2voxpp``), each holding ``ros__parameters``; a section
for the node's name overrides the wildcards, as with ``ros2 run --params-file``. Nested mappings
become dotted names, as ROS reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import yaml

from .errors import Pix2VoxError


class ParamsFileError(Pix2VoxError, ValueError):
    """A parameters file is missing, is not YAML, or has no section for the node."""


def _flatten(values: dict, prefix: str = '') -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def read_params_file(path: Union[str, Path], *, node_name: str) -> dict[str, Any]:
    """Return the parameters a node called ``node_name`` gets from a parameters file.

    :param path: the YAML file.
    :param node_name: the node's name without namespace, e.g. ``pix2voxpp``.
    :returns: ``{name: value}`` as YAML typed them (dotted names for nested mappings).
    :raises ParamsFileError: the file cannot be read or parsed, or no section applies to the
        node (the message lists the sections the file has).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ParamsFileError(f'{path}: cannot read parameters file ({exc.strerror})') from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParamsFileError(f'{path}: not valid YAML: {exc}') from exc
    if not isinstance(document, dict):
        raise ParamsFileError(f'{path}: expected a mapping of node names to ros__parameters')
    wildcards = ('/**', '**')
    own = (node_name, f'/{node_name}', f'/**/{node_name}')
    values: dict[str, Any] = {}
    found = False
    for names in (wildcards, own):  # the node's own section overrides the wildcards
        for key in names:
            section = document.get(key)
            if section is None:
                continue
            params = section.get('ros__parameters') if isinstance(section, dict) else None
            if not isinstance(params, dict):
                raise ParamsFileError(f'{path}: section {key!r} has no ros__parameters mapping')
            values.update(_flatten(params))
            found = True
    if not found:
        sections = ', '.join(repr(k) for k in document) or 'none'
        raise ParamsFileError(f'{path}: no parameters for node {node_name!r} (sections: '
                              f"{sections}; expected '{node_name}:' or '/**:' with "
                              'ros__parameters)')
    return values
