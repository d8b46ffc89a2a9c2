"""Small factories for the repeated conv + norm + activation blocks of Pix2Vox++."""

from __future__ import annotations

from torch import nn


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
