"""The 3D decoder: per-view features -> a coarse volume and 9-channel context features.

At 32³ (``ModelConfig.resolution == 32``) this is the released decoder exactly: four
ConvTranspose3d blocks 2³ -> 32³ and a 1×1×1 ConvTranspose3d + sigmoid to the coarse volume.

**128³.** The paper (Xie et al. 2020, arXiv 2006.12250) reconstructs ShapeNet cars at 128³
besides its 32³ results. Its text could not be read from this project's machines; a summary of
it says that the decoder reaches a finer grid with more 3D transposed convolutions (and
channels), with no layer widths, and nothing is known here of what it does for fusion or the
refiner at 128³. What this module builds, and why:

* layers 1-4 are the 32³ decoder's, unchanged, so the 32³ weights initialise them (and the
  encoder) as they are;
* two more blocks of the same kind (ConvTranspose3d k4 s2 p1 without bias, BatchNorm3d, ReLU),
  8 -> 8 channels, double the grid 32³ -> 64³ -> 128³ (``upsample``). Eight channels keep the
  merger's 9-channel context and every one of its weight shapes; each channel of a 128³ volume is
  8 MiB per view in float32, so wider blocks would multiply training memory for a first
  experiment whose value is unmeasured;
* ``layer5`` (8 -> 1, 1×1×1, sigmoid) keeps its shape and runs at the output grid.

The context for the merger is the last hidden layer with the coarse volume, at the fusion grid:
at full resolution the 128³ hidden layer and coarse volume; at 32³ the 32³ hidden layer (layer 4)
and the coarse volume averaged over 4³ blocks (the fraction of each 32³ cell that is occupied).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Sigmoid32, upconv3d_bn_relu
from .config import VARIANT_CHANNELS, ModelConfig


class Decoder(nn.Module):
    """Map encoder features ``(N, C, 7, 7)`` to a coarse volume and the merger's input features."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        spec = VARIANT_CHANNELS[config.variant]
        self.in_channels: int = spec['decoder_in']
        self.fusion_factor = config.resolution // config.fusion_resolution
        c1, c2, c3, c4 = spec['decoder']
        self.layer1 = upconv3d_bn_relu(self.in_channels, c1)
        self.layer2 = upconv3d_bn_relu(c1, c2)
        self.layer3 = upconv3d_bn_relu(c2, c3)
        self.layer4 = upconv3d_bn_relu(c3, c4)
        # 32³ networks have no such attribute at all, so their state dict keys stay the release's.
        if config.upsampling_blocks:
            self.upsample = nn.Sequential(*(upconv3d_bn_relu(c4, c4)
                                            for _ in range(config.upsampling_blocks)))
        else:
            self.upsample = None
        self.layer5 = nn.Sequential(nn.ConvTranspose3d(c4, 1, kernel_size=1, bias=False),
                                    Sigmoid32())  # probabilities in float32 under autocast

    def init_upsampling_as_nearest(self) -> None:
        """Make the upsampling blocks repeat every voxel 2×2×2, channel by channel.

        Each ConvTranspose3d (k4 s2 p1) gets the taps 1 and 2 of its kernel set to one along
        every axis, so output voxel ``2i`` and ``2i + 1`` take input voxel ``i`` exactly; each
        BatchNorm is the identity (weight 1, bias 0, running mean 0, variance 1, up to its
        epsilon), and ReLU passes layer 4's non-negative output. With the 32³ weights in the
        other layers the 128³ network in eval mode then starts at the 32³ network's coarse
        volume repeated 4³ times (to 1e-5): what training at 128³ starts from and has to beat.
        Nothing happens without upsampling blocks.
        """
        for block in self.upsample or ():
            conv, norm = block[0], block[1]
            with torch.no_grad():
                conv.weight.zero_()
                for channel in range(conv.in_channels):
                    conv.weight[channel, channel, 1:3, 1:3, 1:3] = 1.0
                norm.reset_parameters()  # running mean 0, variance 1, weight 1, bias 0

    def forward(self, features: torch.Tensor, *, with_context: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode a flat batch of encoded views.

        :param features: ``(N, C, 7, 7)`` from the encoder.
        :param with_context: also return the merger's input (skipped for one view or no merger).
        :returns: ``(coarse (N, R, R, R) in [0, 1], context (N, 9, F, F, F) or None)`` for the
            output grid R and the fusion grid F; the context is the last hidden layer's 8
            channels followed by the coarse volume, both at F.
        """
        volume = features.reshape(-1, self.in_channels, 2, 2, 2)  # (N, 392|1568, 2, 2, 2)
        volume = self.layer1(volume)  # (N, 128|512, 4, 4, 4)
        volume = self.layer2(volume)  # (N, 64|128, 8, 8, 8)
        volume = self.layer3(volume)  # (N, 32, 16, 16, 16)
        hidden = self.layer4(volume)  # (N, 8, 32, 32, 32)
        fine = hidden if self.upsample is None else self.upsample(hidden)  # (N, 8, R, R, R)
        coarse = self.layer5(fine)  # (N, 1, R, R, R)
        if not with_context:
            return coarse.squeeze(1), None
        if self.fusion_factor == 1:
            context = torch.cat((fine, coarse), dim=1)  # (N, 9, R, R, R)
        else:
            pooled = F.avg_pool3d(coarse, self.fusion_factor)  # (N, 1, 32, 32, 32)
            context = torch.cat((hidden, pooled), dim=1)  # (N, 9, 32, 32, 32)
        return coarse.squeeze(1), context
