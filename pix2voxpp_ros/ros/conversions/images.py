"""Image conversions: sensor_msgs/Image and CompressedImage <-> uint8 arrays, and masks.

Small free functions, numpy in and message out, no node state. Where the robot has ``cv_bridge``
it is used; elsewhere this module's own few lines do the same with identical results (the tests
compare both paths). Every image is validated first (encoding, size, step, data length), so a
malformed message raises :class:`ImageConversionError` with a clear reason instead of an obscure
numpy error.
"""

from __future__ import annotations

import array
from typing import Optional

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ...core import preprocess
from ...core.errors import Pix2VoxError
from ...core.limits import DEFAULT_MAX_IMAGE_PIXELS, short_repr
from ...core.preprocess import ENCODINGS, ImageDecodeError, MaskError, check_pixels, decode_image
from .libraries import cv_bridge, use_library

COMPRESSED_FORMATS = ('jpeg', 'png')


class ImageConversionError(Pix2VoxError, ValueError):
    """An Image message is malformed: size, step or data length do not fit its encoding."""


class UnsupportedEncodingError(ImageConversionError):
    """An Image message uses an encoding the network cannot take."""


class OversizedImageError(ImageConversionError, preprocess.ImageTooLargeError):
    """An image declares more pixels than ``max_image_pixels``; nothing of it was decoded."""


def check_image(msg: Image, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
                ) -> tuple[int, int, int, int]:
    """Validate an Image message against its encoding.

    :param max_pixels: the most pixels ``width * height`` may be (``max_image_pixels``).
    :returns: ``(height, width, channels, step)``.
    :raises UnsupportedEncodingError: the encoding is not one of :data:`ENCODINGS`.
    :raises OversizedImageError: more than ``max_pixels`` pixels.
    :raises ImageConversionError: zero size, a step shorter than a row, or a data length other
        than ``step * height``.
    """
    if msg.encoding not in ENCODINGS:
        raise UnsupportedEncodingError(f'unsupported encoding {short_repr(msg.encoding)} '
                                       f'(supported: {", ".join(ENCODINGS)})')
    channels = ENCODINGS[msg.encoding][0]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f'zero-size {width}x{height} image')
    try:
        check_pixels(width, height, max_pixels=max_pixels)
    except preprocess.ImageTooLargeError as exc:
        raise OversizedImageError(str(exc)) from None
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(f'step {step} is shorter than a row of {width} {msg.encoding} '
                                   f'pixels ({row_bytes} bytes)')
    size = len(msg.data)
    if size != step * height:
        raise ImageConversionError(f'data holds {size} bytes, expected step x height = '
                                   f'{step} x {height} = {step * height}')
    return height, width, channels, step


