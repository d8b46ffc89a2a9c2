"""Image preprocessing: ShapeNet renderings as the released test code does, and camera frames.

Both paths end in the same place: a float32 ``(3, 224, 224)`` array in the channel order the
weights were trained with (BGR for the released weights, see :class:`WeightsMetadata`), normalized
with the weights' mean and std.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .checkpoint import WeightsMetadata
from .errors import Pix2VoxError
from .image_header import JPEG_START, PNG_START, declared_size, png_chunk_problem
from .limits import DEFAULT_MAX_IMAGE_PIXELS

RENDERING_SIZE = 137
RENDERING_CROP_SIZE = 128  # the authors' test transform keeps the centre 128×128 of a rendering

# Channels of each supported encoding, and whether the colour channels are stored B, G, R.
ENCODINGS: dict[str, tuple[int, bool]] = {
    'rgb8': (3, False), 'bgr8': (3, True), 'rgba8': (4, False), 'bgra8': (4, True),
    'mono8': (1, False),
}

Roi = tuple[int, int, int, int]  # x_offset, y_offset, width, height in pixels

# The longer side of an object's bounding box over the side of the network's input square in the
# training renderings: median 0.566 over 256 synthetic renderings (8 categories x 4 objects x 8
# views, seed 0; 10th-90th percentile 0.47-0.72), measured by benchmarks/measure_fill.py. A crop
# around a mask gets the margin that makes the object fill it as much.
RENDERING_FILL = 0.57
MASK_MARGIN = 1.0 / RENDERING_FILL - 1.0


class ImageInputError(Pix2VoxError, ValueError):
    """An image has an unsupported encoding, shape or region of interest."""


class MaskError(ImageInputError):
    """An object mask does not fit its image: another size, or not one uint8 channel."""


class EmptyMaskError(MaskError):
    """An object mask marks no pixel: the segmenter did not find the object."""


def mask_box(mask: np.ndarray, *, height: int, width: int) -> Roi:
    """Return the bounding box ``(x, y, width, height)`` of a mask's nonzero pixels.

    :param mask: ``(H, W)`` or ``(H, W, 1)`` uint8, nonzero on the object.
    :param height: the image's height, which the mask must have.
    :param width: the image's width.
    :raises MaskError: another size, dtype or channel count than the image's one channel.
    :raises EmptyMaskError: no pixel is set.
    """
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise MaskError(f'a mask must be (H, W) uint8, got {mask.dtype} {mask.shape}')
    if mask.shape != (height, width):
        raise MaskError(f'mask is {mask.shape[1]}×{mask.shape[0]}, its image {width}×{height}')
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        raise EmptyMaskError('the mask marks no pixel')
    columns = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
    return (int(columns[0]), int(rows[0]), int(columns[-1] - columns[0] + 1),
            int(rows[-1] - rows[0] + 1))


class ImageDecodeError(ImageInputError):
    """Compressed image data is corrupt, truncated, or not an 8-bit JPEG or PNG."""


class ImageTooLargeError(ImageInputError):
    """An image declares more pixels than ``max_image_pixels`` (it is refused undecoded)."""


def check_pixels(width: int, height: int, *, max_pixels: int, what: str = 'image') -> None:
    """Refuse a ``width`` × ``height`` image of more than ``max_pixels`` pixels.

    :raises ImageTooLargeError: naming the size and the limit.
    """
    if width * height > max_pixels:
        raise ImageTooLargeError(f'{what} declares {width}×{height} = {width * height} pixels, '
                                 f'more than max_image_pixels {max_pixels} (not decoded)')


_JPEG_END = b'\xff\xd9'
_DECODED_ENCODINGS = {1: 'mono8', 3: 'bgr8', 4: 'bgra8'}  # channels OpenCV returns -> encoding


def decode_image(data: bytes | bytearray | memoryview | np.ndarray, *,
                 max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Decode JPEG or PNG bytes (a camera's compressed frame) with OpenCV.

    The size the header declares is checked first: a small file declaring a huge image (a
    decompression bomb) is refused before the decoder allocates anything.

    :param max_pixels: the most pixels the image may declare (``max_image_pixels``).
    :returns: the image as OpenCV decodes it (``(H, W)`` or ``(H, W, C)`` uint8) and its
        encoding: ``mono8``, ``bgr8`` or ``bgra8`` (OpenCV's colour order).
    :raises ImageDecodeError: the data is neither JPEG nor PNG, is truncated (a JPEG without
        its end marker, which some decoders would return half-grey), does not decode, or
        decodes to anything but 8 bits per channel.
    :raises ImageTooLargeError: the header declares more than ``max_pixels`` pixels.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else \
        data.reshape(-1).view(np.uint8)
    head = buffer[:8].tobytes()
    if head.startswith(JPEG_START):
        # Encoders may pad after the end marker; none leaves it out of a complete image.
        if _JPEG_END not in buffer[-64:].tobytes():
            raise ImageDecodeError(f'truncated JPEG: no end marker in its last bytes '
                                   f'({buffer.size} bytes)')
    elif not head.startswith(PNG_START):
        raise ImageDecodeError(f'neither JPEG nor PNG data (starts with {head[:4].hex()}, '
                               f'{buffer.size} bytes)')
    data = buffer.tobytes()
    size = declared_size(data)
    if size is None:
        raise ImageDecodeError(f'no {"JPEG frame" if head.startswith(JPEG_START) else "PNG"} '
                               f'header with the image size ({buffer.size} bytes)')
    check_pixels(*size, max_pixels=max_pixels)
    problem = png_chunk_problem(data)
    if problem:
        raise ImageDecodeError(f'corrupt or truncated image data ({buffer.size} bytes): {problem}')
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageDecodeError(f'corrupt or truncated image data ({buffer.size} bytes)')
    if image.dtype != np.uint8:
        raise ImageDecodeError(f'decoded to {image.dtype}; only 8 bits per channel are '
                               'supported')
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in _DECODED_ENCODINGS:
        raise ImageDecodeError(f'decoded to {channels} channels')
    if image.ndim == 3 and channels == 1:
        image = image[:, :, 0]
    return image, _DECODED_ENCODINGS[channels]


def _normalize_chw(image: np.ndarray, metadata: WeightsMetadata) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], network channel order -> normalized (3, H, W) float32."""
    mean = np.asarray(metadata.mean, dtype=np.float32)
    std = np.asarray(metadata.std, dtype=np.float32)
    return np.ascontiguousarray(((image - mean) / std).transpose(2, 0, 1), dtype=np.float32)


