"""Inference backends behind :class:`~pix2voxpp_ros.core.inference.Reconstructor`.

* ``torch``: PyTorch eager on the CPU or CUDA; on CUDA with pinned host memory and one CUDA graph
  per batch-1 view count seen (captured lazily, replayed afterwards).
* ``openvino``: the network converted once (``torch.export`` -> OpenVINO) into two graphs with a
  dynamic batch axis: one for a single view (the merger skipped, exactly as PyTorch does) and one
  for 2..24 views (dynamic views axis). The converted graphs are cached on disk under a key made
  of the weights' hash and the OpenVINO and PyTorch versions, each entry's manifest signed with
  the user's own key; OpenVINO's own compiled-blob cache lives beside them. A cache folder that
  another user could change is refused (:mod:`.cache_trust`): the model is then converted in
  memory and nothing is cached.
* ONNX: :func:`export_onnx` writes one graph with dynamic batch and views axes for ONNX Runtime or
  TensorRT; with one view the merger's softmax weight is exactly 1, so the same graph is exact.

Every failure to use an optional backend is a :class:`BackendError`; the Reconstructor turns it
into one :class:`BackendFallbackWarning` and runs PyTorch instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .cache_trust import (UntrustedCacheError, check_trusted, manifest_signed, prune_unsigned,
                          sign, sign_folder, user_key, writable_folder)
from .errors import Pix2VoxError
from .model import Pix2VoxPP
from .model.network import MAX_VIEWS

BACKENDS = ('auto', 'torch', 'openvino')
CACHE_FORMAT = 2  # bump when the cached files change meaning (2: signed manifests)
MAX_CUDA_GRAPHS = 8  # one per batch-1 view count; a node uses one or two
_OV_PRECISION = {'fp32': 'f32', 'bf16': 'bf16'}


class BackendError(Pix2VoxError, RuntimeError):
    """An inference backend cannot be used here (missing, unwritable cache, corrupt cache)."""


class BackendFallbackWarning(UserWarning):
    """The requested or preferred backend was not usable; PyTorch runs instead."""


class CacheRefusedWarning(UserWarning):
    """A cache folder or entry was not trusted; the model was converted again."""


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), from ``/proc/cpuinfo``."""
    try:
        text = Path('/proc/cpuinfo').read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith('flags'):
            flags = set(line.split(':', 1)[1].split())
            return bool(flags & {'avx512_bf16', 'amx_bf16'})
    return False


def openvino_version() -> str | None:
    """Return the installed OpenVINO's version, or None when it does not import."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version()


def default_cache_dir() -> Path:
    """``$PIX2VOXPP_CACHE_DIR``, else ``$XDG_CACHE_HOME/pix2voxpp_ros``, else ``~/.cache/...``."""
    if os.environ.get('PIX2VOXPP_CACHE_DIR'):
        return Path(os.environ['PIX2VOXPP_CACHE_DIR']).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'pix2voxpp_ros'


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a network's parameters and buffers (for weights given as a loaded object)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class TorchRunner:
    """PyTorch eager inference; on CUDA with pinned host memory and CUDA graphs.

    :param model: the network in eval mode, on ``device``.
    :param precision: ``fp32``, ``fp16`` or ``bf16`` (autocast; fp16 only on CUDA).
    :param cuda_graphs: on CUDA, capture one graph per batch-1 view count on its first use.
    """

    name = 'torch'

    def __init__(self, model: Pix2VoxPP, *, device: torch.device, precision: str,
                 cuda_graphs: bool = True) -> None:
        self.model = model
        self.device = device
        self.dtype = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}[precision]
        self.cuda_graphs = cuda_graphs and device.type == 'cuda'
        self._graphs: dict[tuple[int, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}
        self._pinned: dict[tuple[int, ...], torch.Tensor] = {}

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        # No autocast weight cache: its casts would be freed under a captured CUDA graph, and
        # each weight is cast once per forward anyway (views are batched).
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None,
                            cache_enabled=False):
            return self.model(images)

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        if self.device.type != 'cuda':
            return images
        shape = tuple(images.shape)
        pinned = self._pinned.get(shape)
        if pinned is None:
            if len(self._pinned) >= MAX_CUDA_GRAPHS:
                self._pinned.clear()
            pinned = self._pinned[shape] = torch.empty(shape, pin_memory=True)
        pinned.copy_(images)
        return pinned.to(self.device, non_blocking=True)

    def _graph(self, shape: tuple[int, ...]) -> tuple[Any, torch.Tensor, torch.Tensor] | None:
        """Return the captured graph of ``shape`` (capturing it now), or None: run eagerly."""
        if not self.cuda_graphs or shape[0] != 1:
            return None
        if shape not in self._graphs:
            if len(self._graphs) >= MAX_CUDA_GRAPHS:
                return None
            static_in = torch.zeros(shape, device=self.device)
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):  # warm up (cuDNN autotuning) off the capture
                for _ in range(2):
                    self._forward(static_in)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[shape] = (graph, static_in, static_out)
        return self._graphs[shape]

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Return ``(B, R, R, R)`` float32 for ``(B, V, 3, S, S)`` float32 images."""
        with torch.inference_mode():
            on_device = self._to_device(images)
            graph = self._graph(tuple(images.shape))
            if graph is None:
                output = self._forward(on_device)
            else:
                captured, static_in, static_out = graph
                static_in.copy_(on_device)
                captured.replay()
                output = static_out
            return output.float().cpu().numpy()


