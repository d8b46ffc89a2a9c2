"""The 3D decoder: per-view features -> a coarse 32³ volume and 9-channel context features."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Sigmoid32, upconv3d_bn_relu
from .config import VARIANT_CHANNELS, ModelConfig


class Decoder(nn.Module):
    """Map encoder features ``(N, C, 7, 7)`` to a coarse volume and the merger's input features."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        spec = VARIANT_CHANNELS[config.variant]
        self.in_channels: int = spec['decoder_in']
        c1, c2, c3, c4 = spec['decoder']
        self.layer1 = upconv3d_bn_relu(self.in_channels, c1)
        self.layer2 = upconv3d_bn_relu(c1, c2)
        self.layer3 = upconv3d_bn_relu(c2, c3)
        self.layer4 = upconv3d_bn_relu(c3, c4)
        self.layer5 = nn.Sequential(nn.ConvTranspose3d(c4, 1, kernel_size=1, bias=False),
                                    Sigmoid32())  # probabilities in float32 under autocast

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode a flat batch of encoded views.

        :param features: ``(N, C, 7, 7)`` from the encoder.
        :returns: ``(coarse (N, 32, 32, 32) in [0, 1], context (N, 9, 32, 32, 32))``; the context
            is the last hidden layer's 8 channels followed by the coarse volume.
        """
        volume = features.reshape(-1, self.in_channels, 2, 2, 2)  # (N, 392|1568, 2, 2, 2)
        volume = self.layer1(volume)  # (N, 128|512, 4, 4, 4)
        volume = self.layer2(volume)  # (N, 64|128, 8, 8, 8)
        volume = self.layer3(volume)  # (N, 32, 16, 16, 16)
        hidden = self.layer4(volume)  # (N, 8, 32, 32, 32)
        coarse = self.layer5(hidden)  # (N, 1, 32, 32, 32)
        context = torch.cat((hidden, coarse), dim=1)  # (N, 9, 32, 32, 32)
        return coarse.squeeze(1), context