def rendering_crop(height: int, width: int, *, crop: int = RENDERING_CROP_SIZE
                   ) -> tuple[slice, slice]:
    """Rows and columns the authors' centre crop keeps of a ``height`` × ``width`` rendering.

    As their test (and training) transform does: when both sides exceed ``crop``, the centred
    ``crop`` × ``crop`` window, its start ``(side - crop) / 2`` rounded down (4:132 of 137);
    otherwise the whole image (which is then resized, aspect ratio and all).
    """
    if height > crop and width > crop:
        top, left = (height - crop) // 2, (width - crop) // 2
        return slice(top, top + crop), slice(left, left + crop)
    return slice(0, height), slice(0, width)


def preprocess_rendering(
    bgra: np.ndarray,
    *,
    metadata: WeightsMetadata | None = None,
    background: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Apply the released test transform to a ShapeNet rendering as OpenCV reads it.

    Order as in the released code: centre crop (:func:`rendering_crop`, 4:132 of 137), resize to
    224 (bilinear, all four channels),
    fully transparent pixels (alpha exactly 0 after resizing) set to the background, normalize.

    :param bgra: ``(H, W, 4)`` uint8 as ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` returns
        (ShapeNet's renderings are 137×137).
    :param metadata: the weights' input description; defaults to the released weights'.
    :param background: grey level or per-channel colour in [0, 1] (network order) for alpha 0;
        defaults to ``metadata.background`` (240/255).
    :returns: ``(3, 224, 224)`` float32.
    :raises ImageInputError: the array is not a 4-channel image.
    """
    metadata = metadata or WeightsMetadata()
    if bgra.ndim != 3 or bgra.shape[2] != 4:
        raise ImageInputError(f'expected an (H, W, 4) BGRA rendering, got shape {bgra.shape}')
    rows, columns = rendering_crop(*bgra.shape[:2])
    image = bgra[rows, columns].astype(np.float32) / 255.0
    size = metadata.input_size
    image = cv2.resize(image, (size, size))
    transparent = image[:, :, 3:4] == 0
    colour = image[:, :, :3]
    if metadata.channel_order == 'RGB':
        colour = colour[:, :, ::-1]
    fill = np.broadcast_to(np.asarray(metadata.background if background is None else background,
                                      dtype=np.float32), (3,))
    colour = np.where(transparent, fill, colour)
    return _normalize_chw(colour, metadata)


def square_crop_box(height: int, width: int, roi: Roi | None, *, margin: float = 0.0) -> Roi:
    """Return the square ``(x, y, side, side)`` to cut from an image, possibly beyond its border.

    Without a region of interest: the largest centred square. With one: a square centred on the
    region, its side the region's longer side times ``1 + margin``.

    :raises ImageInputError: the region is empty or lies outside the image.
    """
    if roi is None:
        side = min(height, width)
        return (width - side) // 2, (height - side) // 2, side, side
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0 or x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ImageInputError(f'region of interest {roi} is empty or outside the '
                              f'{width}×{height} image')
    side = max(1, int(round(max(w, h) * (1.0 + margin))))
    cx, cy = x + w / 2.0, y + h / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side, side


def _shrink(square: np.ndarray, size: int) -> np.ndarray:
    """Resize a square image to ``size``: halve with a Gaussian pyramid, then bilinear.

    Each pyramid level low-passes before it drops every other pixel, so large camera frames are
    shrunk without aliasing at a quarter of the cost of area interpolation (0.25 against 1.0 ms
    for 480 -> 224 here); the last step shrinks by less than 2, where bilinear suffices.
    """
    while square.shape[0] >= 2 * size:
        square = cv2.pyrDown(square)
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)


def crop_square(image: np.ndarray, x: int, y: int, side: int, fill: int) -> np.ndarray:
    """Cut the square at (x, y); parts beyond the border get ``fill``, alpha 0 (4 channels)."""
    height, width = image.shape[:2]
    if x >= 0 and y >= 0 and x + side <= width and y + side <= height:
        return image[y:y + side, x:x + side]  # a view: no copy on the common path
    square = np.full((side, side) + image.shape[2:], fill, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        square[:, :, 3] = 0
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    square[y0 - y:y1 - y, x0 - x:x1 - x] = image[y0:y1, x0:x1]
    return square


def preprocess_frame(
    image: np.ndarray,
    *,
    encoding: str,
    roi: Roi | None = None,
    roi_margin: float = 0.0,
    mask: np.ndarray | None = None,
    metadata: WeightsMetadata | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> np.ndarray:
    """Turn a camera frame of any size into the network's input.

    The frame is cut to a square (centred, or around ``roi``; parts beyond the border get the
    background colour), resized to 224 (a Gaussian pyramid when shrinking), converted to the
    weights' channel order and normalized. With an alpha channel, alpha 0 becomes background.
    With an object mask the square is centred on the mask's bounding box (``roi`` is ignored)
    and every pixel outside the mask becomes background, as transparent pixels of a rendering
    do; the mask is shrunk like the image, so the object's outline is blended, not jagged.

    :param image: ``(H, W, C)`` or ``(H, W)`` uint8 in the layout ``encoding`` names.
    :param encoding: one of :data:`ENCODINGS`: ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``.
    :param roi: optional ``(x, y, width, height)`` region of interest in pixels.
    :param roi_margin: fraction added to the region's (or the mask box's) longer side; negative
        means :data:`MASK_MARGIN`, which makes the object fill the crop as objects fill the
        training renderings.
    :param mask: optional ``(H, W)`` uint8 object mask of the image's size, nonzero on the object.
    :param metadata: the weights' input description; defaults to the released weights'.
    :param max_pixels: the most pixels a crop reaching beyond the image may have (its padding
        is allocated): ``max_image_pixels``.
    :returns: ``(3, 224, 224)`` float32.
    :raises ImageInputError: unknown encoding, a shape that does not match it, an empty image, a
        region outside the image, or a crop of more than ``max_pixels`` beyond the image.
    :raises MaskError: a mask of another size or type (:class:`EmptyMaskError`: an empty one).
    """
    metadata = metadata or WeightsMetadata()
    image, channels, stored_bgr = _check_frame(image, encoding)
    height, width = image.shape[:2]
    if mask is not None:
        roi = mask_box(mask, height=height, width=width)
    margin = MASK_MARGIN if roi_margin < 0 else roi_margin
    x, y, side, _ = square_crop_box(height, width, roi, margin=margin)
    if side * side > max(max_pixels, height * width):  # a crop inside the image costs nothing
        raise ImageInputError(f'the {side}×{side} crop around {roi} (margin {margin:g}) has '
                              f'more than max_image_pixels {max_pixels} pixels: does the '
                              f'region of interest fit this {width}×{height} image?')
    square = crop_square(image, x, y, side, int(round(metadata.background * 255.0)))

    size = metadata.input_size
    resized = _shrink(square, size)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    chw = _to_network(resized, _network_sources(channels, stored_bgr, metadata), metadata)
    mean = np.asarray(metadata.mean, dtype=np.float32)
    std = np.asarray(metadata.std, dtype=np.float32)
    background = ((metadata.background - mean) / std).astype(np.float32)[:, None, None]
    if channels == 4:
        transparent = resized[:, :, 3] == 0
        chw[:, transparent] = background[:, :, 0]
    if mask is not None:
        mask2d = mask.reshape(height, width)
        alpha = _shrink(crop_square(mask2d, x, y, side, 0), size).astype(np.float32)
        alpha *= 1.0 / max(float(mask2d.max()), 1.0)  # 255 or 1 both mean "object"
        chw -= background
        chw *= alpha
        chw += background
    return chw


def _check_frame(image: np.ndarray, encoding: str) -> tuple[np.ndarray, int, bool]:
    """Check a frame against its encoding; return it as ``(H, W, C)``, C and "stored BGR".

    :raises ImageInputError: unknown encoding, a shape or type that does not match it, or an
        empty image.
    """
    if encoding not in ENCODINGS:
        raise ImageInputError(f'unsupported encoding {encoding!r}; supported: '
                              f'{", ".join(ENCODINGS)}')
    channels, stored_bgr = ENCODINGS[encoding]
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] != channels:
        raise ImageInputError(f'{encoding} image must be (H, W, {channels}), got {image.shape}')
    if image.dtype != np.uint8:
        raise ImageInputError(f'{encoding} image must be uint8, got {image.dtype}')
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageInputError(f'empty {width}×{height} image')
    return image, channels, stored_bgr


def _network_sources(channels: int, stored_bgr: bool, metadata: WeightsMetadata
                     ) -> tuple[int, int, int]:
    """Source channel of each network channel: the weights' order whatever the camera's."""
    if channels == 1:
        return (0, 0, 0)
    if stored_bgr == (metadata.channel_order == 'BGR'):
        return (0, 1, 2)
    return (2, 1, 0)


def _to_network(resized: np.ndarray, sources: Sequence[int], metadata: WeightsMetadata
                ) -> np.ndarray:
    """``(S, S, C)`` uint8 -> ``(3, S, S)`` float32 ``(x / 255 - mean) / std``, channels reordered.

    One multiply-add per channel, straight from the uint8 pixels.
    """
    size = resized.shape[0]
    mean = np.asarray(metadata.mean, dtype=np.float32)
    std = np.asarray(metadata.std, dtype=np.float32)
    scale, offset = 1.0 / (255.0 * std), -mean / std
    chw = np.empty((3, size, size), dtype=np.float32)
    for channel, source in enumerate(sources):
        np.multiply(resized[:, :, source], scale[channel], out=chw[channel], casting='unsafe')
        chw[channel] += offset[channel]
    return chw
