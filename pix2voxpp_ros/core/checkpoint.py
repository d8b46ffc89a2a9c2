"""Checkpoints: the authors' released format and the project's own, loaded without running code.

Two formats are read by one entry point, :func:`load_checkpoint`:

* **Release** (Pix2Vox++ authors' ``Pix2Vox++-{A,F}-ShapeNet.pth``): a dict with
  ``encoder_state_dict``, ``decoder_state_dict``, ``merger_state_dict`` and, for /A,
  ``refiner_state_dict``; keys may carry DataParallel's ``module.`` prefix; ``best_iou`` is a numpy
  float64 scalar. Variant and refiner are inferred from the tensors.
* **Project** (written by :func:`save_checkpoint`, e.g. by training and ``pix2voxpp-export``): one
  state dict plus the model configuration and :class:`WeightsMetadata`, everything plain Python
  values and tensors.

Every file is read by :func:`~.checkpoint_file.load_weights_file`: its zip records are checked
against size limits first, then ``torch.load(..., weights_only=True)`` runs, so a checkpoint never
executes code. The only non-tensor globals allowed are the numpy scalar and dtype types the release
files contain. Every metadata value is checked against the network's needs when it is read.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Union

import torch

from .checkpoint_file import CheckpointError, load_weights_file
from .model import ModelConfig, Pix2VoxPP, build_model
from .model.config import RESOLUTIONS

PathLike = Union[str, Path]

PROJECT_FORMAT = 'pix2voxpp_ros.checkpoint'
PROJECT_FORMAT_VERSION = 1
RELEASE_MODULES = ('encoder', 'decoder', 'merger', 'refiner')
__all__ = ['CheckpointError', 'LoadedCheckpoint', 'WeightsMetadata', 'load_checkpoint',
           'read_checkpoint', 'save_checkpoint']

# What the network itself fixes: 224x224 inputs (the encoder's 7x7 features are reshaped for the
# decoder) and an output grid of 32^3 or 128^3 (the model configuration's resolution).
NETWORK_INPUT_SIZE = 224
STD_RANGE = (1e-3, 10.0)  # ImageNet's is 0.23, the project's 0.5; below 1e-3 inputs blow up


def _short(value: Any) -> str:
    """Return a repr bounded for one-line messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _is_number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_values(values: Any, name: str, low: float, high: float) -> None:
    """Refuse ``values`` unless they are 3 finite numbers in ``[low, high]``."""
    if not (isinstance(values, tuple) and len(values) == 3 and all(
            _is_number(v) and low <= v <= high for v in values)):
        raise ValueError(f'{name} {_short(values)}: must be 3 numbers in [{low:g}, {high:g}]')


@dataclass(frozen=True)
class WeightsMetadata:
    """How a set of weights expects its input and what it was made from.

    :param resolution: edge of the output grid in voxels (32 or 128); a project checkpoint's
        must equal its model configuration's, :func:`save_checkpoint` writes the network's own.
    :param input_size: edge of the square input image in pixels.
    :param mean: per-channel normalization mean, in the network's channel order, values in [0, 1].
    :param std: per-channel normalization standard deviation.
    :param channel_order: ``'BGR'`` or ``'RGB'``: the order the weights were trained with.
    :param background: grey level in [0, 1] given to transparent or padded pixels.
    :param threshold: recommended occupancy threshold.
    :param provenance: free-form facts (source, dataset, epoch, validation IoU, ...), plain values.
    """

    resolution: int = 32
    input_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    channel_order: str = 'BGR'
    background: float = 240.0 / 255.0
    threshold: float = 0.3
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse any value the network or the preprocessing cannot use (ValueError)."""
        for name, allowed, text in (
                ('resolution', RESOLUTIONS, ' or '.join(map(str, RESOLUTIONS))),
                ('input_size', (NETWORK_INPUT_SIZE,), str(NETWORK_INPUT_SIZE))):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                    and value in allowed):
                raise ValueError(f'{name} {_short(value)}: must be {text}, what the '
                                 'Pix2Vox++ network takes')
        for name in ('mean', 'std'):  # lists are taken as tuples, as from_dict gives them
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _check_values(self.mean, 'mean', 0.0, 1.0)
        _check_values(self.std, 'std', *STD_RANGE)
        if self.channel_order not in ('BGR', 'RGB'):
            raise ValueError(f"channel_order must be 'BGR' or 'RGB', got "
                             f'{_short(self.channel_order)}')
        if not (_is_number(self.background) and 0.0 <= self.background <= 1.0):
            raise ValueError(f'background {_short(self.background)}: must be a grey level in '
                             '[0, 1]')
        if not (_is_number(self.threshold) and 0.0 < self.threshold < 1.0):
            raise ValueError(f'threshold must be in (0, 1), got {_short(self.threshold)}')
        if not isinstance(self.provenance, dict):
            raise ValueError(f'provenance {_short(self.provenance)}: must be a dict')

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values (tuples as lists)."""
        values = asdict(self)
        values['mean'], values['std'] = list(self.mean), list(self.std)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> 'WeightsMetadata':
        """Build from :meth:`to_dict` output; unknown keys are ignored (forward compatibility)."""
        if not isinstance(values, dict):
            raise ValueError(f'metadata {_short(values)}: must be a dict')
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for key in ('mean', 'std'):
            if isinstance(known.get(key), (list, tuple)):
                known[key] = tuple(float(v) if _is_number(v) else v for v in known[key])
        return cls(**known)


