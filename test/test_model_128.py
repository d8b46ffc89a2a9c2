"""The 128³ variant: configuration, decoder and fusion at both grids, checkpoints, inference.

A 128³ forward pass takes about a second a view on these CPUs, and fusing three views at 128³
half a minute, so the fusion maths is checked on small grids where it is the same code, and
end-to-end passes use one or two views with fusion at 32³.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pix2voxpp_ros.core.checkpoint import (CheckpointError, WeightsMetadata, read_checkpoint,
                                           save_checkpoint)
from pix2voxpp_ros.core.inference import Reconstructor
from pix2voxpp_ros.core.model import ModelConfig, build_model, load_matching_weights
from pix2voxpp_ros.core.model.merger import Merger
from pix2voxpp_ros.core.voxels import upsample_grid

from model_helpers import make_model

F128 = {'resolution': 128}


def _images(views: int, *, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, views, 3, 224, 224, generator=generator) * 2 - 1


@pytest.fixture(scope='module')
def model128():
    """Build a seeded /F-128 (fusion at 32³) in eval mode with non-default BatchNorm statistics."""
    return make_model('F', seed=4, **F128)


def test_config_checks_and_keeps_32_files_as_they_were() -> None:
    assert ModelConfig().to_dict() == {'variant': 'F', 'use_refiner': False, 'use_merger': True,
                                       'leaky_slope': 0.2}  # no new keys in 32³ checkpoints
    config = ModelConfig(resolution=128, fusion_resolution=128)
    assert config.to_dict()['resolution'] == 128
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig(resolution=128).to_dict()['resolution'] == 128
    assert 'fusion_resolution' not in ModelConfig(resolution=128).to_dict()  # 32: the default
    for bad, message in (({'resolution': 64}, 'resolution must be 32 or 128'),
                         ({'resolution': True}, 'resolution must be 32 or 128'),
                         ({'resolution': '128'}, 'resolution must be 32 or 128'),
                         ({'fusion_resolution': 128}, r'fusion_resolution must be 32 or the '
                                                      r'resolution \(32\)'),
                         ({'resolution': 128, 'fusion_resolution': 64}, 'fusion_resolution'),
                         ({'resolution': 128, 'use_refiner': True},
                          'the refiner exists at 32³ only')):
        with pytest.raises(ValueError, match=message):
            ModelConfig(**bad)


def test_the_128_network_holds_every_32_tensor_with_its_shape() -> None:
    """All 32³ weights initialise the 128³ network; only two 8 -> 8 blocks are new."""
    small = build_model(ModelConfig()).state_dict()
    large = build_model(ModelConfig(**F128)).state_dict()
    assert all(large[key].shape == value.shape for key, value in small.items())
    new = sorted(set(large) - set(small))
    assert new and all(key.startswith('decoder.upsample.') for key in new)
    added = sum(large[key].numel() for key in new if not key.endswith('num_batches_tracked')
                and not key.endswith(('running_mean', 'running_var')))
    assert added == 2 * (8 * 8 * 4 ** 3 + 2 * 8)  # two ConvTranspose3d k4 + BatchNorm affine


def test_32_weights_and_nearest_upsampling_start_at_the_32_output_repeated() -> None:
    small = make_model('F', seed=6)
    large = build_model(ModelConfig(**F128)).eval()
    copied = load_matching_weights(large, {k: v.half() for k, v in small.state_dict().items()})
    assert copied == sorted(small.state_dict())  # all of them, from a float16 file too
    large.decoder.init_upsampling_as_nearest()
    images = _images(1, seed=3)
    with torch.no_grad():
        expected = upsample_grid(small.half().float()(images)[0].numpy(), 4)
        got = large(images)[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize('fusion', [32, 128])
def test_decoder_gives_the_128_volume_and_the_context_on_the_fusion_grid(fusion) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(resolution=128, fusion_resolution=fusion)).eval()
    features = torch.randn(2, 64, 7, 7)
    with torch.no_grad():
        coarse, context = model.decoder(features)
        alone, none = model.decoder(features, with_context=False)
        hidden = model.decoder.layer4(model.decoder.layer3(model.decoder.layer2(
            model.decoder.layer1(features.reshape(-1, 392, 2, 2, 2)))))
    assert coarse.shape == (2, 128, 128, 128) and none is None
    assert torch.equal(alone, coarse)
    assert float(coarse.min()) >= 0.0 and float(coarse.max()) <= 1.0
    assert context.shape == (2, 9) + (fusion,) * 3
    if fusion == 32:  # the 32³ hidden layer and the coarse volume's occupied fraction per cell
        assert torch.equal(context[:, :8], hidden)
        torch.testing.assert_close(context[:, 8], coarse.reshape(2, 32, 4, 32, 4, 32, 4)
                                   .mean(dim=(2, 4, 6)), atol=1e-6, rtol=0)
    else:
        assert torch.equal(context[:, 8], coarse)


def test_merger_upsamples_coarse_scores_before_the_softmax() -> None:
    """Scores of a coarse grid weigh the fine volumes trilinearly upsampled (small grids)."""
    torch.manual_seed(2)
    merger = Merger(ModelConfig()).eval()
    coarse = torch.rand(2, 3, 16, 16, 16)  # (B, V, R, R, R)
    context = torch.randn(2, 3, 9, 4, 4, 4)  # (B, V, 9, F, F, F) at a quarter of R
    with torch.no_grad():
        fused = merger(coarse, context)
        scores = merger.scores(context.flatten(0, 1))  # (B*V, 4, 4, 4)
        fine = F.interpolate(scores[:, None], size=(16, 16, 16), mode='trilinear',
                             align_corners=False)[:, 0].unflatten(0, (2, 3))
        expected = (coarse * torch.softmax(fine, dim=1)).sum(dim=1).clamp(0, 1)
    assert fused.shape == (2, 16, 16, 16)
    torch.testing.assert_close(fused, expected, atol=1e-6, rtol=0)
    lo, hi = coarse.min(dim=1).values, coarse.max(dim=1).values
    assert bool((fused >= lo - 1e-6).all()) and bool((fused <= hi + 1e-6).all())
    with torch.no_grad():  # one view: its weight is exactly 1 at every fine voxel
        assert torch.equal(merger(coarse[:, :1], context[:, :1]), coarse[:, 0])
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):  # as precision bf16 runs
        half = merger(coarse, context)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, expected, atol=0.05, rtol=0)


def test_forward_128_from_one_and_two_views(model128) -> None:
    images = _images(2)
    with torch.no_grad():
        one = model128.reconstruct(images[:, :1])
        two = model128.reconstruct(images)
        features = model128.encoder(images.flatten(0, 1))
        coarse, context = model128.decoder(features)
        by_hand = model128.merger(coarse[None], context[None])
    assert one.fused.shape == two.fused.shape == (1, 128, 128, 128) and one.refined is None
    assert torch.equal(one.fused, one.coarse[:, 0])
    torch.testing.assert_close(two.fused, by_hand, atol=1e-6, rtol=0)
    assert float(two.fused.min()) >= 0.0 and float(two.fused.max()) <= 1.0


def test_128_checkpoint_round_trips(tmp_path: Path, model128) -> None:
    path = tmp_path / 'f128.pth'
    save_checkpoint(path, model128, metadata=WeightsMetadata(threshold=0.4))
    raw = torch.load(path, weights_only=True)
    assert raw['model_config']['resolution'] == 128 and raw['metadata']['resolution'] == 128
    loaded = read_checkpoint(path)
    assert loaded.model.config == model128.config and loaded.metadata.threshold == 0.4
    assert loaded.metadata.resolution == 128
    for key, value in model128.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    images = _images(1)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), model128(images))
    save_checkpoint(tmp_path / 'half.pth', model128, half=True)
    assert read_checkpoint(tmp_path / 'half.pth').model.config.resolution == 128


def test_128_checkpoint_with_fusion_at_128_round_trips(tmp_path: Path) -> None:
    model = make_model('F', seed=5, resolution=128, fusion_resolution=128)
    save_checkpoint(tmp_path / 'full.pth', model)
    loaded = read_checkpoint(tmp_path / 'full.pth').model
    assert loaded.config.fusion_resolution == 128
    features = torch.randn(1, 64, 7, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for ours, theirs in zip(loaded.decoder(features), model.decoder(features)):
            assert torch.equal(ours, theirs)


def test_32_checkpoints_name_no_resolution(tmp_path: Path) -> None:
    """A 32³ file stays what older readers of this package accept."""
    save_checkpoint(tmp_path / 'f32.pth', make_model('F'))
    raw = torch.load(tmp_path / 'f32.pth', weights_only=True)
    assert set(raw['model_config']) == {'variant', 'use_refiner', 'use_merger', 'leaky_slope'}
    assert raw['metadata']['resolution'] == 32


def _edited(path: Path, source: Path, *, config: dict | None = None,
            metadata: dict | None = None) -> Path:
    raw = torch.load(source, weights_only=True)
    raw['model_config'].update(config or {})
    raw['metadata'].update(metadata or {})
    torch.save(raw, path)
    return path


def test_a_resolution_the_weights_do_not_fit_is_refused(tmp_path: Path, model128) -> None:
    save_checkpoint(tmp_path / 'f128.pth', model128)
    save_checkpoint(tmp_path / 'f32.pth', make_model('F'))
    cases = [
        (_edited(tmp_path / 'meta32.pth', tmp_path / 'f128.pth', metadata={'resolution': 32}),
         r'meta32\.pth: refused metadata: resolution 32 but the model configuration builds a '
         r'128³ network'),
        (_edited(tmp_path / 'cfg256.pth', tmp_path / 'f128.pth', config={'resolution': 256}),
         r'cfg256\.pth: malformed project checkpoint \(resolution must be 32 or 128'),
        (_edited(tmp_path / 'as32.pth', tmp_path / 'f128.pth', config={'resolution': 32},
                 metadata={'resolution': 32}),
         r"as32\.pth: unexpected key 'decoder\.upsample\.0\.0\.weight'"),
        (_edited(tmp_path / 'as128.pth', tmp_path / 'f32.pth', config={'resolution': 128},
                 metadata={'resolution': 128}),
         r"as128\.pth: missing key 'decoder\.upsample\.0\.0\.weight'"),
    ]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(path)
    with pytest.raises(ValueError, match='resolution 64: must be 32 or 128'):
        WeightsMetadata(resolution=64)
    with pytest.raises(ValueError, match=r'metadata resolution 128 does not match the 32³'):
        save_checkpoint(tmp_path / 'x.pth', make_model('F'),
                        metadata=WeightsMetadata(resolution=128))
    assert not (tmp_path / 'x.pth').exists()


def test_reconstructor_returns_128_grids(tmp_path: Path, model128) -> None:
    save_checkpoint(tmp_path / 'f128.pth', model128)
    reconstructor = Reconstructor(tmp_path / 'f128.pth', device='cpu', backend='torch',
                                  warmup_views=0)
    assert reconstructor.resolution == 128
    frames = list(np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), dtype=np.uint8))
    grid = reconstructor.reconstruct(frames, encodings='rgb8')
    assert grid.shape == (128, 128, 128) and grid.dtype == np.float32
    with torch.no_grad():
        assert np.array_equal(grid, model128(torch.from_numpy(np.stack(
            [reconstructor.preprocess(f, encoding='rgb8') for f in frames]))[None])[0].numpy())
