"""The model configuration: the few numbers that decide which Pix2Vox++ network is built."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Any

#: Output grid edges the network can be built for: the paper's 32³ and its 128³ experiment.
RESOLUTIONS = (32, 128)
#: The grid every Pix2Vox++ decoder reaches with the released layers; finer grids continue it.
BASE_RESOLUTION = 32


@dataclass(frozen=True)
class ModelConfig:
    """Which Pix2Vox++ network to build.

    :param variant: ``'F'`` (ResNet-18 encoder, 4.8 M parameters) or ``'A'`` (ResNet-50, 96 M).
    :param use_refiner: append the 3D U-Net refiner (the paper's /A has it, /F does not).
    :param use_merger: fuse views with the context-aware merger; ``False`` averages the coarse
        volumes (training stage 1).
    :param leaky_slope: negative slope of the LeakyReLUs in merger and refiner.
    :param resolution: edge of the output grid, 32 (the paper's networks) or 128 (the decoder
        continues with two more upsampling blocks, :mod:`.decoder`).
    :param fusion_resolution: the grid the merger scores views on: 32, or the output
        ``resolution`` itself. Scores at 32 are upsampled to the output grid before the softmax
        (:mod:`.merger`).
    """

    variant: str = 'F'
    use_refiner: bool = False
    use_merger: bool = True
    leaky_slope: float = 0.2
    resolution: int = BASE_RESOLUTION
    fusion_resolution: int = BASE_RESOLUTION

    def __post_init__(self) -> None:
        if self.variant not in VARIANT_CHANNELS:
            raise ValueError(f"variant must be 'F' or 'A', got {self.variant!r}")
        if not 0.0 <= self.leaky_slope < 1.0:
            raise ValueError(f'leaky_slope must be in [0, 1), got {self.leaky_slope}')
        if not _is_int(self.resolution) or self.resolution not in RESOLUTIONS:
            raise ValueError(f'resolution must be 32 or 128, got {self.resolution!r}')
        if not _is_int(self.fusion_resolution) or self.fusion_resolution not in (
                BASE_RESOLUTION, self.resolution):
            raise ValueError(f'fusion_resolution must be 32 or the resolution '
                             f'({self.resolution}), got {self.fusion_resolution!r}')
        if self.use_refiner and self.resolution != BASE_RESOLUTION:
            # Its fully connected bottleneck would grow 64-fold (4³ -> 16³ x 128 channels, a
            # 1.1-billion-weight Linear); the paper's 128³ experiment has none (see decoder).
            raise ValueError(f'the refiner exists at 32³ only, not at {self.resolution}³; '
                             'use use_refiner=False')

    @property
    def upsampling_blocks(self) -> int:
        """Return how many doubling blocks the decoder adds after its 32³ layer (0 or 2)."""
        return (self.resolution // BASE_RESOLUTION).bit_length() - 1

    @classmethod
    def for_variant(cls, variant: str, **overrides: Any) -> 'ModelConfig':
        """Return the paper's configuration of ``variant`` (refiner on for /A, off for /F)."""
        return cls(**{'variant': variant, 'use_refiner': variant == 'A', **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> 'ModelConfig':
        """Build from a dict such as :meth:`to_dict` returns; unknown keys raise ``ValueError``."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'unknown model configuration keys: {sorted(unknown)}')
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values, safe for ``torch.load(weights_only=True)``.

        The grid fields are left out at their 32³ defaults, so a 32³ network's configuration
        (in checkpoints and in the OpenVINO cache key) is what it was before they existed, and
        a reader that does not know them refuses only the finer networks.
        """
        values = asdict(self)
        for name in ('resolution', 'fusion_resolution'):
            if values[name] == BASE_RESOLUTION:
                del values[name]
        return values


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# Per variant: (encoder backbone, backbone output channels, encoder layer1/2/3 channels,
# decoder input channels after the reshape, decoder layer1..4 channels).
VARIANT_CHANNELS: dict[str, dict[str, Any]] = {
    'F': {'backbone': 'resnet18', 'backbone_channels': 128, 'encoder': (128, 64, 64),
          'decoder_in': 392, 'decoder': (128, 64, 32, 8)},
    'A': {'backbone': 'resnet50', 'backbone_channels': 512, 'encoder': (512, 256, 256),
          'decoder_in': 1568, 'decoder': (512, 128, 32, 8)},
}
