"""Inference wrapper: weights file + device + precision + backend in, float32 occupancy grids out.

Used by the ROS node, the command-line tools and the benchmarks, so the same frames give the same
grid everywhere. The backends themselves (PyTorch, OpenVINO) live in :mod:`.backends`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from .backends import (BACKENDS, BackendError, BackendFallbackWarning, OpenVinoRunner, Runner,
                       TorchRunner, cpu_has_native_bf16, default_cache_dir, file_digest,
                       openvino_version, state_digest)
from .checkpoint import LoadedCheckpoint, WeightsMetadata, read_checkpoint
from .errors import Pix2VoxError
from .limits import MAX_FORWARD_BYTES, VIEW_BYTES
from .model.network import MAX_VIEWS
from .preprocess import Roi, preprocess_frame

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PRECISION_CHOICES = ('auto', *PRECISIONS)
# precision 'auto' picks bf16 on hardware with native bf16 only if bf16 keeps the results: on the
# synthetic test split with the demo weights, voxel agreement with fp32 >= 99.5 % and IoU change
# <= 0.005. Measured (benchmarks/bf16_agreement.py, 16 objects, 1/3/5 views): agreement >= 99.988 %
# and |IoU change| <= 0.0003 for PyTorch autocast and OpenVINO bf16 alike (README, Performance).
BF16_KEEPS_RESULTS = True
# Largest difference from PyTorch fp32 accepted when a converted backend is checked at load time.
VERIFY_TOLERANCE = {'fp32': 1e-4, 'bf16': 0.25}


class InferenceError(Pix2VoxError, RuntimeError):
    """The network produced no usable result (bad input shape, NaN or Inf output)."""


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a device that exists here.

    :raises ValueError: an unknown name, or CUDA asked for where there is none.
    """
    name = name.strip().lower()
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cpu':
        return torch.device('cpu')
    if name == 'cuda' or name.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise ValueError(f'device {name!r} requested but CUDA is not available')
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'device {name!r} requested but only '
                             f'{torch.cuda.device_count()} CUDA device(s) exist')
        return device
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")


def resolve_precision(name: str, device: torch.device) -> str:
    """Turn ``auto`` into ``bf16`` or ``fp32`` for ``device``; other names pass through.

    ``auto`` is bf16 on CUDA devices with bf16 and on CPUs with native bf16 (AVX512-BF16, AMX),
    provided :data:`BF16_KEEPS_RESULTS`; fp32 everywhere else.
    """
    if name != 'auto':
        return name
    if not BF16_KEEPS_RESULTS:
        return 'fp32'
    if device.type == 'cuda':
        return 'bf16' if torch.cuda.is_bf16_supported() else 'fp32'
    return 'bf16' if cpu_has_native_bf16() else 'fp32'


