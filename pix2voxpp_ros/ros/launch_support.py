"""What the launch files compute, importable without ``launch`` (so it is tested everywhere).

``launch/pix2voxpp.launch.py`` turns its arguments into the node's ``parameters`` with these
functions; only the launch actions themselves stay in the launch file.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import yaml

PACKAGE = 'pix2voxpp_ros'
NODE_NAME = 'pix2voxpp'
NODE_EXECUTABLE = 'pix2voxpp-node'
# Launch arguments that, when not empty, override the node parameter of the same name.
PARAMETER_ARGUMENTS = ('weights', 'camera_topics')
TRUE_WORDS = ('true', '1', 'yes')


def parse_topics(text: str) -> list[str]:
    """Split ``'[/a, /b]'`` (YAML), ``'/a,/b'`` or ``'/a /b'`` into ``['/a', '/b']``."""
    text = text.strip()
    if text.startswith('['):
        return [str(topic) for topic in yaml.safe_load(text)]
    return [topic for topic in text.replace(',', ' ').split() if topic]


def node_parameters(params_files: Sequence[str],
                    arguments: Mapping[str, str]) -> list[Any]:
    """Return the node's ``parameters``: the files' paths, then the non-empty argument overrides.

    Each path goes to the node as ``--params-file`` (rcl then applies every section form:
    ``pix2voxpp:``, ``/**:``, ``/**/pix2voxpp:``, ``/ns/pix2voxpp:``); later entries override
    earlier ones. Empty names are skipped.

    :raises RuntimeError: a named file does not exist (launch reports it and starts nothing).
    """
    parameters: list[Any] = []
    for params_file in params_files:
        if not params_file:
            continue
        if not os.path.isfile(params_file):
            raise RuntimeError(f'parameters file {params_file!r} does not exist')
        parameters.append(params_file)
    overrides = {}
    for name in PARAMETER_ARGUMENTS:
        value = arguments.get(name, '').strip()
        if value:
            overrides[name] = parse_topics(value) if name == 'camera_topics' else value
    if overrides:
        parameters.append(overrides)
    return parameters


def is_true(text: str) -> bool:
    """Whether a launch argument's text means yes (``true``, ``1``, ``yes``; any case)."""
    return text.strip().lower() in TRUE_WORDS
