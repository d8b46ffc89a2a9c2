"""The two training stages: model set-up, freezing, optimizers, loss, one step, validation.

Stage 1 trains encoder, decoder (and refiner) on single views with the merger off. Stage 2 starts
from a stage-1 checkpoint, adds the merger, freezes encoder and decoder (no gradients *and*
eval-mode BatchNorm, so their running statistics stay put) and trains merger and refiner on a
random number of views per batch. The loop around these pieces (epochs, checkpoints, logging) is
in :mod:`pix2voxpp_training.train`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pix2voxpp_ros.core.checkpoint import CheckpointError, read_checkpoint
from pix2voxpp_ros.core.checkpoint_file import load_weights_file
from pix2voxpp_ros.core.model import (ModelConfig, Pix2VoxPP, Reconstruction, build_model,
                                      load_matching_weights)

from .config import StageSection, TrainConfig, TrainingConfigError
from .distributed import DistContext, gather_objects
from .metrics import iou_per_threshold

MODULES = ('encoder', 'decoder', 'merger', 'refiner')
FROZEN_IN_STAGE2 = ('encoder', 'decoder')
AUTOCAST_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


class InitCheckpointError(CheckpointError):
    """The ``--init`` checkpoint is missing or holds another architecture than the config's."""


def stage_model_config(config: TrainConfig, stage: int) -> ModelConfig:
    """Return the network of a stage: the config's variant, refiner, grids; merger in stage 2."""
    return ModelConfig(variant=config.model.variant, use_refiner=config.model.use_refiner,
                       use_merger=stage == 2, resolution=config.model.resolution,
                       fusion_resolution=config.model.fusion_resolution)


def load_backbone(model: Pix2VoxPP, path: str | Path) -> None:
    """Load a torchvision ResNet state dict file (e.g. ImageNet weights) into the encoder.

    :raises InitCheckpointError: the file is missing, unreadable or lacks backbone keys.
    """
    path = Path(path)
    if not path.is_file():
        raise InitCheckpointError(f'{path}: backbone weights file not found '
                                  '(model.backbone_weights)')
    try:  # the same size limits and weights_only loading as every checkpoint
        state = load_weights_file(path)
    except CheckpointError as exc:
        reason = str(exc).removeprefix(f'{path}: ')
        raise InitCheckpointError(f'{path}: cannot read backbone weights ({reason})') from exc
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    try:
        model.encoder.load_backbone_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise InitCheckpointError(f'{path}: not a matching torchvision ResNet state dict '
                                  f'({exc})') from exc


def transfer_weights(model: Pix2VoxPP, path: str | Path) -> list[str]:
    """Start ``model`` from another network's weights: every tensor of the same name and shape.

    Upsampling blocks the file has no weights for (a 32³ file, a 128³ network) start as
    nearest-neighbour upsampling, so the network begins at the file's coarse volumes repeated.

    :returns: the names of the tensors copied.
    :raises InitCheckpointError: missing or unreadable file, or nothing in it fits.
    """
    path = Path(path)
    try:
        source = read_checkpoint(path).model.state_dict()
    except CheckpointError as exc:
        raise InitCheckpointError(f'model.transfer_weights: {exc}') from exc
    copied = load_matching_weights(model, source)
    if not copied:
        raise InitCheckpointError(f'{path}: model.transfer_weights holds no tensor of the '
                                  "network's names and shapes (another variant?)")
    if not any(key.startswith('decoder.upsample.') for key in copied):
        model.decoder.init_upsampling_as_nearest()
    return copied


def load_init_checkpoint(model: Pix2VoxPP, path: str | Path) -> dict[str, Any]:
    """Copy a (stage-1) checkpoint's weights into ``model``.

    Variant, refiner and resolution must match; a merger missing from the file (stage 1 has
    none) keeps what it had (its fresh initialisation, or ``model.transfer_weights``).

    :returns: the checkpoint's extra entries (its training record).
    :raises InitCheckpointError: missing or unreadable file, or another architecture.
    """
    path = Path(path)
    try:
        loaded = read_checkpoint(path)
    except CheckpointError as exc:
        raise InitCheckpointError(str(exc)) from exc
    theirs, ours = loaded.model.config, model.config
    if (theirs.variant, theirs.use_refiner, theirs.resolution) != (
            ours.variant, ours.use_refiner, ours.resolution):
        def describe(config: ModelConfig) -> str:
            refiner = 'with' if config.use_refiner else 'without'
            grid = '' if config.resolution == 32 else f' at {config.resolution}³'
            return f'Pix2Vox++/{config.variant}{grid} {refiner} refiner'

        raise InitCheckpointError(f'{path}: holds {describe(theirs)}, but the configuration '
                                  f'trains {describe(ours)}; use a stage-1 checkpoint of the '
                                  'same architecture')
    state = loaded.model.state_dict()
    result = model.load_state_dict(state, strict=False)
    wrong = [k for k in result.missing_keys if not k.startswith('merger.')]
    if wrong or result.unexpected_keys:
        key = (wrong or result.unexpected_keys)[0]
        raise InitCheckpointError(f'{path}: key {key!r} does not fit the stage-2 network')
    return loaded.extra


