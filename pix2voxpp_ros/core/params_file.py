"""Read a ROS 2 parameters file (``--params-file`` format) without ROS, as a node would see it.

Tools that run the node's logic offline (``pix2voxpp-bag``) take the node's own YAML file, so one
file serves the robot and the desk. The file is parsed with ``yaml.safe_load`` (never executed);
the sections that apply to a node are the wildcards ``/**`` (or ``**``) and the node's own name
(``pix2voxpp``, ``/pix2voxpp`` or ``/**/pix2voxpp``), each holding ``ros__parameters``; a section
for the node's name overrides the wildcards, as with ``ros2 run --params-file``. Nested mappings
become dotted names, as ROS reads them.

YAML aliases (``*name``) are refused: a few hundred bytes of nested aliases stand for gigabytes of
values (an "alias bomb"), and no parameter needs one. Files over :data:`MAX_PARAMS_FILE_BYTES`
are refused unread, and every value shown in a message is cut short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import yaml

from .errors import Pix2VoxError
from .limits import short_repr, shorten

MAX_PARAMS_FILE_BYTES = 1 << 20  # 1 MiB: the node's own file is 3 KB


class ParamsFileError(Pix2VoxError, ValueError):
    """A parameters file is missing, is not YAML, or has no section for the node."""


class YamlAliasError(Pix2VoxError, yaml.YAMLError):
    """The YAML text uses an alias; the message says where."""


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing any alias before it is resolved."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise YamlAliasError(f'line {event.start_mark.line + 1}: YAML aliases '
                                 f'(*{shorten(str(event.anchor), 40)}) are refused: nested '
                                 'aliases can stand for gigabytes of values')
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse YAML as ``yaml.safe_load`` does, but refuse aliases (see the module's docstring).

    :raises yaml.YAMLError: invalid YAML (:class:`YamlAliasError`: it holds an alias).
    """
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


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
        size = path.stat().st_size
        if size > MAX_PARAMS_FILE_BYTES:
            raise ParamsFileError(f'{path}: {size} bytes, more than {MAX_PARAMS_FILE_BYTES} '
                                  '(a parameters file is a few KB): not read')
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'
        raise ParamsFileError(f'{path}: cannot read parameters file ({why})') from exc
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ParamsFileError(f'{path}: not valid YAML: {shorten(str(exc))}') from exc
    except RecursionError:  # thousands of nested brackets
        raise ParamsFileError(f'{path}: YAML nested too deeply') from None
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
                raise ParamsFileError(f'{path}: section {short_repr(key)} has no '
                                      'ros__parameters mapping')
            values.update(_flatten(params))
            found = True
    if not found:
        sections = ', '.join(short_repr(k) for k in list(document)[:8]) or 'none'
        if len(document) > 8:
            sections += f' and {len(document) - 8} more'
        raise ParamsFileError(f'{path}: no parameters for node {node_name!r} (sections: '
                              f"{sections}; expected '{node_name}:' or '/**:' with "
                              'ros__parameters)')
    return values
