"""The training configuration: YAML files read into frozen dataclasses, with dotted overrides.

Every number of a training run lives in one :class:`TrainConfig`. It is read with
``yaml.safe_load`` (a config file never runs code); an unknown key, a wrong type or an invalid
value is a :class:`TrainingConfigError` naming the dotted key (``stage2.lr.merger``). The same
dotted names override values from the command line (``--set stage1.epochs=10``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.model.config import RESOLUTIONS

PathLike = Union[str, Path]

PRECISIONS = ('fp32', 'bf16', 'fp16')


class TrainingConfigError(Pix2VoxError, ValueError):
    """A configuration file or override is unreadable, has an unknown key or a bad value."""


@dataclass(frozen=True)
class ModelSection:
    """Which network to train.

    :param variant: ``'F'`` (ResNet-18 encoder) or ``'A'`` (ResNet-50 encoder).
    :param use_refiner: append the 3D U-Net refiner (the paper's /A has one, /F does not).
    :param backbone_weights: optional file with a torchvision ResNet state dict (e.g. ImageNet),
        loaded into the encoder's backbone at the start of stage 1; relative paths are taken
        from the working directory. Never downloaded.
    :param resolution: output grid edge, 32 or 128 (the decoder continues to 128³; the data's
        grids must be of this size, e.g. ``data.voxels: ShapeNetVox128``).
    :param fusion_resolution: the grid the merger scores views on: 32, or ``resolution``.
    :param transfer_weights: optional checkpoint (project or release format) whose tensors
        initialise every layer of the same name and shape before ``--init`` is applied: a 32³
        network's weights give a 128³ one its encoder, decoder layers and (in stage 2) merger;
        its upsampling blocks then start as nearest-neighbour upsampling
        (``Decoder.init_upsampling_as_nearest``). Relative paths are taken from the working
        directory.
    """

    variant: str = 'F'
    use_refiner: bool = False
    backbone_weights: str | None = None
    resolution: int = 32
    fusion_resolution: int = 32
    transfer_weights: str | None = None


@dataclass(frozen=True)
class DataSection:
    """Where the dataset is and how much of it to use.

    :param taxonomy: taxonomy JSON (categories and splits), relative to the data folder.
    :param renderings: folder of ``<taxonomy>/<model>/rendering/NN.png``, relative to the data.
    :param voxels: folder of ``<taxonomy>/<model>/model.binvox``, relative to the data.
    :param categories: taxonomy ids or names to use; ``None`` means all.
    :param max_objects: cap on the objects of each split (spread over categories); ``None``: all.
    :param views_per_model: renderings per object (24 in ShapeNetRendering).
    :param workers: DataLoader worker processes per training process.
    """

    taxonomy: str = 'ShapeNet.json'
    renderings: str = 'ShapeNetRendering'
    voxels: str = 'ShapeNetVox32'
    categories: tuple[str, ...] | None = None
    max_objects: int | None = None
    views_per_model: int = 24
    workers: int = 4


@dataclass(frozen=True)
class AugmentSection:
    """The training transforms' parameters (PIX2VOXPP.md, "Training").

    :param background: inclusive range of the random background level (0..255) where alpha is 0.
    :param brightness: brightness factor drawn from ``1 ± brightness``.
    :param contrast: contrast factor drawn from ``1 ± contrast``.
    :param saturation: saturation factor drawn from ``1 ± saturation``.
    :param lighting_std: standard deviation of the PCA lighting noise coefficients.
    :param lighting_eigval: eigenvalues of the RGB covariance (ImageNet's).
    :param flip_p: probability of a horizontal flip, per image.
    :param permute_channels: apply one random colour channel permutation per sample.
    :param test_background: background level (0..255) of the test transform.
    :param box_crop_p: probability, per image, of cutting the square around the object's
        bounding box that a crop around a segmentation mask cuts at deployment
        (``preprocess_frame(mask=...)``) instead of the renderings' fixed centre crop; 0 (the
        paper) keeps the fixed crop.
    :param box_crop_scale: such a square's side varies by ``1 ± box_crop_scale``.
    :param occlusion_p: probability, per image, that an occluder in front of the object hides
        part of it, as a distractor does on a table: its pixels leave the object's mask, and
        the image is cut around what is left as a crop around that mask is
        (``pix2voxpp_training.transforms.occlude``); 0 (the paper) never.
    :param occlusion_share: the range the hidden share of the object's pixels is drawn from.
    """

    background: tuple[int, int] = (225, 255)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    lighting_std: float = 0.1
    lighting_eigval: tuple[float, float, float] = (0.2175, 0.0188, 0.0045)
    flip_p: float = 0.5
    permute_channels: bool = True
    test_background: int = 240
    box_crop_p: float = 0.0
    box_crop_scale: float = 0.1
    occlusion_p: float = 0.0
    occlusion_share: tuple[float, float] = (0.1, 0.5)


@dataclass(frozen=True)
class LearningRates:
    """Adam learning rate of each module; a module absent from the network is ignored."""

    encoder: float = 1e-3
    decoder: float = 1e-3
    merger: float = 1e-4
    refiner: float = 1e-3


#: The network's top-level modules, as the learning rates name them.
MODULE_NAMES = tuple(f.name for f in dataclasses.fields(LearningRates))


@dataclass(frozen=True)
class StageSection:
    """The schedule of one training stage.

    :param epochs: epochs of this stage.
    :param batch_size: samples per optimizer step over all processes (divided among ranks).
    :param min_views: fewest views of a training batch.
    :param max_views: most views of a training batch; each batch draws its count uniformly.
    :param val_views: views 0..n-1 of each validation object.
    :param lr: learning rates per module.
    :param milestones: epochs after which the learning rates are multiplied by ``gamma``.
    :param gamma: MultiStepLR factor.
    :param betas: Adam betas.
    :param val_every: validate every this many epochs (and always after the last).
    :param trainable: the network's modules that train, by dotted name (``decoder.upsample``);
        everything else is frozen, its BatchNorm statistics included. Empty: the stage's own
        choice (stage 1 all, stage 2 merger and refiner). Fine-tuning a part on a small budget,
        e.g. only the 128³ upsampling from the 32³ weights on a CPU.
    """

    epochs: int = 250
    batch_size: int = 64
    min_views: int = 1
    max_views: int = 1
    val_views: int = 1
    lr: LearningRates = field(default_factory=LearningRates)
    milestones: tuple[int, ...] = (150,)
    gamma: float = 0.5
    betas: tuple[float, float] = (0.9, 0.999)
    val_every: int = 1
    trainable: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run.

    :param name: a label stored in checkpoints and exports.
    :param seed: base seed of model initialisation, shuffling and every augmentation.
    :param loss_weight: the factor of each BCE term (10 in the paper).
    :param thresholds: occupancy thresholds of the validation IoU.
    :param precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (bf16 also on the CPU).
    :param channels_last_3d: store 3D convolutions channels-last: ``'auto'`` (on the CPU, where
        oneDNN is much faster that way), ``'on'`` or ``'off'``.
    :param deterministic: ask PyTorch for deterministic algorithms.
    """

    name: str = 'pix2voxpp'
    seed: int = 0
    loss_weight: float = 10.0
    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)
    precision: str = 'fp32'
    channels_last_3d: str = 'auto'
    deterministic: bool = False
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    stage1: StageSection = field(default_factory=StageSection)
    stage2: StageSection = field(default_factory=lambda: StageSection(
        epochs=100, min_views=2, max_views=8, val_views=5))

    def stage(self, stage: int) -> StageSection:
        """Return the schedule of stage 1 or 2."""
        if stage not in (1, 2):
            raise TrainingConfigError(f'stage must be 1 or 2, got {stage!r}')
        return self.stage1 if stage == 1 else self.stage2

    def to_dict(self) -> dict[str, Any]:
        """Return plain Python values (tuples as lists), safe to store in a checkpoint."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> 'TrainConfig':
        """Build and validate from nested dicts; see :func:`load_config`.

        :raises TrainingConfigError: unknown key, wrong type or invalid value, naming the dotted
            key.
        """
        config = _build(cls, values, '')
        _validate(config)
        return config


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _convert(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against a type hint of this module's dataclasses, converting lists."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except TrainingConfigError as exc:
                errors.append(str(exc))
        raise TrainingConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TrainingConfigError(f'{key}: expected a mapping, got {type(value).__name__}')
        return _build(hint, value, key + '.')
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TrainingConfigError(f'{key}: expected a list, got {value!r}')
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f'{key}[{i}]') for i, v in enumerate(value))
        if len(value) != len(args):
            raise TrainingConfigError(f'{key}: expected {len(args)} values, got {len(value)}')
        return tuple(_convert(a, v, f'{key}[{i}]') for i, (a, v) in enumerate(zip(args, value)))
    if hint is bool:
        if not isinstance(value, bool):
            raise TrainingConfigError(f'{key}: expected true or false, got {value!r}')
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrainingConfigError(f'{key}: expected an integer, got {value!r}')
        return value
    if hint is float:
        # YAML reads 1e-3 (no dot) as a string; accept it as the number it obviously is.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrainingConfigError(f'{key}: expected a number, got {value!r}')
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TrainingConfigError(f'{key}: expected a string, got {value!r}')
        return value
    # A bug in this module, not the user's.
    raise TrainingConfigError(f'{key}: unsupported type {hint!r}')


def _build(cls: type, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise TrainingConfigError(f'{prefix.rstrip(".") or "config"}: expected a mapping, '
                                  f'got {type(values).__name__}')
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            known = ', '.join(sorted(names))
            raise TrainingConfigError(f"unknown configuration key '{prefix}{key}' "
                                      f'(known here: {known})')
    kwargs = {key: _convert(hints[key], value, prefix + key) for key, value in values.items()}
    return cls(**kwargs)


def _validate(config: TrainConfig) -> None:
    """Range checks that the types alone do not express."""
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise TrainingConfigError(f'{key}: {message}')

    need(config.model.variant in ('F', 'A'), 'model.variant',
         f"must be 'F' or 'A', got {config.model.variant!r}")
    need(config.model.resolution in RESOLUTIONS, 'model.resolution',
         f'must be 32 or 128, got {config.model.resolution}')
    need(config.model.fusion_resolution in (32, config.model.resolution),
         'model.fusion_resolution',
         f'must be 32 or model.resolution ({config.model.resolution}), got '
         f'{config.model.fusion_resolution}')
    need(not config.model.use_refiner or config.model.resolution == 32, 'model.use_refiner',
         'the refiner exists at 32³ only; set it false for model.resolution 128')
    need(config.precision in PRECISIONS, 'precision',
         f'must be one of {", ".join(PRECISIONS)}, got {config.precision!r}')
    need(config.channels_last_3d in ('auto', 'on', 'off'), 'channels_last_3d',
         f"must be 'auto', 'on' or 'off', got {config.channels_last_3d!r}")
    need(config.loss_weight > 0, 'loss_weight', 'must be positive')
    need(bool(config.thresholds) and all(0 < t < 1 for t in config.thresholds), 'thresholds',
         'must be a non-empty list of values in (0, 1)')
    need(config.data.max_objects is None or config.data.max_objects > 0, 'data.max_objects',
         'must be positive or null')
    need(config.data.views_per_model > 0, 'data.views_per_model', 'must be positive')
    need(config.data.workers >= 0, 'data.workers', 'must be 0 or more')
    aug = config.augment
    need(0 <= aug.background[0] <= aug.background[1] <= 255, 'augment.background',
         'must be [low, high] with 0 <= low <= high <= 255')
    for name in ('brightness', 'contrast', 'saturation'):
        need(0 <= getattr(aug, name) < 1, f'augment.{name}', 'must be in [0, 1)')
    need(aug.lighting_std >= 0, 'augment.lighting_std', 'must be 0 or more')
    need(0 <= aug.flip_p <= 1, 'augment.flip_p', 'must be in [0, 1]')
    need(0 <= aug.test_background <= 255, 'augment.test_background', 'must be in [0, 255]')
    need(0 <= aug.box_crop_p <= 1, 'augment.box_crop_p', 'must be in [0, 1]')
    need(0 <= aug.box_crop_scale < 1, 'augment.box_crop_scale', 'must be in [0, 1)')
    need(0 <= aug.occlusion_p <= 1, 'augment.occlusion_p', 'must be in [0, 1]')
    need(0 < aug.occlusion_share[0] <= aug.occlusion_share[1] < 1, 'augment.occlusion_share',
         f'must be [low, high] with 0 < low <= high < 1, got {list(aug.occlusion_share)}')
    views = config.data.views_per_model
    for number in (1, 2):
        stage = config.stage(number)
        key = f'stage{number}'
        need(stage.epochs > 0, f'{key}.epochs', 'must be positive')
        need(stage.batch_size > 0, f'{key}.batch_size', 'must be positive')
        need(1 <= stage.min_views <= stage.max_views <= views, f'{key}.min_views',
             f'need 1 <= min_views <= max_views <= data.views_per_model ({views}), got '
             f'{stage.min_views}..{stage.max_views}')
        need(1 <= stage.val_views <= views, f'{key}.val_views',
             f'must be in 1..{views}, got {stage.val_views}')
        need(stage.val_every > 0, f'{key}.val_every', 'must be positive')
        need(all(m > 0 for m in stage.milestones), f'{key}.milestones', 'must be positive')
        need(0 < stage.gamma <= 1, f'{key}.gamma', 'must be in (0, 1]')
        need(all(0 <= b < 1 for b in stage.betas), f'{key}.betas', 'must be in [0, 1)')
        for module, lr in dataclasses.asdict(stage.lr).items():
            need(lr >= 0, f'{key}.lr.{module}', 'must be 0 or more')
        need(len(set(stage.trainable)) == len(stage.trainable)
             and all(name.split('.')[0] in MODULE_NAMES for name in stage.trainable),
             f'{key}.trainable', f'must be distinct modules of the network, each under one of '
             f'{", ".join(MODULE_NAMES)} (e.g. decoder.upsample), got {list(stage.trainable)}')
    need(config.stage1.max_views == 1, 'stage1.max_views',
         'stage 1 trains single-view (the merger is off); set it to 1')
    need(config.model.use_refiner or config.stage2.min_views >= 2, 'stage2.min_views',
         'must be at least 2 without a refiner: one view bypasses the merger, so such a batch '
         'would train nothing')


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``'a.b=value'`` into the dotted key and the YAML-parsed value.

    :raises TrainingConfigError: no ``=`` or an empty key.
    """
    key, sep, raw = text.partition('=')
    key = key.strip()
    if not sep or not key:
        raise TrainingConfigError(f'override {text!r} must look like section.key=value')
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise TrainingConfigError(f'override {text!r}: value is not valid YAML ({exc})') from exc
    return key, value


def apply_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of nested ``values`` with dotted-key ``overrides`` set.

    :raises TrainingConfigError: an override descends into a value that is not a mapping.
    """
    result = _plain(values)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split('.')
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TrainingConfigError(f'override {dotted}: {".".join(parts[:i + 1])} is not a '
                                          'section')
            node = child
        node[parts[-1]] = value
    return result


def load_config(path: PathLike, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML configuration file and apply dotted-key overrides.

    :param path: the YAML file.
    :param overrides: ``{'stage1.epochs': 10, ...}``, applied before validation.
    :raises TrainingConfigError: the file is missing or not YAML, or a key or value is invalid; the
        message names the file and the dotted key.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TrainingConfigError(f'{path}: cannot read configuration ({exc.strerror})') from exc
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrainingConfigError(f'{path}: not valid YAML ({exc})') from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise TrainingConfigError(f'{path}: expected a mapping at the top level')
    try:
        return TrainConfig.from_dict(apply_overrides(values, overrides or {}))
    except TrainingConfigError as exc:
        raise TrainingConfigError(f'{path}: {exc}') from exc