def _export_program(model: Pix2VoxPP, *, views: int, size: int) -> Any:
    """``torch.export`` the network for one view, or for a dynamic 2..24 views axis."""
    from torch.export import Dim, export
    batch = Dim('batch', min=1, max=1024)
    dims: dict[int, Any] = {0: batch}
    if views > 1:
        dims[1] = Dim('views', min=2, max=MAX_VIEWS)
    example = torch.zeros(2, views, 3, size, size)  # 2: a batch of 1 would be specialised
    return export(model, (example,), dynamic_shapes=(dims,))


class OpenVinoRunner:
    """OpenVINO CPU inference of two converted graphs (one view; 2..24 views), cached on disk.

    :param model: the network (CPU, eval mode) to convert when the cache has no copy.
    :param key: identifies the weights (see :func:`file_digest`).
    :param precision: ``fp32`` or ``bf16`` (OpenVINO's inference precision hint).
    :param cache_dir: where converted graphs and compiled blobs are kept; a folder another user
        could change gives one :class:`CacheRefusedWarning` and an in-memory conversion.
    :param num_threads: CPU threads for inference; None lets OpenVINO choose.
    :param size: input image edge.
    :raises BackendError: OpenVINO is missing, the cache folder is not writable, a cached graph
        is corrupt, or conversion or compilation fails.
    """

    name = 'openvino'

    def __init__(self, model: Pix2VoxPP, *, key: str, precision: str, cache_dir: Path,
                 num_threads: int | None = None, size: int = 224) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendError('OpenVINO is not installed (pip install '
                               "'pix2voxpp_ros[openvino]')") from exc
        if precision not in _OV_PRECISION:
            raise BackendError(f'OpenVINO runs fp32 or bf16, not {precision}')
        self.version = ov.get_version()
        self._tag = json.dumps([CACHE_FORMAT, key, self.version, torch.__version__,
                                model.config.to_dict(), size], sort_keys=True)
        cache_dir = Path(cache_dir)
        self.folder = cache_dir / 'openvino' / hashlib.sha256(
            self._tag.encode()).hexdigest()[:24]
        try:
            writable_folder(cache_dir)
        except OSError as exc:
            raise BackendError(f'cache folder {cache_dir} is not writable ({exc})') from exc
        core = ov.Core()
        try:
            check_trusted(cache_dir)
        except UntrustedCacheError as exc:
            warnings.warn(CacheRefusedWarning(f'{exc}; OpenVINO model converted in memory, '
                                              'nothing cached'), stacklevel=3)
            graphs: dict[str, Any] = self._converted(ov, model, size)
        else:
            graphs, key = self._cached_graphs(ov, model, size, cache_dir)
            blobs = cache_dir / 'openvino' / 'blobs'
            signed_blobs = prune_unsigned(blobs, key)  # OpenVINO would load any blob found
            core.set_property({'CACHE_DIR': str(blobs)})
        config: dict[str, Any] = {'INFERENCE_PRECISION_HINT': _OV_PRECISION[precision],
                                  'PERFORMANCE_HINT': 'LATENCY'}
        if num_threads:
            config['INFERENCE_NUM_THREADS'] = int(num_threads)
        self._requests = {}
        for graph, source in graphs.items():
            try:
                compiled = core.compile_model(source, 'CPU', config)
            except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own types
                raise BackendError(f'cached OpenVINO model {self.folder / graph}.xml does not '
                                   f'compile ({str(exc).splitlines()[0]}); delete '
                                   f'{self.folder} to convert again') from exc
            self._requests[graph] = compiled.create_infer_request()
        if isinstance(graphs['single'], str) and blobs.is_dir():
            sign_folder(blobs, key, signed_blobs)  # the blobs OpenVINO just wrote

    def _cached_graphs(self, ov: Any, model: Pix2VoxPP, size: int,
                       cache_dir: Path) -> tuple[dict[str, Any], bytes]:
        """Return the graphs' files in the (trusted) cache, converting them when absent."""
        try:
            key = user_key(cache_dir)
        except OSError as exc:
            raise BackendError(f'cannot keep the cache key in {cache_dir} ({exc})') from exc
        if (self.folder / 'manifest.json').is_file() and not manifest_signed(
                self.folder / 'manifest.json', key, self._tag):
            warnings.warn(CacheRefusedWarning(
                f'cached OpenVINO model in {self.folder} is not signed with the key of this user '
                '(planted, or copied from elsewhere); converting it again'), stacklevel=4)
            shutil.rmtree(self.folder, ignore_errors=True)
        if not (self.folder / 'manifest.json').is_file():
            self._convert(ov, model, size, key)
        return {graph: str(self.folder / f'{graph}.xml')
                for graph in self._verified_graphs()}, key

    @staticmethod
    def _converted(ov: Any, model: Pix2VoxPP, size: int) -> dict[str, Any]:
        """Convert both graphs in memory: ``{'single': ov.Model, 'multi': ov.Model}``."""
        graphs = {}
        try:
            for graph, views in (('single', 1), ('multi', 2)):
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')  # export and converter chatter
                    converted = ov.convert_model(_export_program(model, views=views, size=size))
                converted.reshape({0: ov.PartialShape([-1, 1 if views == 1 else -1, 3, size,
                                                       size])})
                graphs[graph] = converted
        except Exception as exc:  # noqa: BLE001 - export and converter raise many types
            raise BackendError(f'OpenVINO conversion failed: {type(exc).__name__}: '
                               f'{str(exc).splitlines()[0] if str(exc) else ""}') from exc
        return graphs

    def _convert(self, ov: Any, model: Pix2VoxPP, size: int, key: bytes) -> None:
        """Convert both graphs into a fresh folder, sign its manifest, then move it into place."""
        graphs = self._converted(ov, model, size)
        staging = Path(tempfile.mkdtemp(dir=self.folder.parent.parent, prefix='.convert-'))
        try:
            files = {}
            for graph, converted in graphs.items():
                ov.save_model(converted, str(staging / f'{graph}.xml'), compress_to_fp16=False)
                files[graph] = {suffix: file_digest(staging / f'{graph}.{suffix}')
                                for suffix in ('xml', 'bin')}
            manifest = {'tag': self._tag, **files}
            manifest['signature'] = sign(key, manifest)
            (staging / 'manifest.json').write_text(json.dumps(manifest, indent=1))
            self.folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                staging.rename(self.folder)
            except OSError:  # another process won the race: use its copy
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):
                raise BackendError(f'cannot write the OpenVINO cache in {self.folder.parent} '
                                   f'({exc})') from exc
            if isinstance(exc, Exception):
                raise BackendError(f'OpenVINO conversion failed: {type(exc).__name__}: '
                                   f'{str(exc).splitlines()[0] if str(exc) else ""}') from exc
            raise

    def _verified_graphs(self) -> Sequence[str]:
        """Check the cached files against their manifest's hashes.

        :raises BackendError: a file is missing or its bytes changed.
        """
        try:
            manifest = json.loads((self.folder / 'manifest.json').read_text())
            for graph in ('single', 'multi'):
                for suffix in ('xml', 'bin'):
                    if file_digest(self.folder / f'{graph}.{suffix}') != manifest[graph][suffix]:
                        raise ValueError(f'{graph}.{suffix} does not match its hash')
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f'cached OpenVINO model in {self.folder} is corrupt ({exc}); '
                               'delete the folder to convert again') from exc
        return ('single', 'multi')

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """Return ``(B, R, R, R)`` float32 for ``(B, V, 3, S, S)`` float32 images."""
        array = np.ascontiguousarray(images.numpy(), dtype=np.float32)
        request = self._requests['single' if array.shape[1] == 1 else 'multi']
        request.infer({0: array})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)


