"""The README documents what the code has: every node parameter, and its two commands exist."""

from __future__ import annotations

import re

from pix2voxpp_ros.core.node_config import PARAMETER_NAMES

from model_helpers import REPO_ROOT


def test_readme_lists_every_parameter() -> None:
    readme = (REPO_ROOT / 'README.md').read_text()
    listed = set(re.findall(r'^\| `(\w+)` \|', readme, flags=re.MULTILINE))
    assert set(PARAMETER_NAMES) <= listed, f'missing: {set(PARAMETER_NAMES) - listed}'


def test_readme_commands_are_make_targets() -> None:
    readme = (REPO_ROOT / 'README.md').read_text()
    makefile = (REPO_ROOT / 'Makefile').read_text()
    for command in ('make demo', 'make test'):
        assert command in readme.split('\n## ')[0]  # in the opening section
        assert re.search(rf'^{command.split()[1]}:', makefile, flags=re.MULTILINE)
    ci = (REPO_ROOT / '.ci' / 'run').read_text()
    assert 'make test' in ci
