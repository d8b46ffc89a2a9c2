"""Inference wrapper: weights file + device + precision in, float32 occupancy grids out.

Used by the ROS node, the command-line tools and the benchmarks, so the same frames give the same
grid everywhere.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from .checkpoint import LoadedCheckpoint, WeightsMetadata, read_checkpoint
from .preprocess import Roi, preprocess_frame

PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class InferenceError(RuntimeError):
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


class Reconstructor:
    """A loaded network ready to turn views into occupancy grids.

    :param weights: a checkpoint path (release or project format) or an already loaded one.
    :param device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    :param precision: ``fp32``, ``fp16`` or ``bf16``; reduced precision runs under autocast on
        CUDA (and bf16 on the CPU); fp16 on the CPU falls back to fp32 with a warning.
    :param num_threads: CPU threads for PyTorch (process-wide); ``None`` keeps the default.
    :param warmup_views: views of a dummy forward pass run once now, 0 to skip.
    :raises CheckpointError: the weights cannot be loaded.
    :raises ValueError: an unknown device or precision.
    """

    def __init__(
        self,
        weights: Union[str, Path, LoadedCheckpoint],
        *,
        device: str = 'auto',
        precision: str = 'fp32',
        num_threads: int | None = None,
        warmup_views: int = 1,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        if num_threads is not None:
            if num_threads < 1:
                raise ValueError(f'num_threads must be at least 1, got {num_threads}')
            torch.set_num_threads(num_threads)
        self.device = resolve_device(device)
        if precision == 'fp16' and self.device.type == 'cpu':
            warnings.warn('fp16 autocast is not supported on the CPU; using fp32', stacklevel=2)
            precision = 'fp32'
        self.precision = precision
        loaded = weights if isinstance(weights, LoadedCheckpoint) else read_checkpoint(
            weights, device=self.device)
        self.model = loaded.model.to(self.device).eval()
        self.metadata: WeightsMetadata = loaded.metadata
        self.last_model_time_s = 0.0
        if warmup_views > 0:
            size = self.metadata.input_size
            self.infer(torch.zeros(1, warmup_views, 3, size, size))

    @property
    def threshold(self) -> float:
        """The weights' recommended occupancy threshold."""
        return self.metadata.threshold

    def preprocess(self, image: np.ndarray, *, encoding: str, roi: Roi | None = None,
                   roi_margin: float = 0.0, mask: np.ndarray | None = None) -> np.ndarray:
        """Preprocess one camera frame for these weights (see :func:`preprocess_frame`)."""
        return preprocess_frame(image, encoding=encoding, roi=roi, roi_margin=roi_margin,
                                mask=mask, metadata=self.metadata)

    def infer(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """Run the network on preprocessed views.

        :param images: ``(B, V, 3, 224, 224)`` normalized, as tensor or array.
        :returns: ``(B, 32, 32, 32)`` float32 occupancy probabilities.
        :raises InferenceError: wrong input shape, or the output holds NaN or Inf.
        """
        tensor = torch.as_tensor(images, dtype=torch.float32)
        size = self.metadata.input_size
        if tensor.dim() != 5 or tuple(tensor.shape[2:]) != (3, size, size) or tensor.shape[1] < 1:
            raise InferenceError(f'expected input (B, V, 3, {size}, {size}), '
                                 f'got {tuple(tensor.shape)}')
        start = time.perf_counter()
        with torch.inference_mode():
            tensor = tensor.to(self.device, non_blocking=True)
            dtype = PRECISIONS[self.precision]
            with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                output = self.model(tensor)
            grid = output.float().cpu().numpy()
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
        :returns: ``(32, 32, 32)`` float32 occupancy probabilities, ShapeNet axes (y up).
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
