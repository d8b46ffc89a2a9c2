"""Inference backends: OpenVINO and ONNX Runtime give PyTorch's grids; failures fall back.

Real conversions and real runtimes, no mocks. One converted model per variant is shared by the
parametrized cases (module-scoped fixtures); /A is large, so its cases carry the slow label.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from pix2voxpp_ros.core.backends import (BackendFallbackWarning, CacheRefusedWarning,
                                         OnnxRuntimeRunner, cpu_has_native_bf16, export_onnx)
from pix2voxpp_ros.core.checkpoint import save_checkpoint
from pix2voxpp_ros.core.inference import (BF16_KEEPS_RESULTS, InferenceError, Reconstructor,
                                          resolve_precision)

from model_helpers import REPO_ROOT, make_model

VIEWS = (1, 2, 3, 8)
BATCH = 2
TOLERANCE = 1e-4


class Variant(NamedTuple):
    name: str
    weights: Path
    model: torch.nn.Module
    inputs: dict  # views -> (BATCH, V, 3, 224, 224) float32
    expected: dict  # views -> PyTorch fp32 grids


@pytest.fixture(scope='module')
def f_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the /F checkpoint that the parity cases and the cache and fallback cases share."""
    path = tmp_path_factory.mktemp('weights_F') / 'w.pth'
    save_checkpoint(path, make_model('F', seed=4))
    return path


@pytest.fixture(scope='module')
def caches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return one converted-model cache per variant, shared by the module's tests."""
    return {name: tmp_path_factory.mktemp(f'cache_{name}') for name in ('F', 'A')}


@pytest.fixture(scope='module', params=['F', pytest.param('A', marks=pytest.mark.slow)])
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            f_weights: Path) -> Variant:
    model = make_model(request.param, seed=4)
    if request.param == 'F':
        weights = f_weights
    else:
        weights = tmp_path_factory.mktemp(f'weights_{request.param}') / 'w.pth'
        save_checkpoint(weights, model)
    rng = np.random.default_rng(5)
    inputs = {v: rng.uniform(-1, 1, (BATCH, v, 3, 224, 224)).astype(np.float32) for v in VIEWS}
    with torch.inference_mode():
        expected = {v: model(torch.from_numpy(x)).numpy() for v, x in inputs.items()}
    return Variant(request.param, weights, model, inputs, expected)


@pytest.fixture(scope='module')
def openvino_fp32(variant: Variant, caches: dict[str, Path]) -> Reconstructor:
    pytest.importorskip('openvino')
    with warnings.catch_warnings():
        warnings.simplefilter('error', BackendFallbackWarning)  # a fallback fails the test
        return Reconstructor(variant.weights, device='cpu', backend='openvino',
                             cache_dir=caches[variant.name], warmup_views=0)


@pytest.fixture(scope='module')
def onnx_file(variant: Variant, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip('onnxscript')
    return export_onnx(variant.model, tmp_path_factory.mktemp('onnx') / 'model.onnx')


@pytest.mark.parametrize('views', VIEWS)
def test_openvino_fp32_equals_pytorch(variant: Variant, openvino_fp32: Reconstructor,
                                      views: int) -> None:
    assert openvino_fp32.backend == 'openvino' and openvino_fp32.backend_note == ''
    grid = openvino_fp32.infer(variant.inputs[views])
    assert grid.shape == (BATCH, 32, 32, 32) and grid.dtype == np.float32
    np.testing.assert_allclose(grid, variant.expected[views], rtol=0, atol=TOLERANCE)
    assert openvino_fp32.last_model_time_s > 0


@pytest.mark.parametrize('views', VIEWS)
def test_onnxruntime_equals_pytorch(variant: Variant, onnx_file: Path, views: int) -> None:
    pytest.importorskip('onnxruntime')
    grid = _onnx_session(onnx_file)(variant.inputs[views])
    np.testing.assert_allclose(grid, variant.expected[views], rtol=0, atol=TOLERANCE)


_SESSIONS: dict = {}


def _onnx_session(path: Path) -> OnnxRuntimeRunner:
    if path not in _SESSIONS:
        _SESSIONS[path] = OnnxRuntimeRunner(path)
    return _SESSIONS[path]


def test_onnx_has_dynamic_batch_and_views_axes(onnx_file: Path) -> None:
    onnx = pytest.importorskip('onnx')
    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert [graph.input[0].name, graph.output[0].name] == ['images', 'occupancy']
    assert dims[2:] == [3, 224, 224] and all(isinstance(d, str) for d in dims[:2])


# ------------------------------------------------------------------ cache, precision, fallbacks


@pytest.fixture(scope='module')
def small_weights(f_weights: Path) -> Path:
    return f_weights


@pytest.fixture(scope='module')
def small_cache(small_weights: Path, caches: dict[str, Path]) -> Path:
    """Return the /F cache holding the converted model of ``small_weights`` (made once)."""
    pytest.importorskip('openvino')
    Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=caches['F'],
                  warmup_views=0)
    return caches['F']


