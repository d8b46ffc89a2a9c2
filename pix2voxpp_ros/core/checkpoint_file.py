"""Reading a weights file with bounded memory and without running code.

A PyTorch checkpoint is a zip archive (or, before PyTorch 1.6, a plain pickle stream). PyTorch
allocates each zip record at the size its central directory declares before it inflates it, so a
few megabytes of deflated zeros can declare gigabytes. :func:`load_weights_file` therefore reads
the central directory first (Python's ``zipfile``, no data inflated) and refuses an archive whose
records are larger, more numerous or more compressed than any real Pix2Vox++ file; only then does
``torch.load(..., weights_only=True)`` run, which never executes code from the file.

The limits come from the largest real network, Pix2Vox++/A with its refiner: 385 MB of float32
weights in 270 tensors, the largest tensor (``decoder.layer1.0.weight``) 206 MB. A training
checkpoint of it with Adam's two moments holds about 1.2 GB in about 800 records.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .errors import Pix2VoxError

ZIP_MAGIC = b'PK\x03\x04'  # what torch.load looks at to tell a zip archive from a legacy file


class ArchiveLimits(NamedTuple):
    """Bounds on a checkpoint archive, each well above what a real Pix2Vox++ file needs.

    :param record_bytes: one record (one tensor storage); /A's largest tensor is 206 MB.
    :param total_bytes: all records together, and the size of a legacy (non-zip) file; an /A
        training checkpoint with optimizer state is about 1.2 GB.
    :param records: record count; an /A training checkpoint has about 800.
    :param pickle_bytes: the pickled structure (``data.pkl``), a few hundred kilobytes at most.
    :param compression_ratio: inflated / stored size of a compressed record over 1 MiB;
        ``torch.save`` never compresses and float weights deflate by less than 2x.
    """

    record_bytes: int = 1 << 30
    total_bytes: int = 4 << 30
    records: int = 10_000
    pickle_bytes: int = 64 << 20
    compression_ratio: float = 10.0


DEFAULT_LIMITS = ArchiveLimits()
_RATIO_FLOOR_BYTES = 1 << 20  # small records (the pickle, version files) may compress well


class CheckpointError(Pix2VoxError, RuntimeError):
    """A checkpoint is missing, unreadable, of a foreign format or does not fit the network."""


def _numpy_scalar_reconstructor() -> Any:
    """Return numpy's scalar unpickling function, whatever numpy 1.x or 2.x is installed.

    numpy 2 moved ``numpy.core`` to ``numpy._core``; numpy 1.x (apt's 1.21 and 1.26) has only
    the old module, or a ``numpy._core`` stub without ``multiarray``. The old name is tried last
    because numpy 2 warns on its use.
    """
    for module_name in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        try:
            return importlib.import_module(module_name).scalar
        except (ImportError, AttributeError):
            continue
    raise ImportError('numpy has neither numpy._core.multiarray nor numpy.core.multiarray')


_NUMPY_SCALAR = _numpy_scalar_reconstructor()
# numpy scalars in the release files pickle as numpy.core (numpy 1) or numpy._core (numpy 2);
# either name must load under either numpy.
_NUMPY_SAFE_GLOBALS: list[Any] = [
    np.dtype,
    type(np.dtype(np.float64)),
    type(np.dtype(np.float32)),
    _NUMPY_SCALAR,
    (_NUMPY_SCALAR, 'numpy.core.multiarray.scalar'),
    (_NUMPY_SCALAR, 'numpy._core.multiarray.scalar'),
]


def _mib(size: float) -> str:
    return f'{size / (1 << 20):.0f} MiB'


def check_archive(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Refuse a checkpoint whose declared sizes exceed ``limits``, reading no record's data.

    :raises CheckpointError: the file is too large, or its zip directory is unreadable,
        names a record twice or declares records beyond the limits.
    """
    try:
        size = path.stat().st_size
        with open(path, 'rb') as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise CheckpointError(f'{path}: cannot read checkpoint ({exc.strerror})') from exc
    if size > limits.total_bytes:
        raise CheckpointError(f'{path}: {_mib(size)} file, larger than the '
                              f'{_mib(limits.total_bytes)} a checkpoint may have')
    if magic != ZIP_MAGIC:
        return  # legacy format: never compressed, its memory is bounded by the file size
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on damaged bytes
        raise CheckpointError(f'{path}: not a readable PyTorch checkpoint, the zip archive is '
                              f'truncated or corrupt ({type(exc).__name__}: {exc})') from exc
    if len(records) > limits.records:
        raise CheckpointError(f'{path}: {len(records)} records, more than the {limits.records} a '
                              'checkpoint may have')
    names: set[str] = set()
    total = 0
    for record in records:
        name = record.filename
        if name.lower() in names:  # PyTorch's reader looks names up ignoring case
            raise CheckpointError(f'{path}: record {name!r} appears twice')
        names.add(name.lower())
        bound = limits.pickle_bytes if name.endswith('.pkl') else limits.record_bytes
        if record.file_size > bound:
            raise CheckpointError(f'{path}: record {name!r} declares {_mib(record.file_size)}, '
                                  f'more than the {_mib(bound)} limit (a zip bomb or not a '
                                  'Pix2Vox++ checkpoint)')
        ratio = record.file_size / max(record.compress_size, 1)
        if record.file_size > _RATIO_FLOOR_BYTES and ratio > limits.compression_ratio:
            raise CheckpointError(f'{path}: record {name!r} inflates {ratio:.0f}x, more than the '
                                  f'{limits.compression_ratio:g}x limit (a zip bomb; torch.save '
                                  'writes records uncompressed)')
        total += record.file_size
    if total > limits.total_bytes:
        raise CheckpointError(f'{path}: records declare {_mib(total)} together, more than the '
                              f'{_mib(limits.total_bytes)} limit')


def _refused_global(message: str) -> str:
    """Return the line of a weights_only refusal that names the global, else its last line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    named = [line for line in lines if 'GLOBAL' in line or 'global' in line]
    if named:
        return named[0]
    return lines[-1] if lines else ''


def load_weights_file(path: Path, device: str | torch.device = 'cpu', *,
                      limits: ArchiveLimits = DEFAULT_LIMITS) -> Any:
    """Return the object a checkpoint file holds: tensors and plain values only.

    :param limits: bounds on the archive, checked before anything is inflated.
    :raises CheckpointError: missing, oversized, code-carrying, truncated or corrupt file; a
        refusal names the file and the record or global refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: checkpoint file not found')
    check_archive(path, limits)
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refused a global: the file wants to run code (or is not a checkpoint).
        raise CheckpointError(f'{path}: refused to load, the file is not plain weights '
                              f'({_refused_global(str(exc)) or repr(exc)})') from exc
    except Exception as exc:  # noqa: BLE001 - arbitrary bytes make torch.load raise anything
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        raise CheckpointError(f'{path}: not a readable PyTorch checkpoint, the file is truncated '
                              f'or corrupt ({type(exc).__name__}: {first[:200]})') from exc
