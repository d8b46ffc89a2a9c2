"""Instance label images split into one mask per instance (multi-object input).

A segmenter gives each camera a label image: 0 is background, ``k > 0`` instance ``k`` of that
camera. Ids are the camera's own, arbitrary, and may change from frame to frame.

:func:`split_instances` turns one label image into ``{id: mask}`` in bounded time: one
``bincount`` over the pixels, then one comparison per kept id, at most ``max_instances``.
Pure numpy: no ROS.
"""

from __future__ import annotations

import numpy as np

from .errors import Pix2VoxError

#: Most instances a camera may hold (a label image).
MAX_INSTANCES = 32
#: Fewest pixels an instance of a label image needs to be kept.
MIN_PIXELS = 16
_LABEL_DTYPES = (np.uint8, np.uint16)


class InstanceError(Pix2VoxError, ValueError):
    """A label image, a mask set or a camera that cannot be split or matched, with the reason."""


def split_instances(labels: np.ndarray, *, max_instances: int = MAX_INSTANCES,
                    min_pixels: int = MIN_PIXELS) -> dict[int, np.ndarray]:
    """Split a label image into one bool mask per instance.

    Ids with fewer than ``min_pixels`` pixels (segmentation specks) are dropped. The pixels are
    counted once (``bincount``), so a flood of thousands of ids costs no more than a few.

    :param labels: ``(H, W)`` uint8 or uint16; 0 is background, ``k > 0`` instance ``k``.
    :returns: ``{id: (H, W) bool mask}`` in increasing id order.
    :raises InstanceError: another dtype or shape, bad limits, or more than ``max_instances`` ids
        of ``min_pixels`` pixels or more.
    """
    if max_instances < 1 or min_pixels < 1:
        raise InstanceError(f'max_instances and min_pixels must be >= 1, got {max_instances} '
                            f'and {min_pixels}')
    if not isinstance(labels, np.ndarray) or labels.dtype not in _LABEL_DTYPES:
        kind = labels.dtype if isinstance(labels, np.ndarray) else type(labels).__name__
        raise InstanceError(f'a label image is a uint8 or uint16 array, got {kind}')
    if labels.ndim != 2 or labels.size == 0:
        raise InstanceError(f'a label image is (H, W), got shape {labels.shape}')
    counts = np.bincount(labels.ravel())  # (max id + 1,), at most 65536 entries
    counts[0] = 0  # background
    kept = np.flatnonzero(counts >= min_pixels)
    if len(kept) > max_instances:
        raise InstanceError(f'{len(kept)} instances of {min_pixels} pixels or more in the label '
                            f'image, more than max_instances = {max_instances}')
    return {int(k): labels == k for k in kept}