def use_channels_last_3d(mode: str, device: torch.device) -> bool:
    """Resolve the ``channels_last_3d`` option: ``auto`` means on the CPU only."""
    return mode == 'on' or (mode == 'auto' and device.type == 'cpu')


def apply_memory_format(model: Pix2VoxPP, *, channels_last_3d: bool) -> None:
    """Store the 3D modules' conv weights channels-last (outputs follow the weights' format).

    On the CPU this removes oneDNN's very slow first backward pass and speeds up the merger by
    about 1.5×; values are unchanged.
    """
    if not channels_last_3d:
        return
    for name in ('decoder', 'merger', 'refiner'):
        module = getattr(model, name)
        if module is None:
            continue
        for sub in module.modules():
            if isinstance(sub, (nn.Conv3d, nn.ConvTranspose3d)):
                sub.weight.data = sub.weight.data.contiguous(
                    memory_format=torch.channels_last_3d)


def create_model(config: TrainConfig, stage: int, *, device: torch.device,
                 init: str | Path | None = None) -> Pix2VoxPP:
    """Build the network of a stage, initialised as the paper and from ``init`` if given.

    ``model.transfer_weights`` (when set) is applied first, ``init`` over it; stage 1 without
    either loads ``model.backbone_weights`` when set; stage 2 requires ``init``.

    :raises InitCheckpointError: stage 2 without ``init``, or an ``init`` of another
        architecture, or unreadable backbone weights.
    :raises TrainingConfigError: a ``trainable`` name that is not a module of the network.
    """
    torch.manual_seed(config.seed)
    model = build_model(stage_model_config(config, stage))
    if stage == 2 and init is None:
        raise InitCheckpointError('stage 2 starts from a stage-1 checkpoint: pass --init '
                                  'RUN/checkpoints/best.pth of stage 1')
    if config.model.transfer_weights:
        transfer_weights(model, config.model.transfer_weights)
    if init is not None:
        load_init_checkpoint(model, init)
    elif config.model.backbone_weights and not config.model.transfer_weights:
        load_backbone(model, config.model.backbone_weights)
    freeze_for_stage(model, stage, config.stage(stage).trainable)
    apply_memory_format(model, channels_last_3d=use_channels_last_3d(config.channels_last_3d,
                                                                     device))
    return model.to(device)


def freeze_for_stage(model: Pix2VoxPP, stage: int, trainable: Sequence[str] = ()) -> None:
    """Stop gradients of encoder and decoder in stage 2, or of all but ``trainable``.

    :param trainable: dotted module names (``decoder.upsample``); empty: the stage's default.
        BatchNorm is handled by :func:`set_train_mode`.
    :raises TrainingConfigError: a name that is not a module of this network.
    """
    if trainable:
        chosen = []
        for name in trainable:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                module = None
            if module is None or next(module.parameters(), None) is None:
                raise TrainingConfigError(
                    f'trainable: {name!r} is not a module with parameters in this network '
                    f'(its modules: {", ".join(n for n, _ in model.named_children())})')
            chosen.append(module)
        model.requires_grad_(False)
        for module in chosen:
            module.requires_grad_(True)
        return
    for name in FROZEN_IN_STAGE2:
        for parameter in getattr(model, name).parameters():
            parameter.requires_grad_(stage != 2)


def set_train_mode(model: Pix2VoxPP, stage: int) -> None:
    """Put the model in training mode, except frozen parts' BatchNorm.

    Stage 2 keeps encoder and decoder in eval mode, and a BatchNorm whose parameters are all
    frozen (``trainable``) stays in eval mode too, so it uses and keeps its running statistics.
    """
    model.train()
    if stage == 2:
        for name in FROZEN_IN_STAGE2:
            getattr(model, name).eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()


def param_groups(model: Pix2VoxPP, stage_cfg: StageSection) -> list[dict[str, Any]]:
    """One Adam parameter group per module that has trainable parameters, with its lr."""
    groups = []
    for name in MODULES:
        module = getattr(model, name)
        if module is None:
            continue
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            groups.append({'params': params, 'lr': getattr(stage_cfg.lr, name), 'name': name})
    return groups


