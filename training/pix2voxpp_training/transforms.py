"""Image transforms of training (the paper's augmentation) and testing (the released one).

All views of one sample go through a transform together as one ``(V, H, W, 4)`` BGRA stack, so
colour jitter, background, lighting noise and channel permutation are shared by the views of a
sample, as PIX2VOXPP.md specifies, while the horizontal flip is drawn per image. Every random
number comes from the ``numpy.random.Generator`` the caller passes in: a sample's augmentation is a
pure function of that generator's seed (see :func:`pix2voxpp_training.data.sample_rng`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pix2voxpp_ros.core.checkpoint import WeightsMetadata
from pix2voxpp_ros.core.preprocess import (MASK_MARGIN, crop_square, preprocess_rendering,
                                           rendering_crop, square_crop_box)

from .config import AugmentSection

# Principal components of ImageNet's RGB pixel covariance (Krizhevsky et al. 2012, as published
# with fb.resnet.torch): column j is the eigenvector of eigenvalue j; rows are R, G, B.
IMAGENET_EIGVEC_RGB = np.array([
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
], dtype=np.float32)

# ITU-R BT.601 luma weights in the images' B, G, R channel order.
_LUMA_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def crop_and_resize(bgra: Sequence[np.ndarray], *, size: int = 224) -> np.ndarray:
    """Centre-crop renderings to 128×128 and resize them as the released code does.

    :param bgra: ``V`` uint8 ``(H, W, 4)`` images as ``cv2.IMREAD_UNCHANGED`` reads them.
    :returns: ``(V, size, size, 4)`` float32 in [0, 1].
    """
    out = np.empty((len(bgra), size, size, 4), dtype=np.float32)
    for i, image in enumerate(bgra):
        rows, columns = rendering_crop(*image.shape[:2])
        out[i] = cv2.resize(image[rows, columns].astype(np.float32) / 255.0, (size, size))
    return out


def object_box_crop(bgra: np.ndarray, *, scale: float = 1.0, size: int = 224) -> np.ndarray:
    """Cut the square a mask crop cuts at deployment around a rendering's object, and resize it.

    The square is centred on the bounding box of the nonzero alpha, its side the box's longer
    side times ``(1 + MASK_MARGIN) * scale``, as ``preprocess_frame(mask=...)`` cuts around a
    segmentation mask; parts beyond the rendering are transparent. Training on such crops teaches
    the network the framing it meets behind a segmenter, where the object's apparent size no
    longer tells its size in the grid. A rendering without any object gets the centre crop.

    :param bgra: uint8 ``(H, W, 4)`` rendering.
    :returns: ``(size, size, 4)`` float32 in [0, 1].
    """
    rows, columns = np.nonzero(bgra[:, :, 3])
    if rows.size == 0:
        return crop_and_resize([bgra], size=size)[0]
    roi = (int(columns.min()), int(rows.min()), int(columns.max() - columns.min()) + 1,
           int(rows.max() - rows.min()) + 1)
    margin = (1.0 + MASK_MARGIN) * scale - 1.0
    x, y, side, _ = square_crop_box(*bgra.shape[:2], roi, margin=margin)
    square = crop_square(bgra, x, y, side, 0)
    return cv2.resize(square.astype(np.float32) / 255.0, (size, size))


#: Share of occluders that come in from below, as an object nearer to the camera on the same
#: table does in a view from above; the others come from any side.
OCCLUDER_FROM_BELOW = 0.6
_BISECTIONS = 14


def _occluder(shape: tuple[int, int], centre: tuple[float, float], half: tuple[float, float],
              turn_deg: float, ellipse: bool) -> np.ndarray:
    """Return the ``(H, W)`` bool silhouette of an ellipse or a turned rectangle."""
    canvas = np.zeros(shape, dtype=np.uint8)
    if ellipse:
        cv2.ellipse(canvas, (round(centre[0] * 16), round(centre[1] * 16)),
                    (round(half[0] * 16), round(half[1] * 16)), turn_deg, 0, 360, 1, -1,
                    cv2.LINE_8, 4)
    else:
        corners = cv2.boxPoints((centre, (2 * half[0], 2 * half[1]), turn_deg))
        cv2.fillConvexPoly(canvas, np.round(corners * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


def occluder_mask(alpha: np.ndarray, rng: np.random.Generator, *, share: float) -> np.ndarray:
    """Draw where an occluder in front of an object covers its rendering.

    The occluder is a convex blob, an ellipse or a turned rectangle (how a bottle, a mug or a
    box in front reads in an image), each half axis 0.3-0.8 of the object's box; it comes in
    from below (:data:`OCCLUDER_FROM_BELOW` of them) or from any side, and is moved along that
    direction until it hides about ``share`` of the object's pixels. The draws are the same
    whatever the image: a sample's augmentation stays a pure function of its generator.

    :param alpha: ``(H, W)`` the object's coverage, nonzero on the object.
    :param share: the share of the object's pixels to hide, in (0, 1).
    :returns: ``(H, W)`` bool, True under the occluder (empty for an image without object).
    """
    ellipse = rng.random() < 0.5
    half_axes = rng.uniform(0.3, 0.8, size=2)
    turn = float(rng.uniform(0.0, 180.0))
    below = rng.random() < OCCLUDER_FROM_BELOW
    towards_below, towards_any = rng.uniform(-60.0, 60.0), rng.uniform(0.0, 360.0)
    obj = alpha > 0
    rows, columns = np.nonzero(obj)
    if rows.size == 0:
        return np.zeros(obj.shape, dtype=bool)
    centre = (0.5 * (columns.min() + columns.max()), 0.5 * (rows.min() + rows.max()))
    size = float(max(columns.max() - columns.min(), rows.max() - rows.min()) + 1)
    half = (size * half_axes[0], size * half_axes[1])
    angle = np.radians(90.0 + towards_below if below else towards_any)  # 90: down the image
    step = np.array([np.cos(angle), np.sin(angle)])

    def cover(distance: float) -> np.ndarray:
        at = (centre[0] + distance * step[0], centre[1] + distance * step[1])
        return _occluder(obj.shape, at, half, turn, ellipse)

    def hidden(mask: np.ndarray) -> float:
        return float((mask & obj).sum()) / rows.size

    # Hidden share falls as the occluder moves out; find where it crosses ``share``.
    near, far = 0.0, size + max(half)
    if hidden(cover(near)) <= share:
        return cover(near)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (near + far)
        if hidden(cover(mid)) > share:
            near = mid
        else:
            far = mid
    return cover(far)


def occlude(bgra: np.ndarray, rng: np.random.Generator, *, share: float
            ) -> tuple[np.ndarray, np.ndarray]:
    """Hide part of a rendering's object behind an occluder, as a segmenter's mask would.

    The occluder's pixels (:func:`occluder_mask`) become transparent, as the pixels outside an
    object mask become background at deployment (``preprocess_frame(mask=...)``); cutting the
    result with :func:`object_box_crop` then frames what is left of the object as a crop
    around that mask does. An occluder that would hide the whole object hides nothing.

    :param bgra: uint8 ``(H, W, 4)`` rendering.
    :returns: the occluded rendering (a copy) and the occluder's ``(H, W)`` bool mask.
    """
    mask = occluder_mask(bgra[:, :, 3], rng, share=share)
    out = bgra.copy()
    out[mask] = 0
    if not out[:, :, 3].any():
        return bgra.copy(), np.zeros_like(mask)
    return out, mask


def _gray(colour: np.ndarray) -> np.ndarray:
    """Luma of ``(..., 3)`` BGR images, keeping a trailing channel axis of 1."""
    return (colour @ _LUMA_BGR)[..., None]


def colour_jitter(colour: np.ndarray, rng: np.random.Generator, *, brightness: float,
                  contrast: float, saturation: float) -> np.ndarray:
    """Scale brightness, contrast and saturation by ``U[1 - x, 1 + x]`` each, in random order.

    One draw for the whole stack: every view of a sample gets the same factors and order.
    Values are clipped to [0, 1] after each operation, as torchvision's float jitter does.

    :param colour: ``(V, H, W, 3)`` float32 BGR in [0, 1].
    """
    factors = {
        'brightness': rng.uniform(1.0 - brightness, 1.0 + brightness),
        'contrast': rng.uniform(1.0 - contrast, 1.0 + contrast),
        'saturation': rng.uniform(1.0 - saturation, 1.0 + saturation),
    }
    order = rng.permutation(3)
    names = ('brightness', 'contrast', 'saturation')
    for index in order:
        name = names[index]
        factor = np.float32(factors[name])
        if name == 'brightness':
            colour = colour * factor
        elif name == 'contrast':
            mean = _gray(colour).mean(axis=(1, 2, 3), keepdims=True)  # per image
            colour = colour * factor + mean * (1.0 - factor)
        else:
            colour = colour * factor + _gray(colour) * (1.0 - factor)
        colour = np.clip(colour, 0.0, 1.0)
    return colour


def lighting_noise(colour: np.ndarray, rng: np.random.Generator, *, std: float,
                   eigval: Sequence[float]) -> np.ndarray:
    """Add AlexNet-style PCA lighting noise: one RGB offset per sample, applied in BGR order.

    :param colour: ``(V, H, W, 3)`` float32 BGR.
    """
    alpha = rng.normal(0.0, std, size=3).astype(np.float32)
    offset_rgb = IMAGENET_EIGVEC_RGB @ (alpha * np.asarray(eigval, dtype=np.float32))
    return colour + offset_rgb[::-1]


class TrainTransform:
    """Apply the paper's training transform.

    Crop (optionally around the object: :func:`object_box_crop`; optionally a part of the
    object hidden behind an occluder first: :func:`occlude`), random background, jitter,
    lighting, normalize, flip, channel permutation (PIX2VOXPP.md, "Training").
    """

    def __init__(self, augment: AugmentSection, *, metadata: WeightsMetadata | None = None
                 ) -> None:
        """:param metadata: input size and normalization (the released weights' by default)."""
        self.augment = augment
        self.metadata = metadata or WeightsMetadata()

    def __call__(self, bgra: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Transform the views of one sample.

        :param bgra: ``V`` uint8 ``(137, 137, 4)`` renderings.
        :param rng: this sample's generator.
        :returns: ``(V, 3, 224, 224)`` float32, normalized, channels in BGR order (before the
            random permutation).
        """
        aug = self.augment
        images = crop_and_resize(bgra, size=self.metadata.input_size)
        if aug.box_crop_p > 0:  # draws nothing otherwise: the paper's streams stay as they were
            for i in np.flatnonzero(rng.random(len(images)) < aug.box_crop_p):
                scale = rng.uniform(1.0 - aug.box_crop_scale, 1.0 + aug.box_crop_scale)
                images[i] = object_box_crop(bgra[i], scale=scale, size=self.metadata.input_size)
        if aug.occlusion_p > 0:  # draws nothing otherwise, as box_crop_p
            # An occluded view is always cut around what is left: the node crops around the
            # mask, which the occluder has cut.
            for i in np.flatnonzero(rng.random(len(images)) < aug.occlusion_p):
                hidden, _ = occlude(bgra[i], rng, share=rng.uniform(*aug.occlusion_share))
                scale = rng.uniform(1.0 - aug.box_crop_scale, 1.0 + aug.box_crop_scale)
                images[i] = object_box_crop(hidden, scale=scale, size=self.metadata.input_size)
        colour, alpha = images[..., :3], images[..., 3:]
        low, high = aug.background
        background = rng.integers(low, high + 1, size=3).astype(np.float32) / 255.0
        colour = np.where(alpha == 0, background, colour)
        colour = colour_jitter(colour, rng, brightness=aug.brightness, contrast=aug.contrast,
                               saturation=aug.saturation)
        colour = lighting_noise(colour, rng, std=aug.lighting_std, eigval=aug.lighting_eigval)
        mean = np.asarray(self.metadata.mean, dtype=np.float32)
        std = np.asarray(self.metadata.std, dtype=np.float32)
        colour = (colour - mean) / std
        flips = rng.random(len(colour)) < aug.flip_p
        colour[flips] = colour[flips, :, ::-1]
        if aug.permute_channels:
            colour = colour[..., rng.permutation(3)]
        return np.ascontiguousarray(colour.transpose(0, 3, 1, 2), dtype=np.float32)


class TestTransform:
    """The released test transform (:func:`preprocess_rendering`), applied to every view."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, augment: AugmentSection, *, metadata: WeightsMetadata | None = None
                 ) -> None:
        """:param augment: only ``test_background`` is used."""
        self.metadata = metadata or WeightsMetadata()
        self.background = augment.test_background / 255.0

    def __call__(self, bgra: Sequence[np.ndarray], rng: np.random.Generator | None = None
                 ) -> np.ndarray:
        """Return ``(V, 3, 224, 224)`` float32; ``rng`` is ignored (the transform is fixed)."""
        return np.stack([preprocess_rendering(image, metadata=self.metadata,
                                              background=self.background) for image in bgra])
