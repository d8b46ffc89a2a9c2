"""Preprocessing: the released rendering transform and camera frames of any size and encoding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pix2voxpp_ros.core.checkpoint import WeightsMetadata
from pix2voxpp_ros.core.preprocess import (ImageDecodeError, ImageInputError, decode_image,
                                           preprocess_frame, preprocess_rendering,
                                           rendering_crop, square_crop_box)

BG = (240 / 255 - 0.5) / 0.5


def test_transparent_rendering_becomes_background() -> None:
    rendering = np.zeros((137, 137, 4), np.uint8)
    rendering[:, :, :3] = 17  # colour under alpha 0 must not leak
    out = preprocess_rendering(rendering)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    assert np.allclose(out, BG)


def test_rendering_crop_and_channel_order() -> None:
    rendering = np.zeros((137, 137, 4), np.uint8)
    rendering[4:132, 4:132] = (0, 0, 255, 255)  # opaque red in OpenCV's BGRA inside the crop
    out = preprocess_rendering(rendering)
    assert np.allclose(out[2], 1.0) and np.allclose(out[:2], -1.0)  # BGR: red is channel 2
    rgb = preprocess_rendering(rendering, metadata=WeightsMetadata(channel_order='RGB'))
    assert np.allclose(rgb[0], 1.0) and np.allclose(rgb[1:], -1.0)


def test_rendering_matches_the_released_recipe() -> None:
    rng = np.random.default_rng(0)
    rendering = rng.integers(0, 256, (137, 137, 4), dtype=np.uint8)
    rendering[:40, :, 3] = 0
    image = cv2.resize(rendering.astype(np.float32)[4:132, 4:132] / 255, (224, 224))
    colour = np.where(image[:, :, 3:] == 0, 240 / 255, image[:, :, :3])
    expected = ((colour - 0.5) / 0.5).transpose(2, 0, 1)
    assert np.allclose(preprocess_rendering(rendering), expected, atol=1e-6)


@pytest.mark.parametrize('height, width, rows, columns', [
    (137, 137, (4, 132), (4, 132)),  # ShapeNet: (137 - 128) / 2 = 4.5, rounded down
    (160, 160, (16, 144), (16, 144)),
    (130, 140, (1, 129), (6, 134)),
    (129, 129, (0, 128), (0, 128)),
    (128, 200, (0, 128), (0, 200)),  # one side not above 128: no crop at all
    (100, 90, (0, 100), (0, 90)),
])
def test_rendering_crop_follows_the_released_transform_for_any_size(
        height: int, width: int, rows: tuple, columns: tuple) -> None:
    assert rendering_crop(height, width) == (slice(*rows), slice(*columns))
    rng = np.random.default_rng(height * width)
    rendering = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    rendering[..., 3] = 255
    kept = rendering[rows[0]:rows[1], columns[0]:columns[1]].astype(np.float32) / 255
    expected = (cv2.resize(kept, (224, 224))[:, :, :3] - 0.5) / 0.5
    np.testing.assert_allclose(preprocess_rendering(rendering), expected.transpose(2, 0, 1),
                               atol=1e-6)


def test_frame_encodings_agree() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    bgr = rgb[:, :, ::-1].copy()
    reference = preprocess_frame(rgb, encoding='rgb8')
    assert reference.shape == (3, 224, 224)
    assert np.allclose(preprocess_frame(bgr, encoding='bgr8'), reference)
    rgba = np.dstack([rgb, np.full((48, 64), 255, np.uint8)])
    assert np.allclose(preprocess_frame(rgba, encoding='rgba8'), reference)
    bgra = np.dstack([bgr, np.full((48, 64), 255, np.uint8)])
    assert np.allclose(preprocess_frame(bgra, encoding='bgra8'), reference)
    # The network gets BGR whatever the camera sends: channel 0 is the camera's blue.
    assert np.allclose(reference[0] * 0.5 + 0.5,
                       cv2.resize(rgb[:, 8:56, 2], (224, 224)) / 255, atol=1e-6)
    mono = preprocess_frame(rgb[:, :, 0], encoding='mono8')
    assert np.array_equal(mono[0], mono[1]) and np.array_equal(mono[1], mono[2])


def test_roi_square_crop_pads_with_background() -> None:
    image = np.full((100, 200, 3), 10, np.uint8)
    assert square_crop_box(100, 200, None) == (50, 0, 100, 100)
    assert square_crop_box(100, 200, (180, 40, 20, 10)) == (180, 35, 20, 20)
    out = preprocess_frame(image, encoding='bgr8', roi=(180, 40, 40, 40))  # half outside
    assert np.allclose(out[:, :, :100], (10 / 255 - 0.5) / 0.5, atol=1e-6)
    assert np.allclose(out[:, :, 124:], BG, atol=1e-6)


def test_frame_errors() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ImageInputError, match="unsupported encoding 'yuv422'"):
        preprocess_frame(image, encoding='yuv422')
    with pytest.raises(ImageInputError, match=r'rgba8 image must be \(H, W, 4\)'):
        preprocess_frame(image, encoding='rgba8')
    with pytest.raises(ImageInputError, match='empty 0×10 image'):
        preprocess_frame(np.zeros((10, 0, 3), np.uint8), encoding='rgb8')
    with pytest.raises(ImageInputError, match='outside the 10×10 image'):
        preprocess_frame(image, encoding='rgb8', roi=(20, 0, 5, 5))
    with pytest.raises(ImageInputError, match='must be uint8'):
        preprocess_frame(image.astype(np.float32), encoding='rgb8')


def test_decode_image_jpeg_png_and_what_it_refuses() -> None:
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), (7, 7), 2)
    png = cv2.imencode('.png', bgr)[1].tobytes()
    image, encoding = decode_image(png)
    assert encoding == 'bgr8' and np.array_equal(image, bgr)
    mono, encoding = decode_image(cv2.imencode('.png', bgr[:, :, 0])[1])
    assert encoding == 'mono8' and mono.shape == (40, 60)
    bgra = np.dstack([bgr, np.full((40, 60), 128, np.uint8)])
    assert decode_image(cv2.imencode('.png', bgra)[1].tobytes())[1] == 'bgra8'
    jpeg = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    image, encoding = decode_image(jpeg + b'\x00' * 16)  # padding after the end marker is fine
    assert encoding == 'bgr8' and np.abs(image.astype(int) - bgr).mean() < 3
    for data, match in ((b'', 'neither JPEG nor PNG'), (b'GIF89a....', 'neither JPEG nor PNG'),
                        (jpeg[:len(jpeg) // 2], 'truncated JPEG'),
                        (png[:len(png) // 2], 'corrupt or truncated'),
                        (cv2.imencode('.png', np.zeros((4, 4), np.uint16))[1].tobytes(),
                         'only 8 bits')):
        with pytest.raises(ImageDecodeError, match=match):
            decode_image(data)
    assert issubclass(ImageDecodeError, ImageInputError)
