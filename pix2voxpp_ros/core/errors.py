"""The one base of every error this package raises on purpose.

Each concern keeps its own small error type (a checkpoint error, an image input error, a
parameter error, ...) and all of them derive from :class:`Pix2VoxError`, so a CLI or the node
can catch "anything the package refused" in one clause and still tell the kinds apart.
"""

from __future__ import annotations


class Pix2VoxError(Exception):
    """Base of the package's own errors: an input, file or setting it refuses, with a reason."""
