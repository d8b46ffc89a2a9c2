"""Pix2Vox++: encoder and decoder shared across views, fusion, optional refiner.

Views are folded into the batch dimension, so a forward pass of any number of views costs one call
per module and no Python loop over views.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import ModelConfig
from .decoder import Decoder
from .encoder import Encoder
from .merger import Merger
from .refiner import Refiner

MAX_VIEWS = 24  # ShapeNet renders 24 views per object; more is allowed by the maths but untested


class Reconstruction(NamedTuple):
    """The intermediate and final volumes of one forward pass (training needs all of them)."""

    coarse: torch.Tensor  # (B, V, R, R, R) per-view decoder output, R = config.resolution
    fused: torch.Tensor  # (B, R, R, R) after merger (or average)
    refined: torch.Tensor | None  # (B, 32, 32, 32) after the refiner, None without one

    @property
    def occupancy(self) -> torch.Tensor:
        """The network's final answer: refined when there is a refiner, else fused."""
        return self.fused if self.refined is None else self.refined


class Pix2VoxPP(nn.Module):
    """The Pix2Vox++ network; build it with :func:`build_model`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.merger = Merger(config) if config.use_merger else None
        self.refiner = Refiner(config) if config.use_refiner else None

    def reconstruct(self, images: torch.Tensor) -> Reconstruction:
        """Run all stages and keep the intermediate volumes.

        :param images: ``(B, V, 3, 224, 224)`` normalized images, V ≥ 1 views of each object.
        :raises ValueError: the input is not 5-dimensional or has no views.
        """
        if images.dim() != 5 or images.shape[1] < 1 or images.shape[2] != 3:
            raise ValueError('expected images of shape (B, V, 3, H, W), '
                             f'got {tuple(images.shape)}')
        batch, views = images.shape[:2]
        fusing = views > 1 and self.merger is not None
        features = self.encoder(images.flatten(0, 1))  # (B*V, C, 7, 7)
        # (B*V, R, R, R) and, when fusing, (B*V, 9, F, F, F) on the fusion grid F
        coarse, context = self.decoder(features, with_context=fusing)
        coarse = coarse.unflatten(0, (batch, views))  # (B, V, R, R, R)
        if views == 1:
            fused = coarse[:, 0]  # softmax over one view is exactly 1: the merger is a no-op
        elif fusing:
            fused = self.merger(coarse, context.unflatten(0, (batch, views)))
        else:
            fused = coarse.mean(dim=1)
        refined = self.refiner(fused) if self.refiner is not None else None
        return Reconstruction(coarse, fused, refined)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return occupancy ``(B, R, R, R)`` for normalized images ``(B, V, 3, 224, 224)``."""
        return self.reconstruct(images).occupancy


def init_weights(module: nn.Module) -> None:
    """Initialise as the paper: Kaiming normal convs, BatchNorm 1/0, Linear N(0, 0.01)."""
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.01)
        nn.init.zeros_(module.bias)


def load_matching_weights(model: Pix2VoxPP, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``state`` whose name and shape the network has; return their names.

    This starts a network from another configuration's weights: a 32³ checkpoint gives a 128³
    network its encoder, decoder layers 1-5 and merger (their shapes are the same), and nothing
    for the upsampling blocks, which keep their initialisation. Tensors are cast to the
    network's dtypes (a float16 deployment file works).
    """
    own = model.state_dict()
    matching = {key: value for key, value in state.items()
                if key in own and tuple(value.shape) == tuple(own[key].shape)}
    with torch.no_grad():
        for key, value in matching.items():
            own[key].copy_(value)
    return sorted(matching)


def build_model(config: ModelConfig | None = None, **overrides: object) -> Pix2VoxPP:
    """Build a freshly initialised Pix2Vox++.

    :param config: the configuration; ``None`` means Pix2Vox++/F.
    :param overrides: field overrides applied to ``config`` (e.g. ``use_merger=False``).
    """
    if config is None:
        config = ModelConfig.for_variant('F')
    if overrides:
        config = ModelConfig.from_dict({**config.to_dict(), **overrides})
    model = Pix2VoxPP(config)
    model.apply(init_weights)
    return model