class LoadedCheckpoint(NamedTuple):
    """A network in eval mode with the metadata of its weights."""

    model: Pix2VoxPP
    metadata: WeightsMetadata
    format: str  # 'release' or 'project'
    extra: dict[str, Any]  # other top-level entries of the file (epoch, training state, ...)


def _strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str = 'module.') -> dict:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def _release_to_project(path: Path, raw: dict[str, Any]) -> tuple[ModelConfig, dict]:
    """Map the four release state dicts onto one state dict and infer the configuration."""
    parts = {name: _strip_prefix(raw[f'{name}_state_dict'])
             for name in RELEASE_MODULES if isinstance(raw.get(f'{name}_state_dict'), dict)}
    encoder = parts['encoder']
    if 'layer1.0.weight' not in encoder:
        raise CheckpointError(f"{path}: encoder_state_dict lacks 'layer1.0.weight'; "
                              'cannot tell Pix2Vox++/F from /A')
    channels = encoder['layer1.0.weight'].shape[0]
    variants = {128: 'F', 512: 'A'}
    if channels not in variants:
        raise CheckpointError(f"{path}: encoder 'layer1.0.weight' has {channels} output channels; "
                              'Pix2Vox++ has 128 (/F) or 512 (/A)')
    config = ModelConfig(variant=variants[channels], use_refiner=bool(parts.get('refiner')),
                         use_merger=bool(parts.get('merger')))
    state = {f'{name}.{key}': value for name, part in parts.items() for key, value in part.items()}
    return config, state


