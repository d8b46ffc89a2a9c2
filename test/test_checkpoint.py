"""Checkpoint loading: the authors' release format, the project format and every error case."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.checkpoint import (CheckpointError, WeightsMetadata, load_checkpoint,
                                           read_checkpoint, save_checkpoint)

from model_helpers import make_model


def _release_dict(model, *, prefix: str = 'module.') -> dict:
    """Build what the authors' training script saves (DataParallel modules, numpy best_iou)."""
    payload = {
        'epoch_idx': 249,
        'best_iou': np.max(np.array([0.61, 0.668, 0.65])),  # np.float64, as their np.max gives
        'best_epoch': 212,
    }
    for name in ('encoder', 'decoder', 'merger', 'refiner'):
        module = getattr(model, name)
        if module is not None:
            payload[f'{name}_state_dict'] = {prefix + k: v for k, v in
                                             module.state_dict().items()}
    return payload


def _views(views: int = 2) -> torch.Tensor:
    return torch.rand(1, views, 3, 224, 224, generator=torch.Generator().manual_seed(5)) * 2 - 1


@pytest.mark.parametrize(('variant', 'prefix'), [('F', 'module.'), ('F', ''), ('A', 'module.')])
def test_release_checkpoint_reproduces_its_modules(tmp_path, variant, prefix) -> None:
    source = make_model(variant, seed=3)
    path = tmp_path / f'Pix2Vox++-{variant}-ShapeNet.pth'
    torch.save(_release_dict(source, prefix=prefix), path)

    loaded = read_checkpoint(path)
    assert loaded.format == 'release'
    assert loaded.model.config.variant == variant
    assert (loaded.model.refiner is not None) == (variant == 'A')
    assert not loaded.model.training
    assert loaded.metadata.channel_order == 'BGR'
    assert loaded.metadata.provenance['best_iou'] == pytest.approx(0.668)
    assert isinstance(loaded.metadata.provenance['best_iou'], float)
    images = _views()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(images), source(images), atol=0, rtol=0)


@pytest.mark.parametrize('pickled_as', ['numpy.core.multiarray', 'numpy._core.multiarray'])
def test_release_scalar_loads_under_both_numpy_names(tmp_path, pickled_as: str) -> None:
    """Both names of the numpy scalar (numpy 1: numpy.core, numpy 2: numpy._core) load."""
    path = tmp_path / 'release.pth'
    torch.save(_release_dict(make_model('F')), path)
    rewritten = tmp_path / 'release_renamed.pth'
    names = (b'numpy._core.multiarray', b'numpy.core.multiarray')
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(rewritten, 'w') as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith('data.pkl'):
                assert any(name in data for name in names)  # what this numpy wrote
                for name in names:
                    data = data.replace(name, pickled_as.encode())
            dst.writestr(item, data)
    loaded = read_checkpoint(rewritten)
    assert loaded.model.config.variant == 'F'
    assert loaded.metadata.provenance['best_iou'] == pytest.approx(0.668)


def test_project_checkpoint_round_trip(tmp_path) -> None:
    source = make_model('F', seed=4, use_merger=False)
    metadata = WeightsMetadata(channel_order='RGB', threshold=0.4,
                               provenance={'dataset': 'synthetic', 'val_iou': 0.71})
    path = tmp_path / 'project.pth'
    save_checkpoint(path, source, metadata=metadata, extra={'epoch': 7})
    loaded = read_checkpoint(path)
    assert loaded.format == 'project'
    assert loaded.model.config == source.config
    assert loaded.metadata == metadata
    assert loaded.extra == {'epoch': 7}
    images = _views(3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(images), source(images), atol=0, rtol=0)


def test_half_precision_export_loads_close(tmp_path) -> None:
    source = make_model('F', seed=6)
    path = tmp_path / 'half.pth'
    save_checkpoint(path, source, half=True)
    raw = torch.load(path, weights_only=True)
    assert raw['state_dict']['decoder.layer1.0.weight'].dtype == torch.float16
    model = load_checkpoint(path)
    assert model.decoder.layer1[0].weight.dtype == torch.float32
    images = _views()
    with torch.no_grad():
        torch.testing.assert_close(model(images), source(images), atol=2e-2, rtol=0)


def test_missing_file(tmp_path) -> None:
    path = tmp_path / 'nothing.pth'
    with pytest.raises(CheckpointError, match=f'{path}: checkpoint file not found'):
        load_checkpoint(path)


def test_truncated_file(tmp_path) -> None:
    path = tmp_path / 'cut.pth'
    save_checkpoint(path, make_model('F'))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=f'{path}: not a readable PyTorch checkpoint'):
        load_checkpoint(path)


def test_foreign_file(tmp_path) -> None:
    path = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(1), 'fc.bias': torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match=r"not a Pix2Vox\+\+ checkpoint.*'conv1.weight'"):
        load_checkpoint(path)
    path.write_bytes(b'hello, not a checkpoint at all\n' * 10)
    with pytest.raises(CheckpointError, match='not a readable PyTorch checkpoint'):
        load_checkpoint(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match='expected a dict checkpoint, found list'):
        load_checkpoint(path)


def test_shape_mismatch_names_the_key(tmp_path) -> None:
    payload = _release_dict(make_model('F'))
    payload['decoder_state_dict']['module.layer2.0.weight'] = torch.zeros(128, 64, 3, 3, 3)
    path = tmp_path / 'bad_shape.pth'
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch at 'decoder.layer2.0.weight'"):
        load_checkpoint(path)


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    payload = _release_dict(make_model('F'))
    del payload['merger_state_dict']['module.layer3.0.bias']
    path = tmp_path / 'missing.pth'
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing key 'merger.layer3.0.bias'"):
        load_checkpoint(path)
    payload = _release_dict(make_model('F'))
    payload['decoder_state_dict']['module.layer9.weight'] = torch.zeros(1)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"unexpected key 'decoder.layer9.weight'"):
        load_checkpoint(path)


class _RunsCode:
    """An object whose unpickling would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_code_carrying_file_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    payload = _release_dict(make_model('F'))
    payload['hook'] = _RunsCode(marker)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match='refused to load, the file is not plain weights'):
        load_checkpoint(path)
    assert not marker.exists()


def test_project_version_from_the_future(tmp_path) -> None:
    path = tmp_path / 'future.pth'
    save_checkpoint(path, make_model('F'))
    raw = torch.load(path, weights_only=True)
    raw['format_version'] = 99
    buffer = io.BytesIO()
    torch.save(raw, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError, match='version 99 is not supported'):
        load_checkpoint(path)
