"""Instance label images split into one mask per instance (core, no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.instances import InstanceError, split_instances


def test_split_instances_masks_and_specks():
    labels = np.zeros((12, 10), np.uint16)
    labels[0:4, 0:5] = 3          # 20 pixels
    labels[6:10, 6:10] = 40000    # 16 pixels: exactly min_pixels
    labels[11, 0:5] = 9           # 5 pixels: a speck
    masks = split_instances(labels)
    assert list(masks) == [3, 40000]
    for k, mask in masks.items():
        assert mask.dtype == bool and mask.shape == labels.shape
        np.testing.assert_array_equal(mask, labels == k)
    # As uint8, 40000 wraps to 64; with min_pixels 5 the speck counts.
    assert list(split_instances(labels.astype(np.uint8), min_pixels=5)) == [3, 9, 64]
    assert split_instances(np.zeros((4, 4), np.uint8)) == {}


def test_a_label_flood_is_refused():
    blocks = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) + 1  # 4096 ids
    flood = np.kron(blocks, np.ones((8, 8), np.uint16))  # (512, 512), 64 pixels each
    with pytest.raises(InstanceError, match='4096 instances'):
        split_instances(flood)
    noise = np.random.default_rng(0).integers(0, 256, size=(480, 640), dtype=np.uint8)
    with pytest.raises(InstanceError, match='max_instances = 32'):
        split_instances(noise)
    # Every id of a uint16 noise image is a speck: nothing is kept, nothing is refused.
    specks = np.random.default_rng(1).permutation(65536).astype(np.uint16).reshape(256, 256)
    assert split_instances(specks) == {}
    assert len(split_instances(flood, max_instances=4096)) == 4096


@pytest.mark.parametrize('labels', [np.zeros((4, 4), np.float32), np.zeros((4, 4), np.int32),
                                    np.zeros((4, 4), bool), np.zeros((4, 4, 3), np.uint8),
                                    np.zeros(16, np.uint8), np.zeros((0, 4), np.uint8),
                                    [[0, 1], [1, 0]]])
def test_split_instances_refuses_other_images(labels):
    with pytest.raises(InstanceError, match='label image'):
        split_instances(labels)


def test_instance_error_is_a_package_value_error():
    assert issubclass(InstanceError, Pix2VoxError) and issubclass(InstanceError, ValueError)
    with pytest.raises(InstanceError, match='>= 1'):
        split_instances(np.zeros((4, 4), np.uint8), max_instances=0)
