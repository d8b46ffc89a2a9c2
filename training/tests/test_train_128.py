"""Training at 128³ on tiny data: the car config, 32³ weights transferred, exact resume, eval.

Seven synthetic cars built for 128³ (5 train, 1 val, 1 test), batches of two: a 128³ training
step takes one to three seconds on these CPUs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pix2voxpp_ros.core.checkpoint import read_checkpoint, save_checkpoint
from pix2voxpp_ros.core.model import ModelConfig, build_model
from pix2voxpp_ros.core.synthetic import write_dataset
from pix2voxpp_training import evaluate, train
from pix2voxpp_training.config import TrainingConfigError, load_config
from pix2voxpp_training.data import ShapeNetDataError, ShapeNetViews, list_objects
from pix2voxpp_training.engine import InitCheckpointError, create_model
from pix2voxpp_training.transforms import TestTransform

from training_helpers import CONFIGS

SMALL_128 = {
    'data.workers': 0, 'precision': 'fp32',
    'stage1.batch_size': 2, 'stage1.epochs': 2, 'stage1.val_every': 1,
    'stage2.batch_size': 2, 'stage2.epochs': 1, 'stage2.min_views': 2, 'stage2.max_views': 3,
    'stage2.val_views': 2,
}


@pytest.fixture(scope='module')
def cars128(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write seven cars at 128³ (24 views each, as pix2voxpp-eval reads them)."""
    root = tmp_path_factory.mktemp('cars128')
    write_dataset(root, per_category=7, seed=3, categories=['car'], resolution=128,
                  progress=False, workers=2)
    return root


