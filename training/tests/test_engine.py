"""The stages' mechanics: loss goes down, stage 2 freezes what it must, init checks, fusion."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from pix2voxpp_ros.core.checkpoint import save_checkpoint
from pix2voxpp_ros.core.model import build_model
from pix2voxpp_training.config import TrainConfig
from pix2voxpp_training.data import (SampleKey, ShapeNetViews, collate, list_objects)
from pix2voxpp_training.engine import (InitCheckpointError, ReconstructionModule, autocast,
                                       create_model, load_scheduler_state, make_optimizer,
                                       make_scheduler,
                                       reconstruct_view_prefixes, reconstruction_loss,
                                       scheduler_state, set_train_mode, train_step)
from pix2voxpp_training.transforms import TrainTransform

from training_helpers import small_config


def _batch(config: TrainConfig, data: Path, views: int, size: int = 4) -> dict:
    records = list_objects(data, 'train', config.data)
    dataset = ShapeNetViews(records, train=True, transform=TrainTransform(config.augment),
                            seed=config.seed)
    return collate([dataset[SampleKey(i, views, 0)] for i in range(size)])


def _loss(model: torch.nn.Module, batch: dict, stage: int) -> float:
    set_train_mode(model, stage)  # batch statistics, as during the step
    with torch.no_grad():
        return float(reconstruction_loss(model.reconstruct(batch['images']), batch['volume']))


def _stage1_checkpoint(config: TrainConfig, path: Path, device: torch.device) -> Path:
    model = create_model(config, 1, device=device)
    save_checkpoint(path, model)
    return path


def test_stage1_step_lowers_the_loss(tiny_data: Path, device: torch.device) -> None:
    config = small_config()
    model = create_model(config, 1, device=device)
    assert model.merger is None
    batch = _batch(config, tiny_data, views=1)
    optimizer = make_optimizer(model, config.stage1)
    assert [g['name'] for g in optimizer.param_groups] == ['encoder', 'decoder']
    before = _loss(model, batch, 1)
    set_train_mode(model, 1)
    step_loss = train_step(ReconstructionModule(model), batch, optimizer, device=device)
    assert step_loss == pytest.approx(before, rel=1e-4)
    assert _loss(model, batch, 1) < before


def test_bf16_step_runs_in_bf16_and_lowers_the_loss(tiny_data: Path,
                                                    device: torch.device) -> None:
    config = small_config()
    model = create_model(config, 1, device=device)
    batch = _batch(config, tiny_data, views=1)
    dtypes = []
    hook = model.encoder.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    with autocast(device, 'bf16'):  # on the CPU too: oneDNN's bf16 kernels
        model.reconstruct(batch['images'].to(device))
    assert dtypes == [torch.bfloat16]
    hook.remove()
    before = _loss(model, batch, 1)
    optimizer = make_optimizer(model, config.stage1)
    set_train_mode(model, 1)
    step_loss = train_step(ReconstructionModule(model), batch, optimizer, device=device,
                           precision='bf16')
    assert step_loss == pytest.approx(before, rel=0.05)  # bf16 forward, fp32 loss
    assert _loss(model, batch, 1) < before
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights


def test_stage2_step_trains_only_the_merger(tiny_data: Path, tmp_path: Path,
                                            device: torch.device) -> None:
    config = small_config()
    init = _stage1_checkpoint(config, tmp_path / 'stage1.pth', device)
    model = create_model(config, 2, device=device, init=init)
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.startswith(('encoder.', 'decoder.'))}
    assert any('running_mean' in k for k in frozen)
    merger = {k: v.clone() for k, v in model.merger.state_dict().items()}
    optimizer = make_optimizer(model, config.stage2)
    assert [g['name'] for g in optimizer.param_groups] == ['merger']
    assert not any(p.requires_grad for p in model.encoder.parameters())
    batch = _batch(config, tiny_data, views=3)
    before = _loss(model, batch, 2)
    set_train_mode(model, 2)
    assert not model.encoder.training and not model.decoder.training and model.merger.training
    for _ in range(2):
        train_step(ReconstructionModule(model), batch, optimizer, device=device)
    after = model.state_dict()
    for key, value in frozen.items():
        assert torch.equal(after[key], value), key  # weights and BatchNorm statistics
    changed = [k for k, v in model.merger.state_dict().items() if not torch.equal(v, merger[k])]
    assert any(k.endswith('.weight') for k in changed)
    assert any(k.endswith('running_mean') for k in changed)
    assert _loss(model, batch, 2) < before
    # One view bypasses the merger: the step trains nothing and must not fail.
    merger = {k: v.clone() for k, v in model.merger.state_dict().items()}
    set_train_mode(model, 2)
    train_step(ReconstructionModule(model), _batch(config, tiny_data, views=1, size=2),
               optimizer, device=device)
    assert all(torch.equal(v, merger[k]) for k, v in model.merger.state_dict().items())


def test_stage2_refuses_another_architecture(tmp_path: Path, device: torch.device) -> None:
    config = small_config()
    other = build_model(variant='F', use_refiner=True, use_merger=False)
    save_checkpoint(tmp_path / 'refiner.pth', other)
    with pytest.raises(InitCheckpointError, match='with refiner, but the configuration trains '
                                                  'Pix2Vox\\+\\+/F without refiner'):
        create_model(config, 2, device=device, init=tmp_path / 'refiner.pth')
    with pytest.raises(InitCheckpointError, match='missing.pth'):
        create_model(config, 2, device=device, init=tmp_path / 'missing.pth')
    with pytest.raises(InitCheckpointError, match='--init'):
        create_model(config, 2, device=device)


def test_view_prefixes_match_reconstruct(device: torch.device) -> None:
    torch.manual_seed(0)
    images = torch.randn(2, 4, 3, 224, 224)
    for merger in (True, False):
        model = build_model(use_merger=merger).eval()
        with torch.no_grad():
            prefixes = reconstruct_view_prefixes(model, images, [1, 2, 4])
            for n, occupancy in prefixes.items():
                torch.testing.assert_close(occupancy, model(images[:, :n]),
                                           atol=1e-5, rtol=1e-5)


def test_scheduler_state_survives_weights_only_load() -> None:
    config = small_config()
    model = build_model(use_merger=False)
    optimizer = make_optimizer(model, config.stage1)
    scheduler = make_scheduler(optimizer, config.stage1)
    optimizer.step()  # no gradients: a no-op that keeps the scheduler from warning
    # Just past the configuration's first milestone, so the learning rate has been cut once.
    epochs = config.stage1.milestones[0] + 1
    for _ in range(epochs):
        scheduler.step()
    buffer = io.BytesIO()
    torch.save({'scheduler': scheduler_state(scheduler)}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)['scheduler']
    fresh = make_scheduler(make_optimizer(model, config.stage1), config.stage1)
    load_scheduler_state(fresh, state)
    assert fresh.last_epoch == epochs and fresh.get_last_lr() == scheduler.get_last_lr()
    expected = config.stage1.lr.encoder * config.stage1.gamma
    assert scheduler.get_last_lr()[0] == pytest.approx(expected)
