"""The 2D encoder: a truncated torchvision ResNet and three conv blocks, image -> 7×7 features."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from .blocks import conv2d_bn_relu
from .config import VARIANT_CHANNELS, ModelConfig


class Encoder(nn.Module):
    """Map images ``(N, 3, 224, 224)`` to features ``(N, C, 7, 7)`` (C = 64 for /F, 256 for /A).

    ``resnet`` keeps torchvision's children ``[conv1, bn1, relu, maxpool, layer1, layer2]`` so the
    parameter names (``resnet.0.weight``, ``resnet.4.0.conv1.weight``, ...) match the released
    checkpoints and torchvision's ImageNet weights.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        spec = VARIANT_CHANNELS[config.variant]
        backbone = getattr(torchvision.models, spec['backbone'])(weights=None)
        self.resnet = nn.Sequential(*list(backbone.children())[:6])
        c1, c2, c3 = spec['encoder']
        self.layer1 = conv2d_bn_relu(spec['backbone_channels'], c1)
        self.layer2 = conv2d_bn_relu(c1, c2, pool=True)
        self.layer3 = conv2d_bn_relu(c2, c3, pool=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encode a flat batch of images.

        :param images: ``(N, 3, 224, 224)``, normalized.
        :returns: ``(N, C, 7, 7)``.
        """
        features = self.resnet(images)  # (N, 128|512, 28, 28)
        features = self.layer1(features)  # (N, 128|512, 28, 28)
        features = self.layer2(features)  # (N, 64|256, 14, 14)
        return self.layer3(features)  # (N, 64|256, 7, 7)

    def load_backbone_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load torchvision ResNet weights (e.g. ImageNet) into the truncated backbone.

        Keys of the full ResNet (``conv1.weight``, ``layer1.0.conv1.weight``, ...) are mapped onto
        the kept children; keys of dropped layers (``layer3``, ``fc``, ...) are ignored.

        :raises KeyError: a parameter of the kept layers is missing from ``state_dict``.
        """
        child_index = {'conv1': 0, 'bn1': 1, 'layer1': 4, 'layer2': 5}
        mapped: dict[str, torch.Tensor] = {}
        for key, value in state_dict.items():
            head, _, rest = key.partition('.')
            if head in child_index:
                mapped[f'{child_index[head]}.{rest}'] = value
        missing = set(self.resnet.state_dict()) - set(mapped)
        if missing:
            raise KeyError(f'backbone weights lack {sorted(missing)[0]!r} '
                           f'({len(missing)} keys missing)')
        self.resnet.load_state_dict(mapped)