@pytest.fixture(scope='module')
def weights32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a seeded 32³ /F with a merger, as the demo weights are."""
    torch.manual_seed(7)
    path = tmp_path_factory.mktemp('w32') / 'f32.pth'
    save_checkpoint(path, build_model(ModelConfig()))
    return path


def _config(weights32: Path, **overrides):
    values = {**SMALL_128, 'model.transfer_weights': str(weights32)}
    values.update({key.replace('__', '.'): value for key, value in overrides.items()})
    return load_config(CONFIGS / 'synthetic_car128_f.yaml', values)


def test_the_car_config_and_its_checks() -> None:
    config = load_config(CONFIGS / 'synthetic_car128_f.yaml')
    assert (config.model.resolution, config.model.fusion_resolution) == (128, 32)
    assert config.data.voxels == 'ShapeNetVox128' and config.data.categories == ('car',)
    assert (CONFIGS.parents[1] / config.model.transfer_weights).is_file()  # from the repo root
    for overrides, message in (({'model.resolution': 64}, 'model.resolution: must be 32 or 128'),
                               ({'model.fusion_resolution': 64}, 'model.fusion_resolution'),
                               ({'model.use_refiner': True}, 'model.use_refiner: the refiner')):
        with pytest.raises(TrainingConfigError, match=message):
            load_config(CONFIGS / 'synthetic_car128_f.yaml', overrides)


def test_the_loader_reads_128_grids(cars128: Path, weights32: Path) -> None:
    config = _config(weights32)
    records = list_objects(cars128, 'train', config.data)
    sample = ShapeNetViews(records, train=False, transform=TestTransform(config.augment),
                           resolution=128)[0]
    assert sample['volume'].shape == (128, 128, 128) and sample['images'].shape == (1, 3, 224, 224)
    with pytest.raises(ShapeNetDataError, match=r'model\.binvox: expected a 32³ grid, got '
                                                r'\(128, 128, 128\)'):
        ShapeNetViews(records, train=False, transform=TestTransform(config.augment))[0]


def test_32_weights_start_the_128_network(weights32: Path, tmp_path: Path) -> None:
    source = read_checkpoint(weights32).model.state_dict()
    model = create_model(_config(weights32), 1, device=torch.device('cpu'))
    assert model.config.resolution == 128 and model.merger is None
    own = model.state_dict()
    assert all(torch.equal(own[key], value) for key, value in source.items() if key in own)
    kernel = model.decoder.upsample[0][0].weight.detach()  # nearest upsampling, per channel
    assert float(kernel[0, 0, 1:3, 1:3, 1:3].min()) == 1.0 and float(kernel.sum()) == 8 * 8
    stage1 = tmp_path / 's1.pth'
    save_checkpoint(stage1, model)
    stage2 = create_model(_config(weights32), 2, device=torch.device('cpu'), init=stage1)
    merger = {k: v for k, v in source.items() if k.startswith('merger.')}
    assert merger and all(torch.equal(stage2.state_dict()[k], v) for k, v in merger.items())
    plain = load_config(CONFIGS / 'synthetic_f.yaml', {'data.workers': 0})
    with pytest.raises(InitCheckpointError, match=r'holds Pix2Vox\+\+/F at 128³ without '
                                                  r'refiner, but the configuration trains '
                                                  r'Pix2Vox\+\+/F without refiner'):
        create_model(plain, 2, device=torch.device('cpu'), init=stage1)


def test_128_run_resumes_exactly_and_evaluates(cars128: Path, weights32: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    config = _config(weights32)
    whole = tmp_path / 'whole'
    train.train(config, data=cars128, out=whole, stage=1, device='cpu', progress=False)
    parts = tmp_path / 'parts'
    train.train(_config(weights32, stage1__epochs=1), data=cars128, out=parts, stage=1,
                device='cpu', progress=False)
    train.train(config, data=cars128, out=parts, stage=1, resume=True, device='cpu',
                progress=False)
    expected = read_checkpoint(whole / 'checkpoints' / 'last.pth')
    resumed = read_checkpoint(parts / 'checkpoints' / 'last.pth').model.state_dict()
    assert expected.model.config.resolution == expected.metadata.resolution == 128
    for key, value in expected.model.state_dict().items():
        assert torch.equal(value, resumed[key]), key

    stage2 = tmp_path / 'stage2'
    train.train(config, data=cars128, out=stage2, stage=2, device='cpu', progress=False,
                init=whole / 'checkpoints' / 'best.pth')
    report_path = tmp_path / 'eval.json'
    assert evaluate.main(['--weights', str(stage2 / 'checkpoints' / 'best.pth'), '--data',
                          str(cars128), '--views', '1', '2', '--json', str(report_path),
                          '--compare-upsampled', str(weights32), '--workers', '0',
                          '--device', 'cpu', '--no-progress']) == 0
    report = json.loads(report_path.read_text())
    assert report['objects'] == 1 and report['views'] == [1, 2] and report['merger']
    assert 0.0 <= report['results'][1]['iou']['best'] <= 1.0
    assert report['upsampled']['weights'] == str(weights32)
    assert report['upsampled']['objects'] == 1 and report['upsampled']['merger']
    compared = report['upsampled_comparison']
    assert [row['views'] for row in compared] == [1, 2]
    for row, ours, theirs in zip(compared, report['results'], report['upsampled']['results']):
        assert row['network_iou'] == ours['iou']['best']
        assert row['upsampled_iou'] == theirs['iou']['best']
        assert row['fscore_difference'] == pytest.approx(
            ours['fscore']['overall'] - theirs['fscore']['overall'])
        assert row['ci95'][0] <= row['difference'] <= row['ci95'][1]
    best = str(stage2 / 'checkpoints' / 'best.pth')
    assert evaluate.main(['--weights', best, '--data', str(cars128), '--views', '1',
                          '--compare-upsampled', best, '--device', 'cpu', '--no-progress']) == 2
    assert 'a 128³ network cannot be upsampled to the 128³ grid' in capsys.readouterr().err


def test_trainable_parts_train_alone_and_frozen_batchnorm_keeps_its_statistics(
        cars128: Path, weights32: Path, tmp_path: Path) -> None:
    """``stage1.trainable``: only the 128³ upsampling and layer5 change; a bad name is refused."""
    parts = ['decoder.upsample', 'decoder.layer5']
    config = _config(weights32, stage1__epochs=1, stage1__trainable=parts)
    start = create_model(config, 1, device=torch.device('cpu')).state_dict()
    train.train(config, data=cars128, out=tmp_path / 'tail', stage=1, device='cpu',
                progress=False)
    trained = read_checkpoint(tmp_path / 'tail' / 'checkpoints' / 'last.pth').model.state_dict()
    changed = {key for key, value in start.items() if not torch.equal(value, trained[key])}
    assert changed and all(key.startswith(tuple(f'{p}.' for p in parts)) for key in changed)
    # The upsampling blocks' BatchNorm trains: its running statistics moved.
    assert any('running_mean' in key for key in changed)
    assert any(key.startswith('encoder.') and 'running_mean' in key for key in start)

    for bad, message in ((['decoder.upsampl'], r"trainable: 'decoder\.upsampl' is not a module"),
                         (['merger'], r"trainable: 'merger' is not a module")):  # off in stage 1
        with pytest.raises(TrainingConfigError, match=message):
            create_model(_config(weights32, stage1__trainable=bad), 1,
                         device=torch.device('cpu'))
    for bad in (['decoder', 'decoder'], ['head.layer']):
        with pytest.raises(TrainingConfigError, match=r'stage1\.trainable: must be distinct '
                                                      r'modules'):
            _config(weights32, stage1__trainable=bad)