def export_onnx(model: Pix2VoxPP, path: str | Path, *, size: int = 224,
                opset: int = 18) -> Path:
    """Write the network as ONNX with dynamic ``batch`` and ``views`` axes.

    The graph contains the merger (exported with a symbolic views axis); with one view its softmax
    weight is exactly 1, so one-view results equal PyTorch's too. Input ``images``
    ``(B, V, 3, S, S)``, output ``occupancy`` ``(B, R, R, R)`` (R: the network's resolution).

    :raises BackendError: the export failed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    from torch.export import Dim
    dims = {0: Dim('batch', min=1, max=1024), 1: Dim('views', min=2, max=MAX_VIEWS)}
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')  # the exporter's progress notes
            # torch.export keeps the views axis symbolic (the TorchScript exporter fixes it).
            torch.onnx.export(model, (torch.zeros(2, 2, 3, size, size),), str(path),
                              dynamo=True, external_data=False, verbose=False,
                              input_names=['images'], output_names=['occupancy'],
                              dynamic_shapes=(dims,), opset_version=opset)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        raise BackendError(f'ONNX export failed: {type(exc).__name__}: {exc}') from exc
    return path


class OnnxRuntimeRunner:
    """ONNX Runtime CPU inference of a file written by :func:`export_onnx` (tests, benchmarks).

    :raises BackendError: ONNX Runtime is missing or the file does not load.
    """

    name = 'onnxruntime'

    def __init__(self, path: str | Path, *, num_threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError('ONNX Runtime is not installed (pip install '
                               "'pix2voxpp_ros[onnx]')") from exc
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=['CPUExecutionProvider'])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise BackendError(f'ONNX Runtime cannot load {path}: {exc}') from exc

    def __call__(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """Return ``(B, R, R, R)`` float32 for ``(B, V, 3, S, S)`` float32 images."""
        array = np.ascontiguousarray(np.asarray(images), dtype=np.float32)
        return self.session.run(['occupancy'], {'images': array})[0]


Runner = Callable[[torch.Tensor], np.ndarray]