class Reconstructor:
    """A loaded network ready to turn views into occupancy grids.

    :param weights: a checkpoint path (release or project format) or an already loaded one.
    :param device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    :param precision: ``fp32``, ``fp16``, ``bf16`` or ``auto`` (see :func:`resolve_precision`);
        with PyTorch, reduced precision runs under autocast on CUDA (and bf16 on the CPU); fp16 on
        the CPU falls back to fp32 with a warning.
    :param backend: ``torch``, ``openvino`` (CPU) or ``auto``: OpenVINO on the CPU when it is
        installed (measured fastest there), PyTorch on CUDA. A backend that cannot be used
        (missing, unwritable cache folder, corrupt cached model, results that disagree with
        PyTorch) gives one :class:`BackendFallbackWarning` and PyTorch runs instead.
    :param cache_dir: where converted models are kept; None: :func:`default_cache_dir`.
    :param num_threads: CPU threads for PyTorch (process-wide) and OpenVINO; ``None`` keeps the
        defaults.
    :param warmup_views: views of a dummy forward pass run once now, 0 to skip.
    :param cuda_graphs: on CUDA, replay one captured CUDA graph per batch-1 view count.
    :raises CheckpointError: the weights cannot be loaded.
    :raises ValueError: an unknown device, precision or backend.
    """

    def __init__(
        self,
        weights: Union[str, Path, LoadedCheckpoint],
        *,
        device: str = 'auto',
        precision: str = 'fp32',
        backend: str = 'auto',
        cache_dir: Union[str, Path, None] = None,
        num_threads: int | None = None,
        warmup_views: int = 1,
        cuda_graphs: bool = True,
    ) -> None:
        if precision not in PRECISION_CHOICES:
            raise ValueError(f'precision must be one of {sorted(PRECISION_CHOICES)}, '
                             f'got {precision!r}')
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f'num_threads must be at least 1, got {num_threads}')
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        precision = resolve_precision(precision, self.device)
        if precision == 'fp16' and self.device.type == 'cpu':
            warnings.warn('fp16 autocast is not supported on the CPU; using fp32', stacklevel=2)
            precision = 'fp32'
        self.precision = precision
        loaded = weights if isinstance(weights, LoadedCheckpoint) else read_checkpoint(
            weights, device=self.device)
        self.model = loaded.model.to(self.device).eval()
        self.metadata: WeightsMetadata = loaded.metadata
        self.last_model_time_s = 0.0
        self._torch = TorchRunner(self.model, device=self.device, precision=precision,
                                  cuda_graphs=cuda_graphs)
        self._runner: Runner = self._torch
        #: why the requested backend is not the one running ('' when it is)
        self.backend_note = ''
        wanted = self._wanted_backend(backend)
        if wanted == 'openvino':
            try:
                self._runner = self._openvino(weights, cache_dir=cache_dir,
                                              num_threads=num_threads)
            except BackendError as exc:
                self._fall_back(f'OpenVINO backend unusable: {exc}')
            except Exception as exc:  # noqa: BLE001 - an optional backend must never stop us
                self._fall_back(f'OpenVINO backend unusable: {type(exc).__name__}: {exc}')
        if warmup_views > 0:
            size = self.metadata.input_size
            self.infer(torch.zeros(1, warmup_views, 3, size, size))

    @property
    def backend(self) -> str:
        """The backend that runs the network: ``torch`` or ``openvino``."""
        return self._runner.name

    def _fall_back(self, reason: str) -> None:
        self.backend_note = f'{reason}; using PyTorch'
        warnings.warn(BackendFallbackWarning(self.backend_note), stacklevel=3)

    def _wanted_backend(self, backend: str) -> str:
        if backend == 'torch':
            return 'torch'
        if self.device.type != 'cpu':
            if backend == 'openvino':
                self._fall_back(f'OpenVINO runs on the CPU, not on {self.device}')
            return 'torch'  # auto on CUDA: PyTorch is the measured choice
        if self.precision not in ('fp32', 'bf16'):
            return 'torch'
        if backend == 'auto' and openvino_version() is None:
            self._fall_back('backend auto: OpenVINO is not installed '
                            "(pip install 'pix2voxpp_ros[openvino]')")
            return 'torch'
        return 'openvino'

    def _openvino(self, weights: Union[str, Path, LoadedCheckpoint], *,
                  cache_dir: Union[str, Path, None], num_threads: int | None) -> Runner:
        """Convert (or read from the cache) and check the OpenVINO model against PyTorch.

        :raises BackendError: see :class:`OpenVinoRunner`, or results that disagree.
        """
        try:
            key = (state_digest(self.model) if isinstance(weights, LoadedCheckpoint)
                   else file_digest(weights))
        except OSError as exc:
            raise BackendError(f'cannot hash the weights ({exc})') from exc
        runner = OpenVinoRunner(self.model, key=key, precision=self.precision,
                                cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                                num_threads=num_threads, size=self.metadata.input_size)
        # One check per graph against PyTorch fp32 catches a wrong or damaged conversion; the
        # probe is drawn now, so no planted model can be built to pass it.
        size = self.metadata.input_size
        generator = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), 'little'))
        probe = torch.rand(1, 2, 3, size, size, generator=generator) * 2 - 1
        with torch.inference_mode():
            for views in (probe[:, :1], probe):
                expected = self.model(views.to(self.device)).float().cpu().numpy()
                try:
                    difference = float(np.abs(runner(views) - expected).max())
                except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own types
                    raise BackendError(f'{views.shape[1]}-view run failed: {exc}') from exc
                if not difference <= VERIFY_TOLERANCE[self.precision]:
                    raise BackendError(
                        f'{views.shape[1]}-view result differs from PyTorch by {difference:.3g} '
                        f'(> {VERIFY_TOLERANCE[self.precision]:g}); cached model in '
                        f'{runner.folder} may be damaged')
        return runner

    @property
    def threshold(self) -> float:
        """The weights' recommended occupancy threshold."""
        return self.metadata.threshold

    @property
    def resolution(self) -> int:
        """The edge of the grids this network returns: 32, or 128 for 128³ weights."""
        return self.model.config.resolution

    @property
    def max_views(self) -> int:
        """The most views one forward pass holds at this resolution (see ``limits``)."""
        return max(1, MAX_FORWARD_BYTES // VIEW_BYTES[self.resolution])

    def preprocess(self, image: np.ndarray, *, encoding: str, roi: Roi | None = None,
                   roi_margin: float = 0.0, mask: np.ndarray | None = None) -> np.ndarray:
        """Preprocess one camera frame for these weights (see :func:`preprocess_frame`)."""
        return preprocess_frame(image, encoding=encoding, roi=roi, roi_margin=roi_margin,
                                mask=mask, metadata=self.metadata)

    def infer(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """Run the network on preprocessed views.

        :param images: ``(B, V, 3, 224, 224)`` normalized, as tensor or array.
        :returns: ``(B, R, R, R)`` float32 occupancy probabilities, R = :attr:`resolution`.
        :raises InferenceError: wrong input shape, more views than :attr:`max_views`, or the
            input or output holds NaN or Inf.
        """
        tensor = torch.as_tensor(images, dtype=torch.float32)
        size = self.metadata.input_size
        if tensor.dim() != 5 or tuple(tensor.shape[2:]) != (3, size, size) or tensor.shape[1] < 1:
            raise InferenceError(f'expected input (B, V, 3, {size}, {size}), '
                                 f'got {tuple(tensor.shape)}')
        # OpenVINO turns NaN input into a finite grid; refuse it on every backend alike. NaN and
        # Inf carry through a sum, which reads the input once without a (B, V, 3, S, S) mask;
        # the element-wise count runs only when the sum is not finite (or overflowed).
        if not math.isfinite(float(tensor.sum())):
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise InferenceError(f'input holds {bad} NaN or Inf values')
        batch, views = tensor.shape[:2]
        if views > self.max_views:
            raise InferenceError(
                f'{views} views of one object at {self.resolution}³ would take about '
                f'{views * VIEW_BYTES[self.resolution] / 2**30:.1f} GB; at most '
                f'{self.max_views} views at this resolution')
        # Converted graphs were exported for 1..MAX_VIEWS views; more (untested maths) run eagerly.
        runner = self._runner if views <= MAX_VIEWS else self._torch
        start = time.perf_counter()
        # The objects of a batch are independent: a batch too large for one pass runs in parts.
        step = max(1, self.max_views // views)
        grid = (runner(tensor) if batch <= step else np.concatenate(
            [runner(tensor[first:first + step]) for first in range(0, batch, step)]))
        self.last_model_time_s = time.perf_counter() - start
        if not np.isfinite(grid).all():
            raise InferenceError(f'network output holds {int((~np.isfinite(grid)).sum())} '
                                 'NaN or Inf values')
        return grid

    def reconstruct(
        self,
        frames: Sequence[np.ndarray],
        *,
        encodings: Union[str, Sequence[str]] = 'rgb8',
        rois: Sequence[Roi | None] | None = None,
        roi_margin: float = 0.0,
    ) -> np.ndarray:
        """Reconstruct one object from several views (one camera frame each), as one batch.

        :param frames: V images of the same object, any sizes.
        :param encodings: one encoding for all frames or one per frame.
        :param rois: optional region of interest per frame.
        :returns: ``(R, R, R)`` float32 occupancy probabilities, ShapeNet axes (y up),
            R = :attr:`resolution`.
        :raises ImageInputError: a frame cannot be preprocessed.
        :raises InferenceError: see :meth:`infer`.
        """
        if not frames:
            raise InferenceError('no views given')
        if isinstance(encodings, str):
            encodings = [encodings] * len(frames)
        if rois is None:
            rois = [None] * len(frames)
        if len(encodings) != len(frames) or len(rois) != len(frames):
            raise InferenceError(f'{len(frames)} frames but {len(encodings)} encodings and '
                                 f'{len(rois)} regions of interest')
        views = np.stack([self.preprocess(frame, encoding=enc, roi=roi, roi_margin=roi_margin)
                          for frame, enc, roi in zip(frames, encodings, rois)])  # (V, 3, 224, 224)
        return self.infer(views[None])[0]
