"""The dataset reader, samples, batches and transforms on a tiny generated dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from pix2voxpp_ros.core.preprocess import RENDERING_FILL, preprocess_rendering, rendering_crop
from pix2voxpp_training.config import AugmentSection, DataSection
from pix2voxpp_training.data import (SampleKey, ShapeNetDataError, ShapeNetViews,
                                     ViewCountBatchSampler,
                                     list_objects, read_rendering, read_taxonomy)
from pix2voxpp_training.transforms import (IMAGENET_EIGVEC_RGB, TestTransform, TrainTransform,
                                           colour_jitter, crop_and_resize, lighting_noise,
                                           object_box_crop)


def test_splits_follow_the_taxonomy(tiny_data: Path) -> None:
    taxonomy = read_taxonomy(tiny_data / 'ShapeNet.json')
    for split in ('train', 'val', 'test'):
        records = list_objects(tiny_data, split, DataSection())
        assert [r.model_id for r in records] == [m for e in taxonomy for m in e[split]]
        assert all(r.voxel_path.is_file() and r.view_path(23).is_file() for r in records)


def test_category_filter_and_cap(tiny_data: Path) -> None:
    chairs = list_objects(tiny_data, 'train', DataSection(categories=('chair',)))
    assert {r.taxonomy_name for r in chairs} == {'chair'} and len(chairs) == 4
    capped = list_objects(tiny_data, 'train', DataSection(max_objects=3))
    assert len(capped) == 3
    assert {r.taxonomy_name for r in capped} == {'table', 'chair'}  # round-robin over categories
    with pytest.raises(ShapeNetDataError, match="unknown category 'plane'"):
        list_objects(tiny_data, 'train', DataSection(categories=('plane',)))


def _copy(tiny_data: Path, tmp_path: Path) -> Path:
    root = tmp_path / 'copy'
    shutil.copytree(tiny_data, root)
    return root


def test_missing_rendering_is_named(tiny_data: Path, tmp_path: Path) -> None:
    root = _copy(tiny_data, tmp_path)
    victim = list_objects(root, 'train', DataSection())[2].view_path(17)
    victim.unlink()
    with pytest.raises(ShapeNetDataError, match=f'{victim}: missing rendering'):
        list_objects(root, 'train', DataSection())


def test_missing_voxels_and_taxonomy_are_named(tiny_data: Path, tmp_path: Path) -> None:
    root = _copy(tiny_data, tmp_path)
    victim = list_objects(root, 'test', DataSection())[0].voxel_path
    victim.unlink()
    with pytest.raises(ShapeNetDataError, match=f'{victim}: missing voxel file'):
        list_objects(root, 'test', DataSection())
    (root / 'ShapeNet.json').unlink()
    with pytest.raises(ShapeNetDataError, match='ShapeNet.json: taxonomy file not found'):
        list_objects(root, 'train', DataSection())


def test_file_vanishing_after_listing_is_named(tiny_data: Path, tmp_path: Path) -> None:
    root = _copy(tiny_data, tmp_path)
    records = list_objects(root, 'train', DataSection())
    dataset = ShapeNetViews(records, train=False, transform=TestTransform(AugmentSection()))
    records[0].view_path(0).unlink()
    with pytest.raises(ShapeNetDataError, match=f'{records[0].view_path(0)}: missing'):
        dataset[SampleKey(0, 2, 0)]


def test_test_samples_use_the_released_transform(tiny_data: Path) -> None:
    records = list_objects(tiny_data, 'test', DataSection())
    dataset = ShapeNetViews(records, train=False, transform=TestTransform(AugmentSection()))
    sample = dataset[SampleKey(1, 3, 7)]
    assert sample['images'].shape == (3, 3, 224, 224) and sample['volume'].shape == (32, 32, 32)
    for view in range(3):
        expected = preprocess_rendering(read_rendering(records[1].view_path(view)))
        np.testing.assert_array_equal(sample['images'][view].numpy(), expected)


def test_training_samples_are_a_pure_function_of_the_key(tiny_data: Path) -> None:
    records = list_objects(tiny_data, 'train', DataSection())
    dataset = ShapeNetViews(records, train=True, transform=TrainTransform(AugmentSection()),
                            seed=5)
    a, b = dataset[SampleKey(2, 3, 1)], dataset[SampleKey(2, 3, 1)]
    assert torch.equal(a['images'], b['images'])
    assert not torch.equal(a['images'], dataset[SampleKey(2, 3, 2)]['images'])
    assert torch.equal(a['volume'], dataset[SampleKey(2, 1, 9)]['volume'])


def test_train_transform_without_randomness_is_the_test_transform(tiny_data: Path) -> None:
    off = AugmentSection(background=(240, 240), brightness=0.0, contrast=0.0, saturation=0.0,
                         lighting_std=0.0, flip_p=0.0, permute_channels=False)
    record = list_objects(tiny_data, 'train', DataSection())[0]
    bgra = [read_rendering(record.view_path(v)) for v in (0, 5)]
    train = TrainTransform(off)(bgra, np.random.default_rng(0))
    test = TestTransform(off)(bgra)
    np.testing.assert_allclose(train, test, atol=1e-6)


def test_background_flip_and_permutation(tiny_data: Path) -> None:
    record = list_objects(tiny_data, 'train', DataSection())[0]
    bgra = [read_rendering(record.view_path(v)) for v in range(6)]
    plain = AugmentSection(brightness=0.0, contrast=0.0, saturation=0.0, lighting_std=0.0,
                           flip_p=0.0, permute_channels=False)
    for seed in range(5):
        out = TrainTransform(plain)(bgra, np.random.default_rng(seed))
        corner = out[:, :, 0, 0] * 0.5 + 0.5  # the corners are background in every view
        level = corner[0] * 255
        assert np.all((level > 224.9) & (level < 255.1))
        np.testing.assert_allclose(corner, corner[:1].repeat(6, 0), atol=1e-6)  # one per sample
    flip = TrainTransform(AugmentSection(**{**plain.__dict__, 'flip_p': 1.0}))
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_allclose(flip(bgra, rng_a), TrainTransform(plain)(bgra, rng_b)[..., ::-1])
    permuted = TrainTransform(AugmentSection(**{**plain.__dict__, 'permute_channels': True}))
    out = permuted(bgra, np.random.default_rng(4))
    base = TrainTransform(plain)(bgra, np.random.default_rng(4))
    order = [next(c for c in range(3) if np.array_equal(out[:, k], base[:, c])) for k in range(3)]
    assert sorted(order) == [0, 1, 2]


def _object_box(image: np.ndarray) -> tuple[float, float, int]:
    """Centre (x, y) and longer side of the non-background pixels of one normalized view."""
    rows, columns = np.nonzero(np.abs(image * 0.5 + 0.5 - 240 / 255).max(axis=0) > 0.02)
    side = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
    return (columns.min() + columns.max()) / 2, (rows.min() + rows.max()) / 2, int(side)


def test_box_crop_frames_the_object_as_a_mask_crop_does(tiny_data: Path) -> None:
    record = list_objects(tiny_data, 'train', DataSection())[0]
    bgra = [read_rendering(record.view_path(v)) for v in range(6)]
    still = dict(background=(240, 240), brightness=0.0, contrast=0.0, saturation=0.0,
                 lighting_std=0.0, flip_p=0.0, permute_channels=False)
    boxed = TrainTransform(AugmentSection(**still, box_crop_p=1.0, box_crop_scale=0.0))
    centred = TrainTransform(AugmentSection(**still))(bgra, np.random.default_rng(0))
    out = boxed(bgra, np.random.default_rng(0))
    for view, original in zip(out, centred):
        x, y, side = _object_box(view)
        assert abs(x - 111.5) <= 2 and abs(y - 111.5) <= 2  # centred on the object's box
        assert abs(side - RENDERING_FILL * 224) <= 3  # filling the crop as MASK_MARGIN says
        assert not np.allclose(view, original, atol=1e-3)  # not the renderings' fixed crop
    # The side varies with box_crop_scale; with probability 1/2 about half the views are boxed.
    jittered = TrainTransform(AugmentSection(**still, box_crop_p=1.0, box_crop_scale=0.2))
    sides = {_object_box(v)[2] for v in jittered(bgra, np.random.default_rng(1))}
    assert len(sides) > 2
    half = TrainTransform(AugmentSection(**still, box_crop_p=0.5))
    many = [read_rendering(record.view_path(v % 24)) for v in range(40)]
    plain = TrainTransform(AugmentSection(**still))(many, np.random.default_rng(0))
    kept = sum(np.allclose(a, b, atol=1e-6)
               for a, b in zip(half(many, np.random.default_rng(2)), plain))
    assert 8 <= kept <= 32
    # A rendering with nothing on it falls back to the fixed crop.
    empty = np.zeros((137, 137, 4), np.uint8)
    np.testing.assert_array_equal(object_box_crop(empty), crop_and_resize([empty])[0])


def test_colour_jitter_and_lighting_statistics() -> None:
    colour = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32) * 0.5 + 0.25
    same = colour_jitter(colour, np.random.default_rng(3), brightness=0.0, contrast=0.0,
                         saturation=0.0)
    np.testing.assert_allclose(same, colour, atol=1e-6)
    ratios = [colour_jitter(colour, np.random.default_rng(s), brightness=0.4, contrast=0.0,
                            saturation=0.0).mean() / colour.mean() for s in range(200)]
    assert 0.6 - 1e-6 <= min(ratios) < 0.7 and 1.3 < max(ratios) <= 1.4 + 1e-6
    offsets = np.stack([(lighting_noise(colour, np.random.default_rng(s), std=0.1,
                                        eigval=(0.2175, 0.0188, 0.0045)) - colour)[0, 0, 0]
                        for s in range(2000)])
    # BGR offsets; their covariance is V diag((0.1 λ)²) Vᵀ in RGB order.
    expected = (IMAGENET_EIGVEC_RGB * (0.1 * np.array([0.2175, 0.0188, 0.0045])) ** 2
                ) @ IMAGENET_EIGVEC_RGB.T
    np.testing.assert_allclose(np.cov(offsets[:, ::-1].T), expected, atol=6e-5)


def test_view_count_batches_are_deterministic_and_shared() -> None:
    def batches(rank: int, epoch: int) -> list[list[SampleKey]]:
        sampler = DistributedSampler(range(10), num_replicas=2, rank=rank, shuffle=True, seed=1)
        batch_sampler = ViewCountBatchSampler(sampler, batch_size=2, min_views=2, max_views=5,
                                              seed=1)
        batch_sampler.set_epoch(epoch)
        return list(batch_sampler)

    first, again, other_rank = batches(0, 3), batches(0, 3), batches(1, 3)
    assert first == again and len(first) == 2
    assert all(len({k.views for k in batch}) == 1 for batch in first)
    assert [b[0].views for b in first] == [b[0].views for b in other_rank]
    assert {k.index for b in first for k in b}.isdisjoint({k.index for b in other_rank for k in b})
    views = {b[0].views for epoch in range(30) for b in batches(0, epoch)}
    assert views == {2, 3, 4, 5}


@pytest.mark.parametrize('height, width', [(137, 137), (160, 160), (130, 140), (128, 200)])
def test_training_crop_is_the_test_crop_for_any_size(height: int, width: int) -> None:
    rendering = np.random.default_rng(height).integers(0, 256, (height, width, 4), np.uint8)
    rows, columns = rendering_crop(height, width)
    kept = rendering[rows, columns].astype(np.float32) / 255
    np.testing.assert_allclose(crop_and_resize([rendering])[0], cv2.resize(kept, (224, 224)),
                               atol=1e-6)