def image_to_array(msg: Image, *, backend: str = 'auto',
                   max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Convert an Image message to a uint8 array without copying when rows are unpadded.

    :param msg: an image in one of :data:`ENCODINGS` (8 bits per channel).
    :param backend: ``auto`` (cv_bridge when importable), ``own`` or ``library`` (cv_bridge).
    :param max_pixels: see :func:`check_image`.
    :returns: ``(H, W)`` for ``mono8``, else ``(H, W, C)`` uint8, C-contiguous, channels as
        stored (no colour conversion; the preprocessing reorders them).
    :raises UnsupportedEncodingError: see :func:`check_image`.
    :raises ImageConversionError: see :func:`check_image`.
    """
    height, width, channels, step = check_image(msg, max_pixels=max_pixels)
    # Padded rows always take the own path: some cv_bridge releases ignore ``step``.
    if step == width * channels and use_library(backend, 'cv_bridge'):
        image = cv_bridge().imgmsg_to_cv2(msg, desired_encoding='passthrough')
    else:
        rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)
        image = rows[:, :width * channels].reshape(height, width, channels)
        if channels == 1:
            image = image[:, :, 0]
    return np.ascontiguousarray(image)


def array_to_image(
    image: np.ndarray,
    *,
    encoding: str,
    stamp: Optional[Time] = None,
    frame_id: str = '',
) -> Image:
    """Build an unpadded Image message from a uint8 array (for cameras, tests and benchmarks).

    :param image: ``(H, W)`` or ``(H, W, C)`` uint8 with C as ``encoding`` requires.
    :raises UnsupportedEncodingError: the encoding is not one of :data:`ENCODINGS`.
    :raises ImageConversionError: the array does not fit the encoding.
    """
    if encoding not in ENCODINGS:
        raise UnsupportedEncodingError(f'unsupported encoding {encoding!r}')
    channels = ENCODINGS[encoding][0]
    image = np.asarray(image)
    if image.ndim == 2 and channels == 1:
        image = image[:, :, None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != channels:
        raise ImageConversionError(f'{encoding} needs a uint8 (H, W, {channels}) array, got '
                                   f'{image.dtype} {image.shape}')
    height, width = image.shape[:2]
    msg = Image(header=Header(stamp=stamp or Time(), frame_id=frame_id), height=height,
                width=width, encoding=encoding, is_bigendian=0, step=width * channels)
    msg.data = array.array('B', np.ascontiguousarray(image).tobytes())
    return msg


def compressed_to_array(msg: CompressedImage, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
                        ) -> tuple[np.ndarray, str]:
    """Decode a CompressedImage (JPEG or PNG, whatever its ``format`` string says).

    :param max_pixels: the most pixels its header may declare; checked before decoding.
    :returns: the image and its encoding (``bgr8``, ``bgra8`` or ``mono8``), as
        :func:`pix2voxpp_ros.core.preprocess.decode_image` returns them.
    :raises OversizedImageError: the header declares more than ``max_pixels`` pixels.
    :raises ImageConversionError: corrupt, truncated or unsupported data.
    """
    try:
        return decode_image(memoryview(msg.data), max_pixels=max_pixels)
    except preprocess.ImageTooLargeError as exc:
        raise OversizedImageError(f'format {short_repr(msg.format)}: {exc}') from None
    except ImageDecodeError as exc:
        raise ImageConversionError(f'format {short_repr(msg.format)}: {exc}') from exc


def frame_to_array(msg: Image | CompressedImage, *, compressed: bool, backend: str = 'auto',
                   max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Convert a camera frame, raw or compressed, to its pixels and their encoding.

    :param compressed: ``msg`` is a CompressedImage (decoded by :func:`compressed_to_array`),
        else an Image (:func:`image_to_array`, with ``backend``).
    :param max_pixels: the most pixels the frame may declare (``max_image_pixels``).
    :raises UnsupportedEncodingError: an Image of an encoding the network cannot take.
    :raises OversizedImageError: a frame of more than ``max_pixels`` pixels.
    :raises ImageConversionError: a malformed Image, or corrupt compressed data.
    """
    if compressed:
        return compressed_to_array(msg, max_pixels=max_pixels)
    return image_to_array(msg, backend=backend, max_pixels=max_pixels), msg.encoding


def mask_to_array(msg: Image, *, backend: str = 'auto',
                  max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Convert a segmenter's mask message (mono8, nonzero on the object) to ``(H, W)`` uint8.

    :param max_pixels: the most pixels the mask may have (``max_image_pixels``).
    :raises MaskError: another encoding than mono8, a malformed message, or more than
        ``max_pixels`` pixels.
    """
    if msg.encoding != 'mono8':
        raise MaskError(f'mask encoding is {short_repr(msg.encoding)}, not mono8')
    try:
        return image_to_array(msg, backend=backend, max_pixels=max_pixels)
    except ImageConversionError as exc:
        raise MaskError(f'malformed mask: {exc}') from exc


LABEL_ENCODINGS = {'mono8': np.dtype(np.uint8), 'mono16': np.dtype(np.uint16)}


def labels_to_array(msg: Image, *, backend: str = 'auto',
                    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Convert an instance label image (mono8 or mono16, 0 background) to ``(H, W)`` labels.

    :param backend: for mono8, as :func:`mask_to_array` (mono16 is always converted here).
    :param max_pixels: the most pixels the image may declare (``max_image_pixels``).
    :returns: uint8 (mono8) or native-order uint16 (mono16, either ``is_bigendian``).
    :raises MaskError: another encoding, a malformed message, or more than ``max_pixels``.
    """
    dtype = LABEL_ENCODINGS.get(msg.encoding)
    if dtype is None:
        raise MaskError(f'label image encoding is {short_repr(msg.encoding)}, not mono8 or '
                        'mono16')
    if dtype == np.uint8:
        return mask_to_array(msg, backend=backend, max_pixels=max_pixels)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    try:
        check_pixels(width, height, max_pixels=max_pixels)
    except preprocess.ImageTooLargeError as exc:
        raise MaskError(f'oversized label image: {exc}') from None
    if height == 0 or width == 0 or step < 2 * width or len(msg.data) != step * height:
        raise MaskError(f'malformed label image: {width}x{height} mono16, step {step}, '
                        f'{len(msg.data)} bytes of data (expected step x height, step >= '
                        f'{2 * width})')
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)[:, :2 * width]
    stored = np.dtype('>u2') if msg.is_bigendian else np.dtype('<u2')
    return np.ascontiguousarray(rows).view(stored).astype(np.uint16)  # (H, W) native order


def labels_to_image(labels: np.ndarray, *, stamp: Optional[Time] = None,
                    frame_id: str = '') -> Image:
    """Build an instance label image: mono8 from uint8, mono16 (little-endian) from uint16.

    :raises ImageConversionError: not a ``(H, W)`` uint8 or uint16 array.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise ImageConversionError(f'a label image is (H, W) uint8 or uint16, got '
                                   f'{labels.dtype} {labels.shape}')
    if labels.dtype == np.uint8:
        return array_to_image(labels, encoding='mono8', stamp=stamp, frame_id=frame_id)
    height, width = labels.shape
    msg = Image(header=Header(stamp=stamp or Time(), frame_id=frame_id), height=height,
                width=width, encoding='mono16', is_bigendian=0, step=2 * width)
    msg.data = array.array('B', labels.astype('<u2').tobytes())
    return msg


def array_to_compressed(
    image: np.ndarray,
    *,
    encoding: str,
    image_format: str = 'jpeg',
    quality: int = 90,
    stamp: Optional[Time] = None,
    frame_id: str = '',
) -> CompressedImage:
    """Compress a uint8 image into a CompressedImage, as a camera's compressed transport does.

    The ``format`` field reads ``'<encoding>; jpeg compressed bgr8'`` (or ``png``): colour
    images are stored in OpenCV's BGR order, so any decoder gets the colours right.

    :param image_format: ``jpeg`` or ``png``.
    :param quality: JPEG quality, 1 .. 100.
    :raises ImageConversionError: the array does not fit the encoding, or the format is unknown.
    """
    if image_format not in COMPRESSED_FORMATS:
        raise ImageConversionError(f'format must be one of {", ".join(COMPRESSED_FORMATS)}, '
                                   f'got {image_format!r}')
    raw = array_to_image(image, encoding=encoding)  # validates shape and encoding
    channels, stored_bgr = ENCODINGS[encoding]
    pixels = np.asarray(image).reshape(raw.height, raw.width, channels)
    if channels == 1:
        target, pixels = 'mono8', pixels[:, :, 0]
    elif channels == 3:
        target, pixels = 'bgr8', pixels if stored_bgr else pixels[:, :, ::-1]
    else:
        target, pixels = 'bgra8', pixels if stored_bgr else pixels[:, :, [2, 1, 0, 3]]
    if image_format == 'jpeg' and channels == 4:
        target, pixels = 'bgr8', pixels[:, :, :3]  # JPEG has no alpha
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if image_format == 'jpeg' else []
    ok, data = cv2.imencode('.jpg' if image_format == 'jpeg' else '.png',
                            np.ascontiguousarray(pixels), params)
    if not ok:
        raise ImageConversionError(f'OpenCV could not encode a {encoding} image as {image_format}')
    msg = CompressedImage(header=Header(stamp=stamp or Time(), frame_id=frame_id),
                          format=f'{encoding}; {image_format} compressed {target}')
    msg.data = array.array('B', data.tobytes())
    return msg


def compressed_topic(topic: str) -> str:
    """Return the topic image_transport's ``compressed`` plugin uses for ``topic``'s images."""
    return topic.rstrip('/') + '/compressed'
