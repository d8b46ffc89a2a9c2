"""Console scripts: every tool is pix2voxpp-<tool>; the node's and rig's old names stay aliases."""

from importlib.metadata import distribution

import pytest

ALIASES = {'pix2voxpp_node': 'pix2voxpp-node', 'sim_camera_rig': 'pix2voxpp-sim-rig'}


@pytest.fixture(scope='module')
def scripts() -> dict[str, str]:
    entry_points = distribution('pix2voxpp_ros').entry_points
    return {ep.name: ep.value for ep in entry_points if ep.group == 'console_scripts'}


def test_tools_follow_one_convention(scripts):
    names = set(scripts) - set(ALIASES)
    assert {'pix2voxpp-node', 'pix2voxpp-sim-rig', 'pix2voxpp-bag', 'pix2voxpp-demo',
            'pix2voxpp-reconstruct', 'pix2voxpp-synth'} <= names
    assert all(n.startswith('pix2voxpp-') and n == n.lower() and '_' not in n for n in names)


@pytest.mark.parametrize('old, new', ALIASES.items())
def test_old_names_run_the_same_entry_point(scripts, old, new):
    assert scripts[old] == scripts[new]
