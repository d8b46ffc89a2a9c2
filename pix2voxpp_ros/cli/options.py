"""Command-line options shared by every tool that runs the network, declared once.

``pix2voxpp-reconstruct``, ``pix2voxpp-bag`` and ``pix2voxpp-demo`` all take ``--device``,
``--backend``, ``--precision`` (the bag tool also ``--num-threads``); their names, types, choices
and help live here so the tools cannot drift apart. Each tool keeps its own defaults: it passes
them to :func:`add_inference_options`, and leaves out the options it does not offer.
"""

from __future__ import annotations

import argparse
from typing import Optional, Union

from ..core.backends import BACKENDS
from ..core.inference import PRECISION_CHOICES


class _NotOffered:
    """Marks an option a tool does not offer (distinct from ``None``, "the parameter decides")."""

    def __repr__(self) -> str:
        return 'NOT_OFFERED'


NOT_OFFERED = _NotOffered()
# None as a default: the option only overrides the node parameter of the same name when given.
_FROM_PARAMETER = 'default: the parameter'

_HELP = {
    'device': 'inference device: auto (CUDA when present), cpu, cuda or cuda:N',
    'backend': 'inference backend: auto (OpenVINO on the CPU when installed, else PyTorch), '
               'torch or openvino; converted models are cached in $PIX2VOXPP_CACHE_DIR, '
               '~/.cache/pix2voxpp_ros when unset',
    'precision': 'fp32, fp16 (CUDA only), bf16, or auto (bf16 where the hardware has it and '
                 'keeps the results)',
    'num_threads': 'CPU threads for PyTorch (0: the PyTorch default)',
}

OptionDefault = Union[str, int, None, _NotOffered]


def _help(name: str, default: object) -> str:
    said = _FROM_PARAMETER if default is None else f'default {default}'
    return f'{_HELP[name]} ({said})'


def add_inference_options(parser: argparse.ArgumentParser, *,
                          device: OptionDefault = NOT_OFFERED,
                          backend: OptionDefault = NOT_OFFERED,
                          precision: OptionDefault = NOT_OFFERED,
                          num_threads: Optional[Union[int, _NotOffered]] = NOT_OFFERED) -> None:
    """Add the inference options a tool offers, each with that tool's default.

    A keyword left out means the tool does not offer that option; ``None`` offers it with no
    default (the node parameter of the same name decides unless the option is given).

    :param parser: the tool's parser; gets ``--device``, ``--backend``, ``--precision``,
        ``--num-threads`` (destinations ``device``, ``backend``, ``precision``, ``num_threads``).
    :param device: default of ``--device`` (a free string; the Reconstructor checks it).
    :param backend: default of ``--backend``, one of :data:`~pix2voxpp_ros.core.backends.BACKENDS`.
    :param precision: default of ``--precision``, one of ``PRECISION_CHOICES``.
    :param num_threads: default of ``--num-threads``.
    """
    if device is not NOT_OFFERED:
        parser.add_argument('--device', default=device, help=_help('device', device))
    if backend is not NOT_OFFERED:
        parser.add_argument('--backend', default=backend, choices=BACKENDS,
                            help=_help('backend', backend))
    if precision is not NOT_OFFERED:
        parser.add_argument('--precision', default=precision, choices=PRECISION_CHOICES,
                            help=_help('precision', precision))
    if num_threads is not NOT_OFFERED:
        parser.add_argument('--num-threads', type=int, default=num_threads,
                            help=_help('num_threads', num_threads))
