"""Exact small-tensor tests of the Pix2Vox++ network on the CPU (and CUDA where present)."""

from __future__ import annotations

import pytest
import torch

from pix2voxpp_ros.core.model import MAX_VIEWS, ModelConfig, build_model

from model_helpers import make_model


def _images(batch: int, views: int, *, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, views, 3, 224, 224, generator=generator) * 2 - 1


def _per_view_loop(model, images: torch.Tensor) -> torch.Tensor:
    """Run every view through encoder and decoder alone and fuse by hand (the reference)."""
    coarse, scores = [], []
    for v in range(images.shape[1]):
        volume, context = model.decoder(model.encoder(images[:, v]))
        coarse.append(volume)
        if model.merger is not None:
            scores.append(model.merger.scores(context))
    coarse_stack = torch.stack(coarse, dim=1)
    if model.merger is not None and images.shape[1] > 1:
        weights = torch.softmax(torch.stack(scores, dim=1), dim=1)
        fused = torch.clamp((coarse_stack * weights).sum(dim=1), 0, 1)
    else:
        fused = coarse_stack.mean(dim=1)
    return model.refiner(fused) if model.refiner is not None else fused


@pytest.mark.parametrize(('variant', 'params'), [('F', 4_843_245), ('A', 96_329_421)])
def test_parameter_counts_match_the_paper(variant: str, params: int) -> None:
    model = build_model(ModelConfig.for_variant(variant))
    assert sum(p.numel() for p in model.parameters()) == params
    assert (model.refiner is not None) == (variant == 'A')


@pytest.mark.parametrize(('variant', 'views'), [('F', 1), ('F', 2), ('F', 3), ('F', 8),
                                                ('F', MAX_VIEWS), ('A', 1), ('A', 3)])
def test_output_shape_and_range(variant: str, views: int) -> None:
    model = make_model(variant)
    with torch.no_grad():
        out = model(_images(1, views))
    assert out.shape == (1, 32, 32, 32)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_fusion_handles_every_view_count_from_1_to_24() -> None:
    """Decoder + merger are the view-dependent part; run them for V = 1..24 on cheap features."""
    model = make_model('F')
    features = torch.randn(MAX_VIEWS, 64, 7, 7)
    with torch.no_grad():
        coarse, context = model.decoder(features)
        for views in range(1, MAX_VIEWS + 1):
            fused = model.merger(coarse[None, :views], context[None, :views])
            assert fused.shape == (1, 32, 32, 32)
            lo, hi = coarse[:views].min(dim=0).values, coarse[:views].max(dim=0).values
            # A convex combination of the views lies between their minimum and maximum.
            assert bool((fused >= lo - 1e-6).all()) and bool((fused <= hi + 1e-6).all())


@pytest.mark.parametrize(('variant', 'use_merger', 'views'),
                         [('F', True, 3), ('F', False, 3), ('A', True, 2)])
def test_batched_forward_equals_per_view_loop(device, variant, use_merger, views) -> None:
    model = make_model(variant, use_merger=use_merger).to(device)
    images = _images(2, views).to(device)
    with torch.no_grad():
        batched = model(images)
        looped = _per_view_loop(model, images)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=0)


def test_one_view_skips_the_merger_exactly(device) -> None:
    model = make_model('F').to(device)
    images = _images(2, 1).to(device)
    with torch.no_grad():
        result = model.reconstruct(images)
        coarse, context = model.decoder(model.encoder(images[:, 0]))
        via_merger = model.merger(coarse[:, None], context[:, None])
    assert torch.equal(result.fused, via_merger)  # softmax over one view is exactly 1
    assert torch.equal(result.fused, coarse)


def test_stage_one_averages_views() -> None:
    model = make_model('F', use_merger=False)
    assert model.merger is None
    with torch.no_grad():
        result = model.reconstruct(_images(1, 3))
    torch.testing.assert_close(result.fused, result.coarse.mean(dim=1), atol=0, rtol=0)


def test_refiner_output_is_mean_of_input_and_unet() -> None:
    model = make_model('A')
    volume = torch.rand(2, 32, 32, 32)
    with torch.no_grad():
        refined = model.refiner(volume)
    # The U-Net branch ends in a sigmoid, so the output lies in [v/2, (v+1)/2].
    assert bool((refined >= volume * 0.5 - 1e-6).all())
    assert bool((refined <= (volume + 1) * 0.5 + 1e-6).all())


def test_bad_input_shape_raises() -> None:
    model = make_model('F')
    with pytest.raises(ValueError, match='expected images of shape'):
        model(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match='unknown model configuration keys'):
        ModelConfig.from_dict({'variant': 'F', 'depth': 3})
    with pytest.raises(ValueError, match="variant must be 'F' or 'A'"):
        ModelConfig(variant='B')


def test_init_follows_the_paper() -> None:
    model = build_model(ModelConfig.for_variant('A'))
    bn = model.decoder.layer1[1]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    linear = model.refiner.layer4[0]
    assert abs(float(linear.weight.detach().std()) - 0.01) < 0.001
    conv = model.encoder.layer1[0]  # Kaiming normal, fan_in = 512 * 9
    assert abs(float(conv.weight.detach().std()) - (2.0 / (512 * 9)) ** 0.5) < 0.002