def _views(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (1, count, 3, 224, 224)).astype(np.float32)


def test_cached_model_is_reused_and_bf16_stays_close(small_weights: Path,
                                                     small_cache: Path) -> None:
    cache = small_cache
    first = Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=cache,
                          warmup_views=0)
    folders = sorted(p.name for p in (cache / 'openvino').iterdir() if p.name != 'blobs')
    again = Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=cache,
                          warmup_views=0)
    bf16 = Reconstructor(small_weights, device='cpu', backend='openvino', precision='bf16',
                         cache_dir=cache, warmup_views=0)
    assert sorted(p.name for p in (cache / 'openvino').iterdir() if p.name != 'blobs') == folders
    assert len(folders) == 1 and again.backend == bf16.backend == 'openvino'
    views = _views(3)
    np.testing.assert_array_equal(again.infer(views), first.infer(views))
    assert np.abs(bf16.infer(views) - first.infer(views)).max() < 0.1
    most = _views(24)  # the largest view count the dynamic axis was exported for
    with torch.inference_mode():
        expected = first.model(torch.from_numpy(most)).numpy()
    np.testing.assert_allclose(first.infer(most), expected, rtol=0, atol=TOLERANCE)


def _fallback(weights: Path, **options: object) -> tuple[Reconstructor, str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        reconstructor = Reconstructor(weights, device='cpu', warmup_views=0, **options)
    notes = [str(w.message) for w in caught if issubclass(w.category, BackendFallbackWarning)]
    assert len(notes) == 1, [str(w.message) for w in caught]
    assert reconstructor.backend == 'torch' and reconstructor.backend_note == notes[0]
    return reconstructor, notes[0]


def _assert_equals_pytorch(reconstructor: Reconstructor) -> None:
    views = _views(2, seed=1)
    with torch.inference_mode():
        expected = reconstructor.model(torch.from_numpy(views)).numpy()
    np.testing.assert_array_equal(reconstructor.infer(views), expected)


def test_corrupt_cached_model_falls_back(small_weights: Path, small_cache: Path,
                                         tmp_path: Path) -> None:
    cache = tmp_path / 'cache'
    shutil.copytree(small_cache, cache)
    built = Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=cache,
                          warmup_views=0)
    weights_file = built._runner.folder / 'multi.bin'
    data = bytearray(weights_file.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    weights_file.write_bytes(bytes(data))
    reconstructor, note = _fallback(small_weights, backend='openvino', cache_dir=cache)
    assert 'corrupt' in note and str(built._runner.folder) in note
    _assert_equals_pytorch(reconstructor)
    (built._runner.folder / 'single.xml').write_text('<net>not a model')  # hash mismatch too
    assert 'corrupt' in _fallback(small_weights, backend='auto', cache_dir=cache)[1]


def test_unwritable_cache_folder_falls_back(small_weights: Path, tmp_path: Path) -> None:
    pytest.importorskip('openvino')
    blocker = tmp_path / 'a_file'
    blocker.write_text('')  # a folder below a file cannot be created, even by root
    reconstructor, note = _fallback(small_weights, backend='auto', cache_dir=blocker / 'cache')
    assert 'not writable' in note and str(blocker / 'cache') in note
    _assert_equals_pytorch(reconstructor)


PROBE_WITHOUT_OPENVINO = """
import json, sys, warnings
sys.modules['openvino'] = None  # this interpreter cannot import OpenVINO
from pix2voxpp_ros.core.inference import Reconstructor
out = {}
for backend in ('auto', 'openvino', 'torch'):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        r = Reconstructor(sys.argv[1], device='cpu', backend=backend, warmup_views=1)
    out[backend] = [r.backend, [str(w.message) for w in caught]]
print(json.dumps(out))
"""


def test_missing_openvino_falls_back_with_one_line(small_weights: Path) -> None:
    result = subprocess.run([sys.executable, '-c', PROBE_WITHOUT_OPENVINO, str(small_weights)],
                            capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['torch'] == ['torch', []]
    for backend in ('auto', 'openvino'):
        used, messages = out[backend]
        assert used == 'torch' and len(messages) == 1, messages
        assert 'not installed' in messages[0] and 'using PyTorch' in messages[0]


def test_precision_auto_and_unknown_backend(small_weights: Path) -> None:
    cpu = torch.device('cpu')
    expected = 'bf16' if BF16_KEEPS_RESULTS and cpu_has_native_bf16() else 'fp32'
    assert resolve_precision('auto', cpu) == expected
    assert resolve_precision('fp16', cpu) == 'fp16'
    reconstructor = Reconstructor(small_weights, device='cpu', precision='auto', backend='torch',
                                  warmup_views=0)
    assert reconstructor.precision == expected
    with pytest.raises(ValueError, match='backend must be one of'):
        Reconstructor(small_weights, device='cpu', backend='tensorrt', warmup_views=0)


@pytest.mark.parametrize('views', (1, 3))
def test_torch_backend_equals_the_network(small_weights: Path, device: torch.device,
                                          views: int) -> None:
    """On CUDA this replays a captured CUDA graph: twice, with different inputs."""
    reconstructor = Reconstructor(small_weights, device=str(device), backend='torch',
                                  warmup_views=views)
    for seed in (2, 3):
        images = _views(views, seed=seed)
        with torch.inference_mode():
            expected = reconstructor.model(torch.from_numpy(images).to(device)).cpu().numpy()
        np.testing.assert_allclose(reconstructor.infer(images), expected, rtol=0, atol=1e-5)
    if device.type == 'cuda':
        assert reconstructor._torch._graphs, 'no CUDA graph was captured'
        with pytest.warns(BackendFallbackWarning, match='OpenVINO runs on the CPU'):
            Reconstructor(small_weights, device=str(device), backend='openvino', warmup_views=0)


# ------------------------------------------------------------------ cache trust (issue 24 #10)


def _openvino_with_cache_notes(weights: Path, cache: Path) -> tuple[Reconstructor, list[str]]:
    """Build an OpenVINO Reconstructor; return it and its CacheRefusedWarning lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        reconstructor = Reconstructor(weights, device='cpu', backend='openvino',
                                      cache_dir=cache, warmup_views=0)
    assert not [w for w in caught if issubclass(w.category, BackendFallbackWarning)]
    assert reconstructor.backend == 'openvino'
    return reconstructor, [str(w.message) for w in caught
                           if issubclass(w.category, CacheRefusedWarning)]


def _assert_close_to_pytorch(reconstructor: Reconstructor) -> None:
    views = _views(2, seed=7)
    with torch.inference_mode():
        expected = reconstructor.model(torch.from_numpy(views)).numpy()
    np.testing.assert_allclose(reconstructor.infer(views), expected, rtol=0, atol=TOLERANCE)


def test_cache_folder_writable_by_others_is_refused(small_weights: Path, tmp_path: Path) -> None:
    """A shared folder: one line naming it and its mode, converted in memory, nothing read."""
    pytest.importorskip('openvino')
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    reconstructor, notes = _openvino_with_cache_notes(small_weights, shared)
    assert len(notes) == 1, notes
    assert f'{shared} is writable by other users (mode 777)' in notes[0]
    assert 'converted in memory, nothing cached' in notes[0]
    assert not (shared / 'openvino').exists()
    _assert_close_to_pytorch(reconstructor)


def test_cache_folder_of_another_user_is_refused(small_weights: Path, tmp_path: Path) -> None:
    pytest.importorskip('openvino')
    if os.geteuid() != 0:
        pytest.skip('only root can give a folder to another user')
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    os.chown(foreign, 4321, 4321)
    _, notes = _openvino_with_cache_notes(small_weights, foreign)
    assert len(notes) == 1 and f'{foreign} is owned by uid 4321, not by this user' in notes[0]


def test_planted_cache_entry_is_not_used(small_weights: Path, small_cache: Path,
                                         tmp_path: Path) -> None:
    """Another network's graphs with a matching manifest in our entry: unsigned, converted again.

    The planted graphs come from a different network, so using them would change every grid.
    """
    cache = tmp_path / 'cache'
    shutil.copytree(small_cache, cache)
    ours = Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=cache,
                         warmup_views=0)
    entry = ours._runner.folder
    other_weights = tmp_path / 'other.pth'
    save_checkpoint(other_weights, make_model('F', seed=11))
    other = tmp_path / 'other_cache'
    Reconstructor(other_weights, device='cpu', backend='openvino', cache_dir=other,
                  warmup_views=0)
    (planted,) = [p for p in (other / 'openvino').iterdir() if (p / 'manifest.json').exists()]
    manifest = json.loads((planted / 'manifest.json').read_text())
    manifest['tag'] = json.loads((entry / 'manifest.json').read_text())['tag']
    for name in ('single.xml', 'single.bin', 'multi.xml', 'multi.bin'):
        shutil.copy(planted / name, entry / name)
    (entry / 'manifest.json').write_text(json.dumps(manifest))  # hashes right, no valid key
    reconstructor, notes = _openvino_with_cache_notes(small_weights, cache)
    assert len(notes) == 1 and f'cached OpenVINO model in {entry} is not signed' in notes[0]
    _assert_close_to_pytorch(reconstructor)
    assert _openvino_with_cache_notes(small_weights, cache)[1] == []  # signed again: reused


def test_non_finite_input_is_refused_by_every_backend(small_weights: Path,
                                                      small_cache: Path) -> None:
    """Refuse non-finite input on both backends (PyTorch gave NaN, OpenVINO a finite grid)."""
    views = _views(1)
    views[0, 0, 0, 0, 0] = np.nan
    for backend in ('torch', 'openvino'):
        reconstructor = Reconstructor(small_weights, device='cpu', backend=backend,
                                      cache_dir=small_cache, warmup_views=0)
        assert reconstructor.backend == backend
        with pytest.raises(InferenceError, match='input holds 1 NaN or Inf values'):
            reconstructor.infer(views)


def test_unsigned_compiled_blobs_are_removed_unread(small_weights: Path, small_cache: Path,
                                                    tmp_path: Path) -> None:
    """Any blob in OpenVINO's cache folder is loaded: only the ones this user signed stay."""
    cache = tmp_path / 'cache'
    shutil.copytree(small_cache, cache)
    blobs = cache / 'openvino' / 'blobs'
    Reconstructor(small_weights, device='cpu', backend='openvino', cache_dir=cache,
                  warmup_views=0)
    signed = sorted(p.name for p in blobs.iterdir())
    assert 'signed.json' in signed and len(signed) > 1
    for name in signed:
        if name != 'signed.json':  # a planted blob under the name OpenVINO looks for
            (blobs / name).write_bytes(b'planted' * 100)
    (blobs / 'extra.blob').write_bytes(b'planted')
    reconstructor, notes = _openvino_with_cache_notes(small_weights, cache)
    assert notes == [] and not (blobs / 'extra.blob').exists()
    present = sorted(p.name for p in blobs.iterdir() if p.name != 'signed.json')
    assert all((blobs / name).read_bytes()[:7] != b'planted' for name in present)
    listed = json.loads((blobs / 'signed.json').read_text())['files']
    assert sorted(listed) == present  # OpenVINO's new blobs, signed
    _assert_close_to_pytorch(reconstructor)
