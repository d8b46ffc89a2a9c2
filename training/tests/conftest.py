"""Shared fixtures of the training tests: a tiny synthetic dataset and the CPU device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pix2voxpp_ros.core.synthetic import write_dataset


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two categories × 6 objects (4 train, 1 val, 1 test each), written by the generator."""
    root = tmp_path_factory.mktemp('synthetic')
    write_dataset(root, per_category=6, seed=3, categories=['table', 'chair'], progress=False)
    return root


@pytest.fixture
def device() -> torch.device:
    """Return the CPU device: tests run there (the training package must pass without a GPU)."""
    return torch.device('cpu')
