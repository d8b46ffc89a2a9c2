"""Upper bounds on what hostile or broken input may make the node and its tools do, and why.

Each bound lies far beyond anything a real robot sends or sets, so it only ever stops a broken
camera, a corrupt file or an attack (a 629-byte JPEG declaring 30000x30000 pixels, a parameter
of 1e300 seconds) before it costs gigabytes or overflows. :func:`short_repr` shows user values
in messages at a bounded length, whatever their size or nesting. Pure Python.
"""

from __future__ import annotations

import reprlib
from typing import Any

# Pixels an image may declare before it is decoded or copied: 50 MP is six times a 4K frame
# (8.3 MP) and twice the largest machine-vision sensors; a 3-channel frame of it is 150 MB.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# max_image_pixels itself: the 2^30 pixels OpenCV's decoders refuse beyond anyway (3 GB a frame).
MAX_IMAGE_PIXELS_LIMIT = 1 << 30
# Views in one reconstruction (cameras, or key frames of one moving camera): the network was
# trained and evaluated with up to 20 views (ShapeNet renders 24 of each object), and memory
# grows with every view: the warm-up of Pix2Vox++/F on the CPU peaked 0.47 GB above 3 views'
# with 20 views, 1.34 GB with 64 (~21 MB a view), so 32 stays well under 1 GB.
MAX_VIEWS = 32
# Memory one view adds to a forward pass, bytes, by grid edge: its peak resident size grew
# 21 MB a view at 32³ and 330 MB at 128³ (the 8-channel 128³ volumes of the upsampling blocks;
# 3, 8 and 16 views of Pix2Vox++/F on the CPU, fp32). One pass holds at most
# MAX_FORWARD_BYTES: at 128³ that is 9 views, so a batch of objects runs in parts and one object
# of more views is refused rather than swapping a robot's computer to a halt.
VIEW_BYTES = {32: 21 << 20, 128: 330 << 20}
MAX_FORWARD_BYTES = 3 << 30
# CPU threads: libgomp fails to start thousands of threads (the node then crashed); no computer
# a robot carries has more than 256 hardware threads, and more threads than cores only slow.
MAX_THREADS = 256
# Any duration parameter, seconds: one day. Nanosecond arithmetic on larger values overflows
# (1e300 s), and no frame is worth keeping, waiting for or syncing over longer.
MAX_DURATION_S = 86_400.0
# max_rate_hz: above 0 (no limit), at least one reconstruction a day, and at most a million a
# second (a camera never delivers more frames than that; higher means "no limit" anyway).
MIN_RATE_HZ = 1.0 / MAX_DURATION_S
MAX_RATE_HZ = 1e6
# A region of interest's coordinates, pixels: beyond the widest sensors (16K video: 15360).
MAX_ROI_PX = 32_768
# roi_margin: the crop's side may be at most 11 times the region's longer side.
MAX_ROI_MARGIN = 10.0
# object_size_m: a reconstruction cube 1 km wide; the grid of 32 voxels means nothing beyond.
MAX_OBJECT_SIZE_M = 1_000.0
# An image's frame_id as kept for the TF look-up: TF frame names are short; a longer one is cut
# (its look-up then fails as no_transform) so a sender cannot make every frame carry megabytes.
MAX_FRAME_ID_CHARS = 256
# Characters of a user value shown in a message (log line, refusal).
MAX_SHOWN_CHARS = 80

_REPR = reprlib.Repr()
_REPR.maxlevel = 3  # nested lists (a YAML alias bomb) are shown three levels deep, then '...'
_REPR.maxlist = _REPR.maxtuple = _REPR.maxarray = _REPR.maxdict = 8
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_SHOWN_CHARS


def short_repr(value: Any) -> str:
    """``repr(value)`` at a bounded length: long strings and lists cut, deep nesting elided.

    Never walks more than a few levels or items, so a value built of shared references that
    would expand to gigabytes is shown in microseconds.
    """
    text = _REPR.repr(value)
    if len(text) > 4 * MAX_SHOWN_CHARS:  # maxlevel/maxlist bound it; belt and braces
        text = text[:4 * MAX_SHOWN_CHARS] + '...'
    return text


def shorten(text: str, limit: int = 4 * MAX_SHOWN_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f'{text[:limit]}... ({len(text) - limit} more characters)'
