"""Golden digests of the synthetic generator: the order of its random draws *is* the dataset.

Two objects of every category for dataset seed 7, through the public API: the parts' parameters
(every float the category's draws produced), the solid 32³ voxels, the two sampled cameras'
metadata lines, one anti-aliased and one hard-edged rendering. Any change of a draw's order,
a formula or a default changes a digest here, and every dataset written with that seed with it.

The digests were checked equal on numpy 1.26 and 2.4, and with numpy's SIMD kernels disabled
(``NPY_DISABLE_CPU_FEATURES``), so they hold on both tiers and other x86-64 CPUs. The parts'
floats are hashed rounded to 1e-9: their last bits differ between CPUs (an AVX2 machine and an
AVX-512 one gave two different digests for mug/1 and airplane/1 while every voxel and pixel was
the same), which is no change of the dataset.
Regenerate them only for an intended change of the datasets, and say so in the commit.
"""

import dataclasses
import hashlib

import numpy as np
import pytest

from pix2voxpp_ros.core.synthetic import (CATEGORIES, category, dataset_object, object_seed,
                                          render_view, sample_r2n2_cameras, voxelize)

SEED = 7
# 'category/index': (parts, voxels, camera metadata, view 0 supersample 2, view 1 supersample 1)
GOLDEN = {
    'table/0': ('ad499fea5786ccc1', '579027e1d195f4c6', '2891abe27e03f0ed', '919470a62ec6e7af',
                '47965a7ae91fd660'),
    'table/1': ('beadfaed156b837f', '06fb26ca783bfff6', '00af97e6c6004e5f', 'd3a6de67226898ce',
                'bc7b8c885cc4d62a'),
    'chair/0': ('3df6bdf2f8923d9e', '3b3dee2650c48186', '0a44c1248ffb3d35', 'da80f5479ce3e975',
                '6ea05ea1dd53874e'),
    'chair/1': ('e0ffc7b438a0a071', '873ef22bc6bc3be4', 'ba8e8b5eb07dd8d8', '60bf4343c1d4bef0',
                '2b7ceb879254ce52'),
    'lamp/0': ('759cd30768d64b42', 'adc057d491f58fae', '494930122124755b', '174d073eaa555a43',
               '3448d8d8f98f47d6'),
    'lamp/1': ('f5157652582155ec', 'bc5b046e6cac450c', 'aced8753b74e9efb', 'ada30336aba763ff',
               '41137f88e1cae4d2'),
    'airplane/0': ('145037877448a4b8', '1b7b88dd9ffab605', 'd2b96659f30f7390', '479fa0a2a432dd0f',
                   'be160bb740231f14'),
    'airplane/1': ('2d0cfe72acd9a168', '288c384b5ce0789c', '3ea8c267291c9ba4', 'd61fb7106d51fd4f',
                   'ee3f7f1b9c37bcde'),
    'car/0': ('6bb5284e1cdb2d46', 'be3dd93e081ec90b', '5aad993299eb26da', 'b3c2ad0b19dc8cc2',
              'f4a803b021ff860a'),
    'car/1': ('9147bdbc203db63a', 'e277d2a2a0f0e85e', '9ce6208f5eb93ec5', '1536ad1834025a46',
              '7ee67f2ce82db25c'),
    'mug/0': ('1110afde364781c2', '9917bde80533cf48', 'a3d7118ffc787a51', 'e34af50a4ccbac2c',
              'fe202080a725ccb2'),
    'mug/1': ('425a3d6ea57af2d1', '04603eb548291314', '3830798f8801670f', '20336a0b2d323657',
              'a8928eaa2f8a112e'),
    'bottle/0': ('b69ecb7ff96d51c2', 'ba032ac8fe3f3594', '799c5800e088e47e', 'f9b1dcd9a4ab90df',
                 '8038ae3e0b4a3b6f'),
    'bottle/1': ('403ca036e54a3a6b', 'a99bf8c0052d25ca', 'cb724f6ea9e8a79e', 'abc6a774eae61efd',
                 '4941eac7b3a7dc2f'),
    'sofa/0': ('47ded40eb5a10cfb', '9c0c37ce76dbdb2c', 'bcdfa317b78e5041', '4b3ecc78dae93fd8',
               '83bef7951e5c36a0'),
    'sofa/1': ('e69b1783f5f1d85e', 'a2243e50798adf0e', 'c955b96b9fb173ba', 'b8ea30f63a39c426',
               '206dee45e9bc0b92'),
}
FIELDS = ('parts', 'voxels', 'cameras', 'view0', 'view1')


def _array_digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def _parts_digest(parts) -> str:
    """Digest of every part's kind and field values, as float64 bytes rounded to 1e-9."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(type(part).__name__.encode())
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            digest.update(bytes([value]) if isinstance(value, bool)
                          else (np.round(np.asarray(value, dtype=np.float64), 9) + 0.0).tobytes())
    return digest.hexdigest()[:16]


def _digests(name: str, index: int) -> tuple[str, ...]:
    obj = dataset_object(name, index, seed=SEED)
    obj_seed = object_seed(SEED, category(name).taxonomy_id, index)
    cameras = sample_r2n2_cameras(np.random.default_rng([obj_seed, 1]), 2)  # as generate_model
    metadata = ''.join(c.metadata_line() for c in cameras).encode()
    return (_parts_digest(obj.parts), _array_digest(voxelize(obj)),
            hashlib.sha256(metadata).hexdigest()[:16],
            _array_digest(render_view(obj, cameras[0], supersample=2)),
            _array_digest(render_view(obj, cameras[1])))


def test_every_category_is_pinned():
    assert {key.split('/')[0] for key in GOLDEN} == set(CATEGORIES)


@pytest.mark.parametrize('key', sorted(GOLDEN))
def test_generator_output_is_unchanged(key):
    name, index = key.split('/')
    actual = dict(zip(FIELDS, _digests(name, int(index))))
    assert actual == dict(zip(FIELDS, GOLDEN[key]))
