"""Hostile checkpoint files for the tests: a zip bomb in PyTorch's archive layout.

:func:`write_zip_bomb` takes a real ``torch.save`` archive and replaces its one tensor record by a
deflated run of zeros that declares ``inflated_bytes`` (6 GiB deflate to about 6 MB). The deflate
stream is built from one compressed 16 MiB block repeated, so writing it takes well under a
second and no memory; the CRC is left 0 because a reader only checks it after inflating.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import torch

_BLOCK = 1 << 24  # 16 MiB of zeros per repeated compressed block


def _deflated_zeros(inflated_bytes: int) -> bytes:
    """Return a raw deflate stream of ``inflated_bytes`` zeros (a multiple of 16 MiB)."""
    if inflated_bytes % _BLOCK:
        raise ValueError(f'inflated_bytes must be a multiple of {_BLOCK}')
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(_BLOCK)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # After the first block the window is all zeros, so every later block compresses the same.
    count = inflated_bytes // _BLOCK
    return first + repeated * (count - 1) + compressor.flush(zlib.Z_FINISH)


def _zip64(records: list[tuple[str, int, bytes, int]]) -> bytes:
    """Write (name, method, stored bytes, inflated size) records as a zip64 archive."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, method, data, size in records:
        offset = out.tell()
        crc = zlib.crc32(data) if method == zipfile.ZIP_STORED else 0
        extra = struct.pack('<HHQQ', 1, 16, size, len(data))
        encoded = name.encode()
        out.write(struct.pack('<IHHHHHIIIHH', 0x04034b50, 45, 0, method, 0, 0x21, crc,
                              0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra)))
        out.write(encoded + extra + data)
        central.write(struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 45, 45, 0, method, 0,
                                  0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(encoded), len(extra),
                                  0, 0, 0, 0, offset))
        central.write(encoded + extra)
    start, directory = out.tell(), central.getvalue()
    out.write(directory)
    end64 = out.tell()
    count = len(records)
    out.write(struct.pack('<IQHHIIQQQQ', 0x06064b50, 44, 45, 45, 0, 0, count, count,
                          len(directory), start))
    out.write(struct.pack('<IIQI', 0x07064b50, 0, end64, 1))
    out.write(struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, count, count, len(directory), start,
                          0))
    return out.getvalue()


def write_zip_bomb(path: Path, inflated_bytes: int = 6 << 30) -> Path:
    """Write a checkpoint whose one tensor record inflates to ``inflated_bytes`` of zeros."""
    buffer = io.BytesIO()
    torch.save({'encoder_state_dict': {'layer1.0.weight': torch.zeros(4)}}, buffer)
    records = []
    with zipfile.ZipFile(buffer) as archive:
        for info in archive.infolist():
            data = archive.read(info)
            if '/data/' in info.filename and not info.filename.endswith('.pkl'):
                records.append((info.filename, zipfile.ZIP_DEFLATED,
                                _deflated_zeros(inflated_bytes), inflated_bytes))
            else:
                records.append((info.filename, zipfile.ZIP_STORED, data, len(data)))
    path.write_bytes(_zip64(records))
    return path
