"""The shared inference options: each tool's defaults, the checked choices, options left out."""

import argparse

import pytest

from pix2voxpp_ros.cli.options import add_inference_options
from pix2voxpp_ros.cli.reconstruct import _parse_args as reconstruct_args


def _parser(**defaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='tool', exit_on_error=False)
    add_inference_options(parser, **defaults)
    return parser


def test_defaults_are_the_tools_own():
    args = _parser(device='auto', backend='auto', precision='fp32').parse_args([])
    assert (args.device, args.backend, args.precision) == ('auto', 'auto', 'fp32')
    args = _parser(device='cpu', precision='auto').parse_args([])
    assert (args.device, args.precision) == ('cpu', 'auto')


def test_none_means_the_parameter_decides():
    args = _parser(device=None, num_threads=None).parse_args([])
    assert args.device is None and args.num_threads is None
    args = _parser(device=None, num_threads=None).parse_args(
        ['--device', 'cuda:1', '--num-threads', '3'])
    assert (args.device, args.num_threads) == ('cuda:1', 3)


def test_options_not_offered_are_absent():
    parser = _parser(device=None, num_threads=None)
    args = parser.parse_args([])
    assert not hasattr(args, 'backend') and not hasattr(args, 'precision')
    with pytest.raises(SystemExit):  # unknown option
        parser.parse_args(['--backend', 'torch'])


@pytest.mark.parametrize('argv', [['--backend', 'tensorrt'], ['--precision', 'fp8'],
                                  ['--num-threads', 'many']])
def test_bad_values_are_refused(argv):
    parser = _parser(backend='auto', precision='fp32', num_threads=0)
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(argv)


def test_reconstruct_keeps_its_defaults(tmp_path):
    args = reconstruct_args(['a.png', '--weights', 'w.pth', '--out', str(tmp_path / 'g.npy')])
    assert (args.device, args.backend, args.precision) == ('auto', 'auto', 'fp32')