def make_optimizer(model: Pix2VoxPP, stage_cfg: StageSection) -> torch.optim.Adam:
    """Build Adam over the trainable modules.

    One group per module is the same maths as the released code's one optimizer per module
    (Adam is per-parameter).
    """
    groups = param_groups(model, stage_cfg)
    if not groups:
        raise ValueError('nothing to train: every parameter is frozen')
    return torch.optim.Adam(groups, betas=tuple(stage_cfg.betas))


def make_scheduler(optimizer: torch.optim.Optimizer, stage_cfg: StageSection
                   ) -> torch.optim.lr_scheduler.MultiStepLR:
    """Build a MultiStepLR stepped once per epoch."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(stage_cfg.milestones),
                                                gamma=stage_cfg.gamma)


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """Return the scheduler's state with its ``Counter`` as a plain dict.

    The result is ``weights_only`` safe.
    """
    state = dict(scheduler.state_dict())
    if 'milestones' in state:
        state['milestones'] = {int(k): int(v) for k, v in state['milestones'].items()}
    return state


def load_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler,
                         state: dict[str, Any]) -> None:
    """Inverse of :func:`scheduler_state`."""
    state = dict(state)
    if 'milestones' in state:
        state['milestones'] = Counter({int(k): int(v) for k, v in state['milestones'].items()})
    scheduler.load_state_dict(state)


def reconstruction_loss(recon: Reconstruction, target: torch.Tensor, *, weight: float = 10.0
                        ) -> torch.Tensor:
    """``weight·BCE(fused, gt) + weight·BCE(refined, gt)`` (the second term with a refiner only).

    Computed in float32: BCE is not autocast-safe in half precision.
    """
    target = target.float()
    loss = weight * F.binary_cross_entropy(recon.fused.float(), target)
    if recon.refined is not None:
        loss = loss + weight * F.binary_cross_entropy(recon.refined.float(), target)
    return loss


def sample_losses(recon: Reconstruction, target: torch.Tensor, *, weight: float = 10.0
                  ) -> torch.Tensor:
    """Return the loss of :func:`reconstruction_loss` for each sample of a batch, ``(B,)``."""
    target = target.float()
    losses = F.binary_cross_entropy(recon.fused.float(), target, reduction='none')
    if recon.refined is not None:
        losses = losses + F.binary_cross_entropy(recon.refined.float(), target, reduction='none')
    return weight * losses.flatten(1).mean(1)


class ReconstructionModule(nn.Module):
    """Expose :meth:`Pix2VoxPP.reconstruct` as ``forward``.

    This way DistributedDataParallel's hooks see the pass that training needs (all volumes,
    not only the final one).
    """

    def __init__(self, network: Pix2VoxPP) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> Reconstruction:
        """Return the :class:`Reconstruction` of ``images (B, V, 3, 224, 224)``."""
        return self.network.reconstruct(images)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on CUDA, bf16 autocast on the CPU; a no-op in fp32.

    fp16 on the CPU stays fp32 (no fast fp16 kernels there); bf16 on a CPU with native bf16
    (avx512_bf16, AMX) runs oneDNN's bf16 convolutions.
    """
    if precision == 'fp32' or (device.type != 'cuda' and precision != 'bf16'):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[precision])


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Return a GradScaler, enabled only for fp16 on CUDA."""
    return torch.amp.GradScaler('cuda' if device.type == 'cuda' else 'cpu',
                                enabled=device.type == 'cuda' and precision == 'fp16')


def train_step(module: nn.Module, batch: dict[str, Any], optimizer: torch.optim.Optimizer, *,
               device: torch.device, precision: str = 'fp32',
               scaler: torch.amp.GradScaler | None = None, loss_weight: float = 10.0
               ) -> float:
    """One optimizer step on a batch; returns the loss before the step.

    :param module: a :class:`ReconstructionModule`, possibly wrapped in DDP.
    :param batch: from the training loader: ``images (B, V, 3, 224, 224)``, ``volume``.
    """
    images = batch['images'].to(device, non_blocking=True)
    target = batch['volume'].to(device, non_blocking=True)
    with autocast(device, precision):
        recon = module(images)
    loss = reconstruction_loss(recon, target, weight=loss_weight)
    if not loss.requires_grad:
        # One view bypasses the merger: in /F stage 2 nothing trainable saw this batch (every
        # rank draws the same view count, so all ranks skip together).
        return float(loss)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return float(loss.detach())


@dataclass(frozen=True)
class EvalResult:
    """Per-sample IoUs of a split, gathered from all ranks and in dataset order.

    :ivar ious: ``(N, T)`` IoU per sample and threshold.
    :ivar taxonomy_ids: ``N`` categories.
    :ivar loss: mean loss per sample.
    """

    ious: np.ndarray
    taxonomy_ids: list[str]
    loss: float


def iterate_predictions(model: Pix2VoxPP, loader: Any, *, device: torch.device,
                        precision: str = 'fp32'
                        ) -> Iterator[tuple[dict[str, Any], Reconstruction]]:
    """Run ``model`` in eval mode over a loader, yielding each batch with its reconstruction."""
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            images = batch['images'].to(device, non_blocking=True)
            with autocast(device, precision):
                recon = model.reconstruct(images)
            yield batch, Reconstruction(*(None if v is None else v.float() for v in recon))


def evaluate(model: Pix2VoxPP, loader: Any, *, context: DistContext,
             thresholds: tuple[float, ...], precision: str = 'fp32', loss_weight: float = 10.0,
             progress: Any = None) -> EvalResult:
    """Compute the IoU of every sample of this rank's share, gathered over ranks.

    :param loader: from :func:`pix2voxpp_training.data.make_eval_loader`.
    :param progress: optional callable wrapping the loader (e.g. a tqdm factory).
    """
    rows: list[tuple[int, str, np.ndarray, float]] = []
    batches = progress(loader) if progress is not None else loader
    for batch, recon in iterate_predictions(model, batches, device=context.device,
                                            precision=precision):
        target = batch['volume'].to(context.device).float()
        ious = iou_per_threshold(recon.occupancy, target, thresholds)
        losses = sample_losses(recon, target, weight=loss_weight).tolist()
        for i, index in enumerate(batch['index'].tolist()):
            rows.append((index, batch['taxonomy_id'][i], ious[i], losses[i]))
    merged = sorted((row for part in gather_objects(context, rows) for row in part),
                    key=lambda row: row[0])
    if not merged:
        return EvalResult(np.zeros((0, len(thresholds))), [], float('nan'))
    return EvalResult(np.stack([row[2] for row in merged]), [row[1] for row in merged],
                      float(np.mean([row[3] for row in merged])))


def reconstruct_view_prefixes(model: Pix2VoxPP, images: torch.Tensor, counts: list[int], *,
                              fusions: tuple[str, ...] = ('model',)
                              ) -> dict[int, torch.Tensor] | dict[str, dict[int, torch.Tensor]]:
    """Occupancy from the first ``n`` views for every ``n`` in ``counts``, encoding once.

    Encoder and decoder treat views independently (eval mode), so the per-view volumes of the
    largest count serve every smaller one; fusion then follows :meth:`Pix2VoxPP.reconstruct`
    (one view: the coarse volume; no merger: the mean). A test checks the two agree.

    :param images: ``(B, V, 3, 224, 224)`` with ``V >= max(counts)``.
    :param fusions: ``'model'`` (the network's own: its merger, or the mean without one) and/or
        ``'average'`` (the plain mean of the views, to compare the merger against); with one
        fusion the result is ``{n: volume}``, with several ``{fusion: {n: volume}}``.
    :returns: ``{n: (B, R, R, R)}`` (or one such dict per fusion).
    """
    batch, views = images.shape[:2]
    if not counts or max(counts) > views or min(counts) < 1:
        raise ValueError(f'view counts {counts} do not fit {views} views')
    unknown = set(fusions) - {'model', 'average'}
    if not fusions or unknown:
        raise ValueError(f"fusions must be 'model' and/or 'average', got {fusions}")
    features = model.encoder(images.flatten(0, 1))  # (B*V, C, 7, 7)
    coarse, context = model.decoder(features)  # (B*V, R, R, R), (B*V, 9, F, F, F)
    coarse = coarse.unflatten(0, (batch, views))  # (B, V, R, R, R)
    context = context.unflatten(0, (batch, views))  # (B, V, 9, F, F, F)
    results: dict[str, dict[int, torch.Tensor]] = {}
    for fusion in fusions:
        out: dict[int, torch.Tensor] = {}
        for n in counts:
            if n == 1:
                fused = coarse[:, 0]
            elif model.merger is not None and fusion == 'model':
                fused = model.merger(coarse[:, :n], context[:, :n])
            else:
                fused = coarse[:, :n].mean(dim=1)
            out[n] = model.refiner(fused) if model.refiner is not None else fused
        results[fusion] = out
    return results[fusions[0]] if len(fusions) == 1 else results
