"""`colcon build` of the package, as a robot would do it, and what it installs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_helpers import REPO_ROOT, VENV_BIN


@pytest.mark.parametrize('options', [[], ['--symlink-install']], ids=['copy', 'symlink'])
def test_colcon_build_installs_share_and_scripts(tmp_path: Path, options: list[str]) -> None:
    # A workspace whose src/ links to the repository, so colcon never crawls other folders.
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'pix2voxpp_ros').symlink_to(REPO_ROOT)
    env = dict(os.environ, PATH=f'{VENV_BIN}{os.pathsep}{os.environ.get("PATH", "")}')
    # --symlink-install runs `setup.py develop --editable`, which setuptools 80 removed.
    result = subprocess.run([str(VENV_BIN / 'colcon'), 'build', '--base-paths', 'src', *options],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Summary: 1 package finished' in result.stdout

    prefix = tmp_path / 'install' / 'pix2voxpp_ros'
    share = prefix / 'share' / 'pix2voxpp_ros'
    assert (share / 'package.xml').read_bytes() == (REPO_ROOT / 'package.xml').read_bytes()
    for folder in ('launch', 'config'):
        sources = sorted(p.name for p in (REPO_ROOT / folder).iterdir() if p.is_file())
        assert sources, f'the repository has nothing in {folder}/'
        assert sorted(p.name for p in (share / folder).iterdir()) == sources
        if options:  # a symlink install points back into the repository
            assert all((share / folder / name).resolve() == (REPO_ROOT / folder / name).resolve()
                       for name in sources)
    scripts = {p.name for p in (prefix / 'lib' / 'pix2voxpp_ros').iterdir()}
    # The tools' names, and the node's and rig's earlier names kept for existing launch files.
    assert {'pix2voxpp-node', 'pix2voxpp-sim-rig', 'pix2voxpp-reconstruct', 'pix2voxpp_node',
            'sim_camera_rig'} <= scripts
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'pix2voxpp_ros').is_file()

    # After sourcing the workspace, ament_index finds the share directory.
    probe = ('from ament_index_python.packages import get_package_share_directory as g; '
             "print(g('pix2voxpp_ros'))")
    found = subprocess.run(['bash', '-c', f'source install/setup.bash && {sys.executable} -c '
                                          f'"{probe}"'],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).resolve() == share.resolve()
