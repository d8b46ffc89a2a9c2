"""The size a JPEG or PNG declares in its header, read before anything is decoded.

A decoder allocates what the header declares: 629 bytes of JPEG can declare 30000x30000 pixels
(2.7 GB decoded). Reading the declared width and height first lets the caller refuse such data
for the price of a few byte comparisons. Pure Python over the raw bytes; no decoder involved.
"""

from __future__ import annotations

from typing import Optional

JPEG_START = b'\xff\xd8'
PNG_START = b'\x89PNG\r\n\x1a\n'
# Start-of-frame markers carry the frame size; C4 (Huffman tables), C8 (reserved) and CC
# (arithmetic conditioning) share the range but are no frames.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # markers without a length field
_SOS = 0xDA  # start of scan: the entropy-coded data follows, no frame header came first


def _be(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset:offset + size], 'big')


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    """Width and height of the first start-of-frame segment, or None when none comes first."""
    i, end = 2, len(data)
    while i + 4 <= end:
        if data[i] != 0xFF:  # stray bytes between segments: libjpeg skips to the next marker
            i = data.find(b'\xff', i)
            if i < 0:
                return None
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == _SOS:
            return None
        if marker in _SOF_MARKERS:
            if i + 9 > end:
                return None
            return _be(data, i + 7, 2), _be(data, i + 5, 2)  # X (width), then Y (height)
        i += 2 + _be(data, i + 2, 2)
    return None


def png_chunk_problem(data: bytes) -> Optional[str]:
    """Say what is wrong when a PNG chunk declares more bytes than the data holds, else None.

    Data that is no PNG gets None.

    A decoder may allocate a chunk's declared length before reading it: one flipped byte makes
    an 8 KB PNG ask for 4 GB. Chunks are walked until the image end (IEND) or the data's end.
    """
    if not data.startswith(PNG_START):
        return None
    i, end = len(PNG_START), len(data)
    while i + 8 <= end:
        length = _be(data, i, 4)
        if length > end - i - 12:  # length, type, data, CRC
            return (f'a PNG chunk at byte {i} declares {length} bytes; '
                    f'{max(end - i - 12, 0)} follow')
        if data[i + 4:i + 8] == b'IEND':
            return None
        i += 12 + length
    return None


def declared_size(data: bytes) -> Optional[tuple[int, int]]:
    """Return ``(width, height)`` as a JPEG's frame header or a PNG's IHDR declares them.

    :param data: the start of the file (a JPEG's frame header usually lies in its first few
        KB, after the EXIF and colour profile segments; pass the whole file to be sure).
    :returns: the declared size, or None when ``data`` is neither format or its header is
        missing or cut off (such data does not decode either).
    """
    if data.startswith(JPEG_START):
        return _jpeg_size(data)
    if data.startswith(PNG_START):
        if len(data) < 24 or data[12:16] != b'IHDR':  # IHDR must be the first chunk
            return None
        return _be(data, 16, 4), _be(data, 20, 4)
    return None
