"""``pix2voxpp-train``: one training stage, from a YAML config, resumable, on CPU, GPU or torchrun.

A run folder holds ``checkpoints/last.pth`` (every epoch, with optimizer, scheduler and RNG state
for an exact resume), ``checkpoints/best.pth`` (best validation IoU), ``tensorboard/stage<N>/``,
``history_stage<N>.jsonl`` (one line per epoch) and ``config_stage<N>.yaml`` (the resolved
configuration). Both checkpoints are project checkpoints that
``pix2voxpp_ros.core.checkpoint.read_checkpoint`` loads.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pix2voxpp_ros.core.checkpoint import (CheckpointError, WeightsMetadata, read_checkpoint,
                                           save_checkpoint)
from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.model import Pix2VoxPP

from . import distributed
from .config import TrainConfig, apply_overrides, load_config, parse_override
from .data import (ShapeNetDataError, ShapeNetViews, list_objects, make_eval_loader,
                   make_train_loader)
from .distributed import DistContext
from .engine import (ReconstructionModule, create_model, load_scheduler_state, make_optimizer,
                     make_scaler, make_scheduler, scheduler_state, set_train_mode, train_step)
from .engine import evaluate as evaluate_split
from .metrics import IoUSummary, summarize_iou
from .transforms import TestTransform, TrainTransform

LAST = 'last.pth'
BEST = 'best.pth'


class TrainingError(Pix2VoxError, RuntimeError):
    """A run cannot start or continue (bad arguments, missing resume state, ...)."""


@dataclass
class RunResult:
    """What a finished stage leaves behind.

    :ivar model: the trained network (this rank's copy).
    :ivar run_dir: the run folder.
    :ivar best_iou: best validation IoU (max over thresholds); ``nan`` without validation.
    :ivar best_threshold: its threshold.
    :ivar history: one record per epoch of this stage.
    """

    model: Pix2VoxPP
    run_dir: Path
    best_iou: float
    best_threshold: float
    history: list[dict[str, Any]] = field(default_factory=list)


def _rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as plain values (``weights_only`` loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        'python': random.getstate(),
        'numpy': [str(kind), [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss_value = state['numpy']
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss_value))
    torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _summary_dict(summary: IoUSummary, names: dict[str, str]) -> dict[str, Any]:
    return {
        'thresholds': list(summary.thresholds),
        'iou': [float(v) for v in summary.overall],
        'best_iou': summary.best_iou,
        'best_threshold': summary.best_threshold,
        'per_category': {names.get(k, k): [float(v) for v in values]
                         for k, values in summary.per_category.items()},
        'counts': {names.get(k, k): n for k, n in summary.counts.items()},
    }


def _fmt_lr(lrs: dict[str, float]) -> str:
    return ' '.join(f'{name[:3]} {lr:.1e}' for name, lr in lrs.items())


def train(config: TrainConfig, *, data: str | Path, out: str | Path, stage: int,
          init: str | Path | None = None, resume: bool = False, device: str = 'auto',
          progress: bool = True) -> RunResult:
    """Run (or resume) one training stage.

    :param config: the full configuration (with overrides applied).
    :param data: dataset folder in the ShapeNet / 3D-R2N2 layout.
    :param out: run folder; ``checkpoints/last.pth`` there makes ``resume`` continue it.
    :param stage: 1 or 2.
    :param init: stage-1 checkpoint to start stage 2 from (ignored when resuming).
    :param resume: continue from ``out/checkpoints/last.pth``.
    :param device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (under torchrun: the local GPU).
    :param progress: show tqdm bars (rank 0 only).
    :raises TrainingError: bad stage, batch size, or resume state.
    :raises ShapeNetDataError: incomplete dataset (the message names the file).
    :raises InitCheckpointError: stage 2 without, or with a mismatching, ``--init``.
    """
    context = distributed.setup(device)
    try:
        return _train(config, data=Path(data), out=Path(out), stage=stage, init=init,
                      resume=resume, context=context, progress=progress)
    finally:
        distributed.cleanup(context)


@dataclass
class _Data:
    """The splits of one stage and their loaders."""

    train_records: list
    val_records: list
    names: dict[str, str]  # taxonomy id -> category name
    loader: Any
    batches: Any  # the loader's batch sampler (set_epoch, len)
    val_loader: Any


@dataclass
class _Trainer:
    """The network of one stage and what updates it."""

    model: Pix2VoxPP
    module: torch.nn.Module  # ReconstructionModule, wrapped in DDP under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any


@dataclass
class _Progress:
    """Where the stage stands: the next epoch, the best validation so far and the history."""

    start_epoch: int = 0
    best: dict[str, Any] = field(
        default_factory=lambda: {'iou': float('nan'), 'threshold': 0.3, 'epoch': 0})
    history: list[dict[str, Any]] = field(default_factory=list)


def _train(config: TrainConfig, *, data: Path, out: Path, stage: int, init: str | Path | None,
           resume: bool, context: DistContext, progress: bool) -> RunResult:
    local_batch = _check_stage(config, stage, context)
    stage_cfg = config.stage(stage)
    _set_determinism(config, context.device)
    _seed_everything(config.seed)
    last_path = out / 'checkpoints' / LAST
    training_state = _resume_state(last_path, stage) if resume else _refuse_old_run(last_path)
    splits = _load_data(config, data, stage, local_batch, context)
    # Resuming rebuilds the network from last.pth itself (same architecture, merger included).
    trainer = _build_trainer(config, stage, context, init=last_path if resume else init)
    run = _Progress() if training_state is None else _restore(trainer, training_state)
    writer = _open_run(config, out, stage, splits, context, run.start_epoch) \
        if context.is_main else None
    provenance_base = {
        'source': 'pix2voxpp_training', 'config': config.name, 'stage': stage,
        'dataset': str(data.resolve()),
        'categories': sorted(set(splits.names.values())),
        'objects': {'train': len(splits.train_records), 'val': len(splits.val_records)},
        'val_views': stage_cfg.val_views,
    }
    global_step = run.start_epoch * len(splits.batches)
    for epoch in range(run.start_epoch, stage_cfg.epochs):
        start = time.perf_counter()
        record, global_step = _train_epoch(config, stage, epoch, trainer, splits, context,
                                           writer=writer, global_step=global_step,
                                           progress=progress)
        validation, improved = _validate_epoch(config, stage, epoch, trainer.model, splits,
                                               context, record, run)
        record['seconds'] = time.perf_counter() - start
        run.history.append(record)
        if context.is_main:
            _log_epoch(writer, record, validation, epoch + 1)
            _save_epoch(config, out, stage, epoch, trainer, run, record, validation,
                        improved=improved, init=init, provenance_base=provenance_base)
        distributed.barrier(context)
    if writer is not None:
        writer.close()
    return RunResult(trainer.model, out, float(run.best['iou']), float(run.best['threshold']),
                     run.history)


def _check_stage(config: TrainConfig, stage: int, context: DistContext) -> int:
    """Check the stage and its batch size; return the batch size of one process."""
    if stage not in (1, 2):
        raise TrainingError(f'--stage must be 1 or 2, got {stage}')
    stage_cfg = config.stage(stage)
    if stage_cfg.batch_size % context.world_size:
        raise TrainingError(f'stage{stage}.batch_size {stage_cfg.batch_size} is not divisible '
                            f'by the {context.world_size} processes')
    return stage_cfg.batch_size // context.world_size


def _set_determinism(config: TrainConfig, device: torch.device) -> None:
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True


def _resume_state(last_path: Path, stage: int) -> dict[str, Any]:
    """Read the training state of the run to continue from its last checkpoint."""
    if not last_path.is_file():
        raise TrainingError(f'{last_path}: nothing to resume (no last checkpoint)')
    try:
        training_state = read_checkpoint(last_path).extra.get('training')
    except CheckpointError as exc:
        raise TrainingError(f'cannot resume: {exc}') from exc
    if not isinstance(training_state, dict) or 'optimizer' not in training_state:
        raise TrainingError(f'{last_path}: has no training state to resume from')
    if training_state.get('stage') != stage:
        raise TrainingError(f'{last_path}: is a stage-{training_state.get("stage")} run, '
                            f'but --stage is {stage}')
    return training_state


def _refuse_old_run(last_path: Path) -> None:
    """Refuse to start a new run in a folder that already holds one."""
    if last_path.exists():
        raise TrainingError(f'{last_path}: the run folder already holds a run; pass --resume to '
                            'continue it or choose another --out')


def _load_data(config: TrainConfig, data: Path, stage: int, local_batch: int,
               context: DistContext) -> _Data:
    """List the train and val objects and build their loaders (this process's share)."""
    stage_cfg = config.stage(stage)
    train_records = list_objects(data, 'train', config.data)
    val_records = list_objects(data, 'val', config.data)
    if not train_records:
        raise ShapeNetDataError(f'{data / config.data.taxonomy}: the train split has no objects '
                                '(of the selected categories)')
    names = {r.taxonomy_id: r.taxonomy_name or r.taxonomy_id
             for r in train_records + val_records}
    train_set = ShapeNetViews(train_records, train=True, transform=TrainTransform(config.augment),
                              seed=config.seed, views_per_model=config.data.views_per_model,
                              resolution=config.model.resolution)
    val_set = ShapeNetViews(val_records, train=False, transform=TestTransform(config.augment),
                            seed=config.seed, views_per_model=config.data.views_per_model,
                            resolution=config.model.resolution)
    pin = context.device.type == 'cuda'
    loader, batches = make_train_loader(
        train_set, batch_size=local_batch, min_views=stage_cfg.min_views,
        max_views=stage_cfg.max_views, seed=config.seed, workers=config.data.workers,
        rank=context.rank, world_size=context.world_size, pin_memory=pin)
    val_loader = make_eval_loader(val_set, views=stage_cfg.val_views, batch_size=local_batch,
                                  workers=config.data.workers, rank=context.rank,
                                  world_size=context.world_size, pin_memory=pin)
    return _Data(train_records, val_records, names, loader, batches, val_loader)


def _build_trainer(config: TrainConfig, stage: int, context: DistContext, *,
                   init: str | Path | None) -> _Trainer:
    """Build the network (from ``init`` if given), its DDP wrapper, optimizer and scheduler."""
    stage_cfg = config.stage(stage)
    device = context.device
    model = create_model(config, stage, device=device, init=init)
    module: torch.nn.Module = ReconstructionModule(model)
    if context.distributed:
        # One view skips the merger; DDP must then tolerate parameters without gradients.
        module = DistributedDataParallel(
            module, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=stage == 2 and stage_cfg.min_views == 1)
    optimizer = make_optimizer(model, stage_cfg)
    scheduler = make_scheduler(optimizer, stage_cfg)
    scaler = make_scaler(device, config.precision)
    return _Trainer(model, module, optimizer, scheduler, scaler)


def _restore(trainer: _Trainer, training_state: dict[str, Any]) -> _Progress:
    """Load the optimizer, scheduler, scaler and RNG states of a resumed run."""
    trainer.optimizer.load_state_dict(training_state['optimizer'])
    load_scheduler_state(trainer.scheduler, training_state['scheduler'])
    trainer.scaler.load_state_dict(training_state['scaler'])
    run = _Progress(int(training_state['epoch']), dict(training_state['best']),
                    list(training_state.get('history', [])))
    _set_rng_state(training_state['rng'])
    return run


def _open_run(config: TrainConfig, out: Path, stage: int, splits: _Data, context: DistContext,
              start_epoch: int) -> Any:
    """Rank 0: create the run folder, write the configuration, print the stage's line.

    :returns: the TensorBoard writer.
    """
    from torch.utils.tensorboard import SummaryWriter

    stage_cfg = config.stage(stage)
    (out / 'checkpoints').mkdir(parents=True, exist_ok=True)
    (out / f'config_stage{stage}.yaml').write_text(
        yaml.safe_dump(config.to_dict(), sort_keys=False))
    writer = SummaryWriter(str(out / 'tensorboard' / f'stage{stage}'))
    views = (f'{stage_cfg.min_views}-{stage_cfg.max_views}'
             if stage_cfg.min_views != stage_cfg.max_views else str(stage_cfg.max_views))
    print(f'stage {stage}: Pix2Vox++/{config.model.variant} at {config.model.resolution}³ '
          f'{"with" if config.model.use_refiner else "without"} refiner, '
          f'{len(splits.train_records)} train / {len(splits.val_records)} val objects, '
          f'{views} views, batch {stage_cfg.batch_size} on {context.world_size} x '
          f'{context.device}, epochs {start_epoch + 1}..{stage_cfg.epochs}', flush=True)
    if not splits.val_records:
        print('warning: the val split is empty; best.pth follows last.pth', flush=True)
    return writer


def _train_epoch(config: TrainConfig, stage: int, epoch: int, trainer: _Trainer, splits: _Data,
                 context: DistContext, *, writer: Any, global_step: int,
                 progress: bool) -> tuple[dict[str, Any], int]:
    """Train one epoch and step the scheduler.

    :returns: the epoch's record (loss over all processes, speed, learning rates) and the
        global step after it.
    """
    stage_cfg = config.stage(stage)
    device = context.device
    splits.batches.set_epoch(epoch)
    set_train_mode(trainer.model, stage)
    start = time.perf_counter()
    loss_sum, samples = 0.0, 0
    bar = tqdm(splits.loader, desc=f'stage {stage} epoch {epoch + 1}/{stage_cfg.epochs}',
               disable=not (context.is_main and progress), leave=False, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    for batch in bar:
        loss = train_step(trainer.module, batch, trainer.optimizer, device=device,
                          precision=config.precision, scaler=trainer.scaler,
                          loss_weight=config.loss_weight)
        count = int(batch['images'].shape[0])
        loss_sum += loss * count
        samples += count
        global_step += 1
        bar.set_postfix(loss=f'{loss:.4f}', views=int(batch['images'].shape[1]))
        if writer is not None:
            writer.add_scalar('train/loss_step', loss, global_step)
    bar.close()
    totals = distributed.all_reduce_sum(
        context, torch.tensor([loss_sum, float(samples)], dtype=torch.float64,
                              device=device)).tolist()
    train_seconds = time.perf_counter() - start
    lrs = {group['name']: float(group['lr']) for group in trainer.optimizer.param_groups}
    trainer.scheduler.step()
    record = {'epoch': epoch + 1, 'train_loss': totals[0] / max(totals[1], 1.0),
              'samples_per_s': totals[1] / max(train_seconds, 1e-9), 'lr': lrs,
              'train_seconds': train_seconds}
    return record, global_step


def _validate_epoch(config: TrainConfig, stage: int, epoch: int, model: Pix2VoxPP,
                    splits: _Data, context: DistContext, record: dict[str, Any],
                    run: _Progress) -> tuple[dict[str, Any] | None, bool]:
    """Validate when this epoch is due to; add the result to ``record`` and ``run.best``.

    :returns: the validation summary (None when not validated) and whether best.pth is to be
        written: an improved IoU, or every epoch when there is no val split.
    """
    stage_cfg = config.stage(stage)
    last_epoch = epoch + 1 == stage_cfg.epochs
    if splits.val_records and ((epoch + 1) % stage_cfg.val_every == 0 or last_epoch):
        distributed.broadcast_buffers(context, model)
        result = evaluate_split(model, splits.val_loader, context=context,
                                thresholds=config.thresholds, precision=config.precision,
                                loss_weight=config.loss_weight)
        summary = summarize_iou(result.ious, result.taxonomy_ids, config.thresholds)
        record.update(val_loss=result.loss, val_iou=summary.best_iou,
                      val_threshold=summary.best_threshold)
        improved = not run.best['iou'] >= summary.best_iou  # also true while best is nan
        if improved:
            run.best = {'iou': summary.best_iou, 'threshold': summary.best_threshold,
                        'epoch': epoch + 1}
        return _summary_dict(summary, splits.names), improved
    if not splits.val_records:
        run.best = {'iou': float('nan'), 'threshold': run.best['threshold'], 'epoch': epoch + 1}
        return None, True
    return None, False


def _save_epoch(config: TrainConfig, out: Path, stage: int, epoch: int, trainer: _Trainer,
                run: _Progress, record: dict[str, Any], validation: dict[str, Any] | None, *,
                improved: bool, init: str | Path | None, provenance_base: dict[str, Any]
                ) -> None:
    """Rank 0: write last.pth (and best.pth when improved), the history line and the log line."""
    best = run.best
    metadata = WeightsMetadata(
        resolution=config.model.resolution,
        background=config.augment.test_background / 255.0, threshold=best['threshold'],
        provenance={**provenance_base, 'epoch': best['epoch'], 'val_iou': best['iou']})
    state = {
        'stage': stage, 'epoch': epoch + 1, 'config': config.to_dict(),
        'best': best, 'history': run.history, 'validation': validation,
        'init': None if init is None else str(init),
    }
    checkpoints = out / 'checkpoints'
    if improved:
        save_checkpoint(checkpoints / BEST, trainer.model, metadata=metadata,
                        extra={'training': state})
    save_checkpoint(checkpoints / LAST, trainer.model, metadata=metadata, extra={'training': {
        **state, 'optimizer': trainer.optimizer.state_dict(),
        'scheduler': scheduler_state(trainer.scheduler), 'scaler': trainer.scaler.state_dict(),
        'rng': _rng_state()}})
    with (out / f'history_stage{stage}.jsonl').open('a') as log:
        log.write(json.dumps(record) + '\n')
    val_text = ''
    if 'val_iou' in record:
        val_text = (f' | val IoU {record["val_iou"]:.4f} @{record["val_threshold"]:g} '
                    f'loss {record["val_loss"]:.4f} (best {best["iou"]:.4f} '
                    f'ep {best["epoch"]})')
    print(f'stage {stage} epoch {epoch + 1}/{config.stage(stage).epochs} | loss '
          f'{record["train_loss"]:.4f} | lr {_fmt_lr(record["lr"])}{val_text} | '
          f'{record["samples_per_s"]:.1f} samples/s | {record["seconds"]:.1f} s', flush=True)


def _log_epoch(writer: Any, record: dict[str, Any], validation: dict[str, Any] | None,
               epoch: int) -> None:
    writer.add_scalar('train/loss', record['train_loss'], epoch)
    writer.add_scalar('train/samples_per_s', record['samples_per_s'], epoch)
    for name, lr in record['lr'].items():
        writer.add_scalar(f'lr/{name}', lr, epoch)
    if validation is not None:
        writer.add_scalar('val/loss', record['val_loss'], epoch)
        writer.add_scalar('val/iou', validation['best_iou'], epoch)
        writer.add_scalar('val/threshold', validation['best_threshold'], epoch)
        for threshold, value in zip(validation['thresholds'], validation['iou']):
            writer.add_scalar(f'val_iou_threshold/{threshold:g}', value, epoch)
        best_index = validation['thresholds'].index(validation['best_threshold'])
        for name, values in validation['per_category'].items():
            writer.add_scalar(f'val_iou_category/{name}', values[best_index], epoch)
    writer.flush()


def build_parser() -> argparse.ArgumentParser:
    """Build the ``pix2voxpp-train`` command line."""
    parser = argparse.ArgumentParser(
        prog='pix2voxpp-train',
        description='Train one stage of Pix2Vox++ (stage 1: single view, no merger; stage 2: '
                    'multi-view, merger on, encoder and decoder frozen). Under torchrun every '
                    'process trains on its share of each batch.')
    parser.add_argument('--config', type=Path,
                        help='YAML configuration (optional with --resume: the run keeps its own)')
    parser.add_argument('--data', type=Path, required=True,
                        help='dataset folder: ShapeNet.json, ShapeNetRendering, ShapeNetVox32')
    parser.add_argument('--out', type=Path, required=True, help='run folder')
    parser.add_argument('--stage', type=int, choices=(1, 2), required=True)
    parser.add_argument('--init', type=Path, help='stage-1 checkpoint to start stage 2 from')
    parser.add_argument('--epochs', type=int, help="override the stage's epochs")
    parser.add_argument('--batch-size', type=int, help="override the stage's batch size "
                        '(over all processes)')
    parser.add_argument('--max-objects', type=int, help='cap on the objects of each split')
    parser.add_argument('--workers', type=int, help='DataLoader workers per process')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--resume', action='store_true',
                        help='continue the run in --out from checkpoints/last.pth')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE', help='override any config value, e.g. '
                        'stage2.lr.merger=1e-4 (repeatable)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Resolve the configuration: file (or the resumed run's), then the overrides.

    :raises TrainingConfigError: unreadable file, bad override or invalid value.
    :raises TrainingError: neither ``--config`` nor a run to resume.
    """
    overrides: dict[str, Any] = dict(parse_override(text) for text in args.overrides)
    stage_key = f'stage{args.stage}'
    if args.epochs is not None:
        overrides[f'{stage_key}.epochs'] = args.epochs
    if args.batch_size is not None:
        overrides[f'{stage_key}.batch_size'] = args.batch_size
    if args.max_objects is not None:
        overrides['data.max_objects'] = args.max_objects
    if args.workers is not None:
        overrides['data.workers'] = args.workers
    if args.resume:
        last = args.out / 'checkpoints' / LAST
        try:
            saved = read_checkpoint(last).extra.get('training', {}).get('config')
        except CheckpointError as exc:
            raise TrainingError(f'cannot resume: {exc}') from exc
        if not isinstance(saved, dict):
            raise TrainingError(f'{last}: holds no training configuration')
        config = TrainConfig.from_dict(apply_overrides(saved, overrides))
        if args.config is not None:
            given = load_config(args.config, overrides)
            if given != config:
                print(f'note: resuming with the configuration saved in {last}; '
                      f'{args.config} differs and is ignored', file=sys.stderr)
        return config
    if args.config is None:
        raise TrainingError('--config is required (except with --resume)')
    return load_config(args.config, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pix2voxpp-train``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.stage == 2 and args.init is None and not args.resume:
            raise TrainingError("stage 2 needs --init CKPT (stage 1's checkpoints/best.pth)")
        if args.init is not None and not args.init.is_file():
            raise TrainingError(f'{args.init}: --init checkpoint not found')
        config = config_from_args(args)
        train(config, data=args.data, out=args.out, stage=args.stage, init=args.init,
              resume=args.resume, device=args.device, progress=not args.no_progress)
    except (Pix2VoxError, ValueError) as exc:
        print(f'pix2voxpp-train: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('pix2voxpp-train: interrupted; continue with --resume', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
