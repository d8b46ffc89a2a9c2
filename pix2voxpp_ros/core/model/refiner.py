"""The refiner of Pix2Vox++/A: a 3D U-Net with a fully connected bottleneck."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Sigmoid32, conv3d_bn_leaky, upconv3d_bn_relu
from .config import ModelConfig

BOTTLENECK = 128 * 4 * 4 * 4  # channels × 4³ at the coarsest level


class Refiner(nn.Module):
    """Refine a fused 32³ volume; the output is the mean of the input and the U-Net's estimate."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        slope = config.leaky_slope
        # k4 p2 grows each side by one voxel, the max-pool then halves it: 32 -> 16 -> 8 -> 4.
        self.layer1 = conv3d_bn_leaky(1, 32, kernel_size=4, padding=2, slope=slope, pool=True)
        self.layer2 = conv3d_bn_leaky(32, 64, kernel_size=4, padding=2, slope=slope, pool=True)
        self.layer3 = conv3d_bn_leaky(64, 128, kernel_size=4, padding=2, slope=slope, pool=True)
        self.layer4 = nn.Sequential(nn.Linear(BOTTLENECK, 2048), nn.ReLU())
        self.layer5 = nn.Sequential(nn.Linear(2048, BOTTLENECK), nn.ReLU())
        self.layer6 = upconv3d_bn_relu(128, 64)
        self.layer7 = upconv3d_bn_relu(64, 32)
        self.layer8 = nn.Sequential(
            nn.ConvTranspose3d(32, 1, kernel_size=4, stride=2, padding=1, bias=False),
            Sigmoid32())  # probabilities in float32 under autocast

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        """Refine a batch of volumes.

        :param volume: ``(B, 32, 32, 32)`` in [0, 1].
        :returns: ``(B, 32, 32, 32)`` in [0, 1].
        """
        level32 = volume.unsqueeze(1)  # (B, 1, 32, 32, 32)
        level16 = self.layer1(level32)  # (B, 32, 16, 16, 16)
        level8 = self.layer2(level16)  # (B, 64, 8, 8, 8)
        level4 = self.layer3(level8)  # (B, 128, 4, 4, 4)
        bottleneck = self.layer5(self.layer4(level4.flatten(1)))  # (B, 8192)
        level4 = level4 + bottleneck.view_as(level4)
        level8 = level8 + self.layer6(level4)
        level16 = level16 + self.layer7(level8)
        refined = (level32 + self.layer8(level16)) * 0.5  # (B, 1, 32, 32, 32)
        return refined.squeeze(1)
