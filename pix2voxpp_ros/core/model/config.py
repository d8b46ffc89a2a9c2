"""The model configuration: the few numbers that decide which Pix2Vox++ network is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Which Pix2Vox++ network to build.

    :param variant: ``'F'`` (ResNet-18 encoder, 4.8 M parameters) or ``'A'`` (ResNet-50, 96 M).
    :param use_refiner: append the 3D U-Net refiner (the paper's /A has it, /F does not).
    :param use_merger: fuse views with the context-aware merger; ``False`` averages the coarse
        volumes (training stage 1).
    :param leaky_slope: negative slope of the LeakyReLUs in merger and refiner.
    """

    variant: str = 'F'
    use_refiner: bool = False
    use_merger: bool = True
    leaky_slope: float = 0.2

    def __post_init__(self) -> None:
        if self.variant not in VARIANT_CHANNELS:
            raise ValueError(f"variant must be 'F' or 'A', got {self.variant!r}")
        if not 0.0 <= self.leaky_slope < 1.0:
            raise ValueError(f'leaky_slope must be in [0, 1), got {self.leaky_slope}')

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
        """Return plain Python values, safe for ``torch.load(weights_only=True)``."""
        return asdict(self)


# Per variant: (encoder backbone, backbone output channels, encoder layer1/2/3 channels,
# decoder input channels after the reshape, decoder layer1..4 channels).
VARIANT_CHANNELS: dict[str, dict[str, Any]] = {
    'F': {'backbone': 'resnet18', 'backbone_channels': 128, 'encoder': (128, 64, 64),
          'decoder_in': 392, 'decoder': (128, 64, 32, 8)},
    'A': {'backbone': 'resnet50', 'backbone_channels': 512, 'encoder': (512, 256, 256),
          'decoder_in': 1568, 'decoder': (512, 128, 32, 8)},
}
