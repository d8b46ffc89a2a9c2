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


def _train(config: TrainConfig, *, data: Path, out: Path, stage: int, init: str | Path | None,
           resume: bool, context: DistContext, progress: bool) -> RunResult:
    if stage not in (1, 2):
        raise TrainingError(f'--stage must be 1 or 2, got {stage}')
    stage_cfg = config.stage(stage)
    if stage_cfg.batch_size % context.world_size:
        raise TrainingError(f'stage{stage}.batch_size {stage_cfg.batch_size} is not divisible '
                            f'by the {context.world_size} processes')
    local_batch = stage_cfg.batch_size // context.world_size
    is_main = context.is_main
    device = context.device
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    _seed_everything(config.seed)

    checkpoints = out / 'checkpoints'
    last_path = checkpoints / LAST
    training_state: dict[str, Any] | None = None
    if resume:
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
    elif last_path.exists():
        raise TrainingError(f'{last_path}: the run folder already holds a run; pass --resume to '
                            'continue it or choose another --out')

    train_records = list_objects(data, 'train', config.data)
    val_records = list_objects(data, 'val', config.data)
    if not train_records:
        raise ShapeNetDataError(f'{data / config.data.taxonomy}: the train split has no objects '
                                '(of the selected categories)')
    names = {r.taxonomy_id: r.taxonomy_name or r.taxonomy_id
             for r in train_records + val_records}
    train_set = ShapeNetViews(train_records, train=True, transform=TrainTransform(config.augment),
                              seed=config.seed, views_per_model=config.data.views_per_model)
    val_set = ShapeNetViews(val_records, train=False, transform=TestTransform(config.augment),
                            seed=config.seed, views_per_model=config.data.views_per_model)
    pin = device.type == 'cuda'
    loader, batches = make_train_loader(
        train_set, batch_size=local_batch, min_views=stage_cfg.min_views,
        max_views=stage_cfg.max_views, seed=config.seed, workers=config.data.workers,
        rank=context.rank, world_size=context.world_size, pin_memory=pin)
    val_loader = make_eval_loader(val_set, views=stage_cfg.val_views, batch_size=local_batch,
                                  workers=config.data.workers, rank=context.rank,
                                  world_size=context.world_size, pin_memory=pin)

    # Resuming rebuilds the network from last.pth itself (same architecture, merger included).
    model = create_model(config, stage, device=device, init=last_path if resume else init)
    module: torch.nn.Module = ReconstructionModule(model)
    if context.distributed:
        # One view skips the merger; DDP must then tolerate parameters without gradients.
        module = DistributedDataParallel(
            module, device_ids=[device.index] if device.type == 'cuda' else None,
            find_unused_parameters=stage == 2 and stage_cfg.min_views == 1)
    optimizer = make_optimizer(model, stage_cfg)
    scheduler = make_scheduler(optimizer, stage_cfg)
    scaler = make_scaler(device, config.precision)

    start_epoch = 0
    best: dict[str, Any] = {'iou': float('nan'), 'threshold': 0.3, 'epoch': 0}
    history: list[dict[str, Any]] = []
    if training_state is not None:
        optimizer.load_state_dict(training_state['optimizer'])
        load_scheduler_state(scheduler, training_state['scheduler'])
        scaler.load_state_dict(training_state['scaler'])
        start_epoch = int(training_state['epoch'])
        best = dict(training_state['best'])
        history = list(training_state.get('history', []))
        _set_rng_state(training_state['rng'])

    writer = None
    if is_main:
        from torch.utils.tensorboard import SummaryWriter

        checkpoints.mkdir(parents=True, exist_ok=True)
        (out / f'config_stage{stage}.yaml').write_text(
            yaml.safe_dump(config.to_dict(), sort_keys=False))
        writer = SummaryWriter(str(out / 'tensorboard' / f'stage{stage}'))
        views = (f'{stage_cfg.min_views}-{stage_cfg.max_views}'
                 if stage_cfg.min_views != stage_cfg.max_views else str(stage_cfg.max_views))
        print(f'stage {stage}: Pix2Vox++/{config.model.variant} '
              f'{"with" if config.model.use_refiner else "without"} refiner, '
              f'{len(train_records)} train / {len(val_records)} val objects, '
              f'{views} views, batch {stage_cfg.batch_size} on {context.world_size} x {device}, '
              f'epochs {start_epoch + 1}..{stage_cfg.epochs}', flush=True)
        if not val_records:
            print('warning: the val split is empty; best.pth follows last.pth', flush=True)
    interactive = sys.stderr.isatty()
    provenance_base = {
        'source': 'pix2voxpp_training', 'config': config.name, 'stage': stage,
        'dataset': str(data.resolve()),
        'categories': sorted(set(names.values())),
        'objects': {'train': len(train_records), 'val': len(val_records)},
        'val_views': stage_cfg.val_views,
    }
    global_step = start_epoch * len(batches)
    for epoch in range(start_epoch, stage_cfg.epochs):
        batches.set_epoch(epoch)
        set_train_mode(model, stage)
        start = time.perf_counter()
        loss_sum, samples = 0.0, 0
        bar = tqdm(loader, desc=f'stage {stage} epoch {epoch + 1}/{stage_cfg.epochs}',
                   disable=not (is_main and progress), leave=False, dynamic_ncols=True,
                   mininterval=0.5 if interactive else 30.0)
        for batch in bar:
            loss = train_step(module, batch, optimizer, device=device,
                              precision=config.precision, scaler=scaler,
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
        train_loss = totals[0] / max(totals[1], 1.0)
        samples_per_s = totals[1] / max(train_seconds, 1e-9)
        lrs = {group['name']: float(group['lr']) for group in optimizer.param_groups}
        scheduler.step()

        record: dict[str, Any] = {'epoch': epoch + 1, 'train_loss': train_loss,
                                  'samples_per_s': samples_per_s, 'lr': lrs,
                                  'train_seconds': train_seconds}
        validation: dict[str, Any] | None = None
        improved = False
        last_epoch = epoch + 1 == stage_cfg.epochs
        if val_records and ((epoch + 1) % stage_cfg.val_every == 0 or last_epoch):
            distributed.broadcast_buffers(context, model)
            result = evaluate_split(model, val_loader, context=context,
                                    thresholds=config.thresholds, precision=config.precision,
                                    loss_weight=config.loss_weight)
            summary = summarize_iou(result.ious, result.taxonomy_ids, config.thresholds)
            validation = _summary_dict(summary, names)
            record.update(val_loss=result.loss, val_iou=summary.best_iou,
                          val_threshold=summary.best_threshold)
            improved = not best['iou'] >= summary.best_iou  # also true while best is nan
            if improved:
                best = {'iou': summary.best_iou, 'threshold': summary.best_threshold,
                        'epoch': epoch + 1}
        elif not val_records:
            improved = True
            best = {'iou': float('nan'), 'threshold': best['threshold'], 'epoch': epoch + 1}
        record['seconds'] = time.perf_counter() - start
        history.append(record)

        if is_main:
            _log_epoch(writer, record, validation, epoch + 1)
            metadata = WeightsMetadata(
                background=config.augment.test_background / 255.0, threshold=best['threshold'],
                provenance={**provenance_base, 'epoch': best['epoch'], 'val_iou': best['iou']})
            state = {
                'stage': stage, 'epoch': epoch + 1, 'config': config.to_dict(),
                'best': best, 'history': history, 'validation': validation,
                'init': None if init is None else str(init),
            }
            if improved:
                save_checkpoint(checkpoints / BEST, model, metadata=metadata,
                                extra={'training': state})
            save_checkpoint(last_path, model, metadata=metadata, extra={'training': {
                **state, 'optimizer': optimizer.state_dict(),
                'scheduler': scheduler_state(scheduler), 'scaler': scaler.state_dict(),
                'rng': _rng_state()}})
            with (out / f'history_stage{stage}.jsonl').open('a') as log:
                log.write(json.dumps(record) + '\n')
            val_text = ''
            if 'val_iou' in record:
                val_text = (f' | val IoU {record["val_iou"]:.4f} @{record["val_threshold"]:g} '
                            f'loss {record["val_loss"]:.4f} (best {best["iou"]:.4f} '
                            f'ep {best["epoch"]})')
            print(f'stage {stage} epoch {epoch + 1}/{stage_cfg.epochs} | loss {train_loss:.4f} '
                  f'| lr {_fmt_lr(lrs)}{val_text} | {samples_per_s:.1f} samples/s | '
                  f'{record["seconds"]:.1f} s', flush=True)
        distributed.barrier(context)
    if writer is not None:
        writer.close()
    return RunResult(model, out, float(best['iou']), float(best['threshold']), history)


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
