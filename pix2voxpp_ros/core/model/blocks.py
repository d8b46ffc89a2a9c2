"""Small factories for the repeated conv + norm + activation blocks of Pix2Vox++."""

from __future__ import annotations

import torch
from torch import nn

_HALF_TYPES = (torch.float16, torch.bfloat16)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` in float32 when it is half precision (bf16/fp16), else unchanged."""
    return tensor.float() if tensor.dtype in _HALF_TYPES else tensor


class Sigmoid32(nn.Module):
    """A sigmoid computed in at least float32, also under bf16/fp16 autocast.

    bf16 spaces values 2**-8 apart near 1: a half-precision sigmoid rounds confident
    probabilities to exactly 0 or 1, which makes the BCE loss explode (log 0) and coarsens the
    threshold. No parameters, so checkpoints keep their keys; float32 and float64 are unchanged.
    """

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        """Return ``sigmoid(tensor)`` in float32 (or the input's wider type)."""
        return torch.sigmoid(at_least_float32(tensor))


def conv2d_bn_relu(in_channels: int, out_channels: int, *, pool: bool = False) -> nn.Sequential:
    """3×3 Conv2d (padding 1) + BatchNorm2d + ReLU, optionally followed by a 2×2 max-pool."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(kernel_size=2))
    return nn.Sequential(*layers)


def upconv3d_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """ConvTranspose3d that doubles D, H, W (k4 s2 p1, no bias) + BatchNorm3d + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose3d(in_channels, out_channels, kernel_size=4, stride=2, padding=1,
                           bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(),
    )


def conv3d_bn_leaky(
    in_channels: int,
    out_channels: int,
    *,
    kernel_size: int = 3,
    padding: int = 1,
    slope: float = 0.2,
    pool: bool = False,
) -> nn.Sequential:
    """Conv3d + BatchNorm3d + LeakyReLU, optionally followed by a 2×2×2 max-pool."""
    layers: list[nn.Module] = [
        nn.Conv3d(in_channels, out_channels, kernel_size=kernel_size, padding=padding),
        nn.BatchNorm3d(out_channels),
        nn.LeakyReLU(slope),
    ]
    if pool:
        layers.append(nn.MaxPool3d(kernel_size=2))
    return nn.Sequential(*layers)
