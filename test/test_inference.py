"""The inference wrapper: devices, precisions, frames -> grid, and NaN outputs.

These test the PyTorch path exactly (``backend='torch'``); test_backends.py tests the others.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.checkpoint import save_checkpoint
from pix2voxpp_ros.core.inference import InferenceError, Reconstructor, resolve_device

from model_helpers import make_model


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / 'f.pth'
    save_checkpoint(path, make_model('F', seed=2))
    return path


def test_resolve_device() -> None:
    assert resolve_device('cpu') == torch.device('cpu')
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(ValueError, match="got 'tpu'"):
        resolve_device('tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            resolve_device('cuda:0')


def test_reconstruct_frames_equals_the_network(weights) -> None:
    reconstructor = Reconstructor(weights, device='cpu', backend='torch')
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(3)]
    grid = reconstructor.reconstruct(frames, encodings='rgb8')
    assert grid.shape == (32, 32, 32) and grid.dtype == np.float32
    views = np.stack([reconstructor.preprocess(f, encoding='rgb8') for f in frames])
    with torch.no_grad():
        expected = reconstructor.model(torch.from_numpy(views)[None])[0].numpy()
    assert np.array_equal(grid, expected)
    assert reconstructor.last_model_time_s > 0
    assert reconstructor.threshold == pytest.approx(0.3)


def test_precision_options(weights) -> None:
    with pytest.raises(ValueError, match='precision must be one of'):
        Reconstructor(weights, device='cpu', backend='torch', precision='int8')
    with pytest.warns(UserWarning, match='fp16 autocast is not supported on the CPU'):
        fp16 = Reconstructor(weights, device='cpu', backend='torch', precision='fp16',
                             warmup_views=0)
    assert fp16.precision == 'fp32'
    bf16 = Reconstructor(weights, device='cpu', backend='torch', precision='bf16',
                         warmup_views=0)
    fp32 = Reconstructor(weights, device='cpu', backend='torch', warmup_views=0)
    views = np.random.default_rng(1).uniform(-1, 1, (1, 2, 3, 224, 224)).astype(np.float32)
    assert np.abs(bf16.infer(views) - fp32.infer(views)).max() < 0.1


def test_nan_output_raises(tmp_path) -> None:
    model = make_model('F')
    with torch.no_grad():
        model.decoder.layer5[0].weight.fill_(float('nan'))
    path = tmp_path / 'nan.pth'
    save_checkpoint(path, model)
    reconstructor = Reconstructor(path, device='cpu', backend='torch', warmup_views=0)
    with pytest.raises(InferenceError, match='NaN or Inf'):
        reconstructor.infer(np.zeros((1, 1, 3, 224, 224), np.float32))


def test_nan_and_inf_input_are_refused_and_huge_finite_input_is_not(weights) -> None:
    """Non-finite input is found through its sum; a sum that overflows is counted exactly."""
    reconstructor = Reconstructor(weights, device='cpu', backend='torch', warmup_views=0)
    views = np.zeros((2, 2, 3, 224, 224), np.float32)
    for bad, count in ((np.nan, 1), (np.inf, 1), (-np.inf, 2)):
        poisoned = views.copy()
        poisoned.reshape(-1)[[7, -3][:count]] = bad
        with pytest.raises(InferenceError, match=f'input holds {count} NaN or Inf values'):
            reconstructor.infer(poisoned)
    huge = np.full_like(views, 3e38)  # finite values whose float32 sum is inf
    with pytest.raises(InferenceError, match='network output holds'):  # the input passed
        reconstructor.infer(huge)


def test_bad_shapes_raise(weights) -> None:
    reconstructor = Reconstructor(weights, device='cpu', backend='torch', warmup_views=0)
    with pytest.raises(InferenceError, match=r'expected input \(B, V, 3, 224, 224\)'):
        reconstructor.infer(np.zeros((1, 3, 224, 224), np.float32))
    with pytest.raises(InferenceError, match='no views given'):
        reconstructor.reconstruct([])


def test_a_batch_beyond_one_pass_runs_in_parts_and_too_many_views_are_refused(
        weights, tmp_path, monkeypatch) -> None:
    """Memory per pass is bounded: objects are split over passes, one object's views are not."""
    from pix2voxpp_ros.core import inference
    from pix2voxpp_ros.core.model import ModelConfig, build_model
    reconstructor = Reconstructor(weights, device='cpu', backend='torch', warmup_views=0)
    views = np.random.default_rng(3).uniform(-1, 1, (3, 2, 3, 224, 224)).astype(np.float32)
    whole = reconstructor.infer(views)
    monkeypatch.setattr(inference, 'MAX_FORWARD_BYTES', 5 * inference.VIEW_BYTES[32])
    assert reconstructor.max_views == 5  # two objects of two views a pass: two passes
    runner, batches = reconstructor._runner, []
    monkeypatch.setattr(reconstructor, '_runner',
                        lambda images: batches.append(images.shape[0]) or runner(images))
    np.testing.assert_allclose(reconstructor.infer(views), whole, atol=1e-5)
    assert batches == [2, 1]
    with pytest.raises(InferenceError, match=r'6 views of one object at 32³ would take about '
                                             r'0\.1 GB; at most 5 views at this resolution'):
        reconstructor.infer(np.zeros((1, 6, 3, 224, 224), np.float32))
    monkeypatch.undo()
    path = tmp_path / 'f128.pth'
    save_checkpoint(path, build_model(ModelConfig(resolution=128)))
    fine = Reconstructor(path, device='cpu', backend='torch', warmup_views=0)
    assert fine.max_views == 9  # 3 GB at 330 MB a view
    with pytest.raises(InferenceError, match=r'10 views of one object at 128³ would take about '
                                             r'3\.2 GB'):
        fine.infer(np.zeros((1, 10, 3, 224, 224), np.float32))
