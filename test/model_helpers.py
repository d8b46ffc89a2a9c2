"""Helpers of the core tests: repository paths and networks with non-default statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from pix2voxpp_ros.core.model import ModelConfig, Pix2VoxPP, build_model

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def randomize_batchnorm(model: torch.nn.Module, *, seed: int = 0) -> None:
    """Give every BatchNorm non-default running statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
            module.num_batches_tracked.fill_(1000)


def make_model(variant: str = 'F', *, seed: int = 0, **overrides: object) -> Pix2VoxPP:
    """Build a seeded network in eval mode with non-default BatchNorm statistics."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig.for_variant(variant), **overrides)
    randomize_batchnorm(model, seed=seed)
    return model.eval()
