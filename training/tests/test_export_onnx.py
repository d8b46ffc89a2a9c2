"""``pix2voxpp-export --onnx``: an ONNX file (dynamic batch and views) that ONNX Runtime runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.backends import OnnxRuntimeRunner
from pix2voxpp_ros.core.checkpoint import save_checkpoint
from pix2voxpp_ros.core.model import ModelConfig, build_model
from pix2voxpp_training import export


def test_export_onnx_runs_in_onnxruntime_like_pytorch(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip('onnxscript')
    pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    model = build_model(ModelConfig.for_variant('F')).eval()
    weights = tmp_path / 'w.pth'
    save_checkpoint(weights, model)
    onnx_path = tmp_path / 'deploy' / 'model.onnx'
    assert export.main(['--weights', str(weights), '--onnx', str(onnx_path)]) == 0
    assert 'ONNX Runtime within' in capsys.readouterr().out
    assert not (tmp_path / 'deploy' / 'model.pth').exists()  # --onnx alone writes no .pth
    runner = OnnxRuntimeRunner(onnx_path)
    for batch, views in ((1, 1), (2, 4)):
        images = torch.rand(batch, views, 3, 224, 224) * 2 - 1
        with torch.inference_mode():
            expected = model(images).numpy()
        np.testing.assert_allclose(runner(images.numpy()), expected, rtol=0, atol=1e-4)


def test_export_needs_an_output(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        export.main(['--weights', str(tmp_path / 'w.pth')])
    assert stop.value.code == 2
