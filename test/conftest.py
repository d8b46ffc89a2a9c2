"""Shared fixtures of the core and ROS tests (helpers live in model_helpers and ros_helpers)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import torch

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])

# Fast DDS reads its XML profiles once per process, when the first participant is created: a
# test that sets FASTDDS_DEFAULT_PROFILES_FILE later (a monkeypatch) changes its child nodes but
# not its own publishers, which then send 1280x720 frames through the default 512 KB segment, in
# fragments that arrive seconds late under load (seen in CI: masks past mask_timeout_s whenever
# another test file had run first in the same worker). So every test process and the nodes it
# starts use the project's large-image profile from the start, as the demo and launch files do.
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                      str(Path(__file__).resolve().parents[1] / 'config'
                          / 'fastdds_large_images.xml'))


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every test that takes ``device`` runs on the CPU and, where present, on CUDA."""
    return torch.device(request.param)


@pytest.fixture(scope='session', autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of converted models for the session (and the nodes it starts), not ~/.cache."""
    folder = tmp_path_factory.mktemp('model_cache')
    previous = os.environ.get('PIX2VOXPP_CACHE_DIR')
    os.environ['PIX2VOXPP_CACHE_DIR'] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop('PIX2VOXPP_CACHE_DIR', None)
    else:
        os.environ['PIX2VOXPP_CACHE_DIR'] = previous


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, in a run with the kit, fail) a ``robot_tools`` test whose tools are missing."""
    marker = item.get_closest_marker('robot_tools')
    if marker is None:
        return
    from robot_tools import HOW, REQUIRED, missing
    reason = missing(*marker.args)
    if reason and REQUIRED:
        pytest.fail(f'{reason}, although this run was started with the robot tools kit '
                    '(PIX2VOXPP_ROBOT_TOOLS=required)', pytrace=False)
    if reason:
        pytest.skip(f'{reason} ({HOW})')
