"""Shared fixtures of the core and ROS tests (helpers live in model_helpers and ros_helpers)."""

from __future__ import annotations

import pytest
import torch

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every test that takes ``device`` runs on the CPU and, where present, on CUDA."""
    return torch.device(request.param)