def _load_state(path: Path, model: Pix2VoxPP, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly, naming the first offending key on any mismatch."""
    expected = model.state_dict()
    # Files from PyTorch < 0.4.1 have no BatchNorm step counters; they do not affect inference.
    missing = [k for k in expected if k not in state and not k.endswith('num_batches_tracked')]
    if missing:
        raise CheckpointError(f'{path}: missing key {missing[0]!r} '
                              f'({len(missing)} missing) for Pix2Vox++/{model.config.variant}')
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f'{path}: unexpected key {unexpected[0]!r} '
                              f'({len(unexpected)} unexpected) for Pix2Vox++/'
                              f'{model.config.variant}')
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f'{path}: key {key!r} holds a {type(value).__name__}, '
                                  'not a tensor')
        if value.shape != expected[key].shape:
            raise CheckpointError(f'{path}: shape mismatch at {key!r}: file has '
                                  f'{tuple(value.shape)}, network expects '
                                  f'{tuple(expected[key].shape)}')
    model.load_state_dict(state, strict=False)


def read_checkpoint(path: PathLike, *, device: str | torch.device = 'cpu') -> LoadedCheckpoint:
    """Load a release or project checkpoint into a network in eval mode, with its metadata.

    :param path: the ``.pth`` file.
    :param device: where the tensors and the network go.
    :raises CheckpointError: missing, truncated, code-carrying or foreign file, or a key or shape
        that does not fit the network; the message names the file and the first offending key.
    """
    path = Path(path)
    raw = load_weights_file(path, device)
    if not isinstance(raw, dict):
        raise CheckpointError(f'{path}: expected a dict checkpoint, found {type(raw).__name__}')
    if raw.get('format') == PROJECT_FORMAT:
        version = raw.get('format_version')
        if version != PROJECT_FORMAT_VERSION:
            raise CheckpointError(f'{path}: project checkpoint version {version!r} is not '
                                  f'supported (this code reads {PROJECT_FORMAT_VERSION})')
        try:
            config = ModelConfig.from_dict(raw['model_config'])
            state = raw['state_dict']
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f'{path}: malformed project checkpoint ({exc})') from exc
        try:
            metadata = WeightsMetadata.from_dict(raw.get('metadata', {}))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f'{path}: refused metadata: {exc}') from exc
        if metadata.resolution != config.resolution:
            raise CheckpointError(f'{path}: refused metadata: resolution {metadata.resolution} '
                                  f'but the model configuration builds a '
                                  f'{config.resolution}³ network')
        kind = 'project'
        known = {'format', 'format_version', 'model_config', 'metadata', 'state_dict'}
    elif isinstance(raw.get('encoder_state_dict'), dict) and isinstance(
            raw.get('decoder_state_dict'), dict):
        config, state = _release_to_project(path, raw)
        provenance = {'source': 'Pix2Vox++ authors release', 'file': path.name}
        for key in ('epoch_idx', 'best_epoch', 'best_iou'):
            if key in raw:
                provenance[key] = float(raw[key]) if key == 'best_iou' else int(raw[key])
        metadata = WeightsMetadata(provenance=provenance)
        kind = 'release'
        known = {f'{name}_state_dict' for name in RELEASE_MODULES}
    else:
        keys = sorted(str(k) for k in raw)[:6]
        raise CheckpointError(f'{path}: not a Pix2Vox++ checkpoint (top-level keys {keys}; '
                              "expected 'encoder_state_dict' or a project checkpoint)")
    model = build_model(config)
    _load_state(path, model, state)
    model.to(device).eval()
    extra = {k: v for k, v in raw.items() if k not in known}
    return LoadedCheckpoint(model, metadata, kind, extra)


def load_checkpoint(path: PathLike, *, device: str | torch.device = 'cpu') -> Pix2VoxPP:
    """Load a release or project checkpoint and return the network in eval mode.

    The network's forward takes ``(B, V, 3, 224, 224)`` normalized images and returns occupancy
    probabilities ``(B, R, R, R)``, R = ``model.config.resolution`` (32 or 128). Use
    :func:`read_checkpoint` to get the metadata too.

    :raises CheckpointError: see :func:`read_checkpoint`.
    """
    return read_checkpoint(path, device=device).model


def save_checkpoint(
    path: PathLike,
    model: Pix2VoxPP,
    *,
    metadata: WeightsMetadata | None = None,
    extra: dict[str, Any] | None = None,
    half: bool = False,
) -> None:
    """Write a project checkpoint: weights, model configuration, metadata and optional extras.

    The file is written to a temporary name and renamed, so a crash never leaves a truncated
    checkpoint under ``path``.

    :param metadata: how the weights expect their input; None: the defaults. Its resolution
        must be the network's (a default ``WeightsMetadata()`` is taken as the network's own).
    :param extra: more top-level entries (training state, epoch, ...); plain values and tensors.
    :param half: store floating-point tensors as float16 (deployment files).
    :raises ValueError: the metadata names another resolution than the network's.
    """
    path = Path(path)
    metadata = metadata or WeightsMetadata()
    resolution = model.config.resolution
    if metadata.resolution != resolution:
        if metadata.resolution != WeightsMetadata.resolution:
            raise ValueError(f'metadata resolution {metadata.resolution} does not match the '
                             f'{resolution}³ network')
        metadata = replace(metadata, resolution=resolution)
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload: dict[str, Any] = dict(extra or {})
    payload.update({
        'format': PROJECT_FORMAT,
        'format_version': PROJECT_FORMAT_VERSION,
        'model_config': model.config.to_dict(),
        'metadata': metadata.to_dict(),
        'state_dict': {k: v.detach().cpu() for k, v in state.items()},
    })
    tmp = path.with_name(path.name + '.tmp')
    torch.save(payload, tmp)
    tmp.replace(path)
