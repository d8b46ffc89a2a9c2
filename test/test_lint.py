"""Lint as the ament_flake8 / ament_pep257 tests do: flake8 at 99 columns, PEP 257 docstrings."""

from __future__ import annotations

import subprocess
import sys

from model_helpers import REPO_ROOT

SOURCES = ['pix2voxpp_ros', 'training', 'test', 'benchmarks', 'launch', 'docs', 'setup.py']
# pydocstyle's pep257 convention without the "missing docstring" family, as ament_pep257 ignores
# it too. Unlike ament's own convention the summary sits on the first line (D212, PEP 257's own
# examples), one style for the whole repository.
PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107'


def test_flake8() -> None:
    result = subprocess.run([sys.executable, '-m', 'flake8', *SOURCES], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pep257() -> None:
    result = subprocess.run([sys.executable, '-m', 'pydocstyle', '--convention=pep257',
                             f'--add-ignore={PEP257_IGNORE}',
                             '--match=.*\\.py', *SOURCES], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
