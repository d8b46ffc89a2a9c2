"""The multi-scale context-aware fusion: score every voxel of every view, softmax over views.

The scores may come from a coarser grid than the volumes they weigh (a 128³ network fusing at
32³, ``ModelConfig.fusion_resolution``): they are then upsampled trilinearly to the volumes' grid
before the softmax, so every fine voxel gets weights that vary smoothly between the 32³ cells
(nearest-neighbour upsampling would weigh whole 4³ blocks alike and show their seams).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import at_least_float32, conv3d_bn_leaky
from .config import ModelConfig

CONTEXT_CHANNELS = 9


class Merger(nn.Module):
    """Fuse per-view coarse volumes with per-voxel weights computed from their context features."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        slope = config.leaky_slope
        c = CONTEXT_CHANNELS
        self.layer1 = conv3d_bn_leaky(c, c, slope=slope)
        self.layer2 = conv3d_bn_leaky(c, c, slope=slope)
        self.layer3 = conv3d_bn_leaky(c, c, slope=slope)
        self.layer4 = conv3d_bn_leaky(c, c, slope=slope)
        self.layer5 = conv3d_bn_leaky(4 * c, c, slope=slope)
        self.layer6 = conv3d_bn_leaky(c, 1, slope=slope)

    def scores(self, context: torch.Tensor) -> torch.Tensor:
        """Score every voxel of a flat batch of views.

        :param context: ``(N, 9, F, F, F)`` on the fusion grid F.
        :returns: ``(N, F, F, F)`` unnormalized scores.
        """
        scale1 = self.layer1(context)
        scale2 = self.layer2(scale1)
        scale3 = self.layer3(scale2)
        scale4 = self.layer4(scale3)
        multi_scale = torch.cat((scale1, scale2, scale3, scale4), dim=1)  # (N, 36, F, F, F)
        return self.layer6(self.layer5(multi_scale)).squeeze(1)

    def forward(self, coarse: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Fuse the views of each sample.

        :param coarse: ``(B, V, R, R, R)`` coarse volumes.
        :param context: ``(B, V, 9, F, F, F)`` context features, F = R or a coarser grid.
        :returns: ``(B, R, R, R)`` fused volume in [0, 1].
        """
        batch, views = coarse.shape[:2]
        scores = self.scores(context.flatten(0, 1))  # (B*V, F, F, F)
        if scores.shape[-3:] != coarse.shape[-3:]:
            scores = F.interpolate(scores.unsqueeze(1), size=tuple(coarse.shape[-3:]),
                                   mode='trilinear', align_corners=False).squeeze(1)
        scores = scores.unflatten(0, (batch, views))  # (B, V, R, R, R)
        weights = torch.softmax(at_least_float32(scores), dim=1)  # fused in float32 (autocast)
        return (coarse * weights).sum(dim=1).clamp(0.0, 1.0)
