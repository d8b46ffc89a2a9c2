"""Occlusion as augmentation: an occluder's pixels leave the object, the crop frames the rest.

The node feeds the network crops around a segmenter's mask, and an object half behind a
distractor has a mask of its visible half; these tests check that the training transform makes
that input, for the share of the views the configuration asks, and nothing else by default.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pix2voxpp_ros.core.preprocess import RENDERING_FILL, preprocess_frame
from pix2voxpp_ros.core.synthetic import Camera, make_object, render_view
from pix2voxpp_training.config import AugmentSection, TrainingConfigError, TrainConfig
from pix2voxpp_training.transforms import TrainTransform, occlude, occluder_mask

# Jitter, lighting, flips and permutations off, one background level, every view cut around
# its object at the mask crop's size: only the occluders change an image.
STILL = dict(background=(240, 240), brightness=0.0, contrast=0.0, saturation=0.0,
             lighting_std=0.0, flip_p=0.0, permute_channels=False, box_crop_p=1.0,
             box_crop_scale=0.0)


def _renderings(count: int) -> list[np.ndarray]:
    """BGRA renderings as the dataset stores them: chairs, cars and lamps from several sides."""
    out = []
    for k in range(count):
        obj = make_object(('chair', 'car', 'lamp')[k % 3], seed=k // 3)
        rgba = render_view(obj, Camera(40.0 * k, 27.0, 0.0, 0.8), supersample=2)
        out.append(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    return out


def test_occluder_pixels_leave_the_object_and_hide_about_the_share() -> None:
    rng = np.random.default_rng(0)
    for bgra in _renderings(12):
        for share in (0.15, 0.4):
            hidden, mask = occlude(bgra, rng, share=share)
            object_px = (bgra[:, :, 3] > 0).sum()
            assert (hidden[mask] == 0).all()  # transparent: outside the mask, background
            np.testing.assert_array_equal(hidden[~mask], bgra[~mask])  # the rest untouched
            achieved = ((bgra[:, :, 3] > 0) & mask).sum() / object_px
            assert abs(achieved - share) < 0.05, (achieved, share)
            assert hidden[:, :, 3].any()


def test_occluders_come_from_below_mostly_and_are_pure_functions_of_the_generator() -> None:
    bgra = _renderings(1)[0]
    alpha = bgra[:, :, 3]
    rows = np.nonzero(alpha)[0]
    centre_row = 0.5 * (rows.min() + rows.max())
    below = 0
    for seed in range(40):
        mask = occluder_mask(alpha, np.random.default_rng(seed), share=0.3)
        np.testing.assert_array_equal(mask, occluder_mask(alpha, np.random.default_rng(seed),
                                                          share=0.3))
        below += np.nonzero(mask & (alpha > 0))[0].mean() > centre_row
    assert 24 <= below <= 38  # 60 % from below, and about half of the others
    # The same number of draws whatever the image, an empty one included.
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert not occluder_mask(np.zeros_like(alpha), a, share=0.3).any()
    occluder_mask(alpha, b, share=0.3)
    assert a.random() == b.random()


def test_occluded_view_is_cut_around_what_is_left_as_the_node_cuts_its_mask() -> None:
    bgra = _renderings(2)[1]  # a car
    transform = TrainTransform(AugmentSection(**STILL, occlusion_p=1.0,
                                              occlusion_share=(0.4, 0.4)))
    view = transform([bgra], np.random.default_rng(3))[0]  # (3, 224, 224)
    # The same occluder, drawn as the transform drew it (after the box crop's draws and the
    # occlusion's choice), and the node's input for that object: the frame with the mask of
    # its visible part.
    rng = np.random.default_rng(3)
    rng.random(1)  # the box crop's choice
    rng.uniform(1.0, 1.0)  # its scale
    rng.random(1)  # the occlusion's choice
    hidden, _ = occlude(bgra, rng, share=rng.uniform(0.4, 0.4))
    node = preprocess_frame(np.ascontiguousarray(bgra[:, :, :3]), encoding='bgr8',
                            mask=(hidden[:, :, 3] > 0).astype(np.uint8) * 255,
                            roi_margin=-1.0)  # the node's default: MASK_MARGIN

    def box(image: np.ndarray) -> tuple[float, float, int]:
        rows, columns = np.nonzero(np.abs(image * 0.5 + 0.5 - 240 / 255).max(axis=0) > 0.05)
        side = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
        return (columns.min() + columns.max()) / 2, (rows.min() + rows.max()) / 2, int(side)

    x, y, side = box(view)
    assert abs(x - 111.5) <= 2 and abs(y - 111.5) <= 2  # centred on the visible part
    assert abs(side - RENDERING_FILL * 224) <= 3  # filling the crop as a mask crop does
    nx, ny, nside = box(node)
    assert abs(nx - x) <= 2 and abs(ny - y) <= 2 and abs(nside - side) <= 3
    # Where both show the object they agree (the network's input, normalized); without the
    # occluder the view is another one.

    def shown(image: np.ndarray) -> np.ndarray:
        return np.abs(image * 0.5 + 0.5 - 240 / 255).max(axis=0) > 0.05

    both = shown(view) & shown(node)
    assert both.sum() > 0.9 * shown(node).sum()
    assert np.median(np.abs(view - node).max(axis=0)[both]) < 0.15
    whole = TrainTransform(AugmentSection(**STILL))([bgra], np.random.default_rng(3))[0]
    assert not np.allclose(view, whole, atol=0.05)


def test_the_configured_share_of_views_is_occluded() -> None:
    views = _renderings(60)
    plain = TrainTransform(AugmentSection(**STILL))(views, np.random.default_rng(7))
    occluding = TrainTransform(AugmentSection(**STILL, occlusion_p=0.3))
    some = occluding(views, np.random.default_rng(7))
    occluded = sum(not np.allclose(a, b, atol=1e-6) for a, b in zip(plain, some))
    assert 9 <= occluded <= 27  # 18 expected


def test_off_by_default_draws_nothing_more() -> None:
    # The generator's state after the transform, pinned before occlusion existed: the paper's
    # transform and synthetic_f.yaml's draw exactly what they drew.
    views = [render_view(make_object('chair', seed=s), Camera(30.0 * s, 27.0))[..., [2, 1, 0, 3]]
             for s in range(3)]
    for augment, state in ((AugmentSection(), 112068449084371214141380148430079791719),
                           (AugmentSection(box_crop_p=0.5),
                            179661501532950718833053590158648142238)):
        assert augment.occlusion_p == 0.0
        rng = np.random.default_rng(5)
        TrainTransform(augment)(views, rng)
        assert rng.bit_generator.state['state']['state'] == state


@pytest.mark.parametrize('key, value, needle', [
    ('occlusion_p', 1.5, r'augment.occlusion_p: must be in \[0, 1\]'),
    ('occlusion_share', [0.5, 0.2], 'augment.occlusion_share: must be'),
    ('occlusion_share', [0.0, 0.2], 'augment.occlusion_share: must be'),
])
def test_bad_occlusion_settings_are_named(key: str, value, needle: str) -> None:
    with pytest.raises(TrainingConfigError, match=needle):
        TrainConfig.from_dict({'augment': {key: value}})
