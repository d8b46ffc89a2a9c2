"""Reading the ShapeNet / 3D-R2N2 layout: taxonomy, object lists, samples and batches.

Layout (PIX2VOXPP.md): ``<data>/ShapeNet.json`` lists categories and their train/val/test model
ids; ``ShapeNetRendering/<taxonomy>/<model>/rendering/NN.png`` are the 24 views and
``ShapeNetVox32/<taxonomy>/<model>/model.binvox`` the ground truth.

Determinism: a sample is addressed by a :class:`SampleKey` ``(index, views, epoch)`` and all its
randomness (which views, every augmentation) comes from :func:`sample_rng` of the run's seed and
that key. The result therefore does not depend on DataLoader workers, process count or the order
in which batches are produced; the batch sampler draws the number of views of each batch from the
seed and epoch, identically on every rank.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Union

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from pix2voxpp_ros.core.errors import Pix2VoxError
from pix2voxpp_ros.core.voxels import VoxelFileError, read_binvox

from .config import DataSection
from .transforms import TestTransform, TrainTransform

PathLike = Union[str, Path]

SPLITS = ('train', 'val', 'test')
RESOLUTION = 32  # ShapeNetVox32's grids; a 128³ network reads 128³ ones (ShapeNetViews)


class ShapeNetDataError(Pix2VoxError, RuntimeError):
    """The dataset is missing, incomplete or malformed; the message names the file."""


@dataclass(frozen=True)
class ObjectRecord:
    """One object of a split: its category, id and files."""

    taxonomy_id: str
    taxonomy_name: str
    model_id: str
    rendering_dir: Path
    voxel_path: Path

    def view_path(self, view: int) -> Path:
        """Return the file of rendering ``view`` (``00.png`` … ``23.png``)."""
        return self.rendering_dir / f'{view:02d}.png'


class SampleKey(NamedTuple):
    """Which sample to produce: object index, number of views, epoch (seeds the randomness)."""

    index: int
    views: int
    epoch: int = 0


def read_taxonomy(path: PathLike) -> list[dict[str, Any]]:
    """Read and check a 3D-R2N2 taxonomy file (``ShapeNet.json``).

    :raises ShapeNetDataError: missing or unreadable file, or an entry without the required keys.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ShapeNetDataError(f'{path}: taxonomy file not found (is --data the folder that '
                                'holds ShapeNet.json, ShapeNetRendering and ShapeNetVox32?)'
                                ) from exc
    except (OSError, ValueError) as exc:
        raise ShapeNetDataError(f'{path}: cannot read taxonomy JSON ({exc})') from exc
    if not isinstance(entries, list):
        raise ShapeNetDataError(f'{path}: expected a list of categories')
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or 'taxonomy_id' not in entry:
            raise ShapeNetDataError(f'{path}: category #{number} has no taxonomy_id')
        for split in SPLITS:
            if not isinstance(entry.get(split, []), list):
                raise ShapeNetDataError(f'{path}: category {entry["taxonomy_id"]} {split!r} is '
                                        'not a list')
    return entries


def _select_categories(entries: list[dict[str, Any]], wanted: Sequence[str] | None,
                       path: Path) -> list[dict[str, Any]]:
    if wanted is None:
        return entries
    selected = []
    for name in wanted:
        matches = [e for e in entries
                   if name in (str(e['taxonomy_id']), str(e.get('taxonomy_name', '')))]
        if not matches:
            known = ', '.join(f'{e["taxonomy_id"]} ({e.get("taxonomy_name", "?")})'
                              for e in entries)
            raise ShapeNetDataError(f'{path}: unknown category {name!r}; known: {known}')
        selected.extend(m for m in matches if m not in selected)
    return selected


def _check_files(record: ObjectRecord, views: int) -> None:
    if not record.voxel_path.is_file():
        raise ShapeNetDataError(f'{record.voxel_path}: missing voxel file of object '
                                f'{record.taxonomy_id}/{record.model_id} (dataset incomplete)')
    try:
        present = set(os.listdir(record.rendering_dir))
    except OSError as exc:
        raise ShapeNetDataError(f'{record.rendering_dir}: missing rendering folder of object '
                                f'{record.taxonomy_id}/{record.model_id} (dataset incomplete)'
                                ) from exc
    for view in range(views):
        if f'{view:02d}.png' not in present:
            raise ShapeNetDataError(f'{record.view_path(view)}: missing rendering of object '
                                    f'{record.taxonomy_id}/{record.model_id} (dataset incomplete)')


def list_objects(root: PathLike, split: str, data: DataSection, *, verify: bool = True
                 ) -> list[ObjectRecord]:
    """List the objects of a split, filtered by category and capped by ``data.max_objects``.

    The cap takes objects round-robin over the categories, so a small cap still covers all of
    them. Order is deterministic: category order of the taxonomy, then the file's model order.

    :param root: the dataset folder (holds the taxonomy file and both data folders).
    :param split: ``'train'``, ``'val'`` or ``'test'``.
    :param verify: check that every selected object has its voxel file and all renderings.
    :raises ShapeNetDataError: unknown split or category, missing taxonomy, or a missing file
        (named).
    """
    if split not in SPLITS:
        raise ShapeNetDataError(f'unknown split {split!r}; use one of {", ".join(SPLITS)}')
    root = Path(root)
    if not root.is_dir():
        raise ShapeNetDataError(f'{root}: dataset folder not found')
    taxonomy_path = root / data.taxonomy
    entries = _select_categories(read_taxonomy(taxonomy_path), data.categories, taxonomy_path)
    per_category = [[ObjectRecord(str(e['taxonomy_id']), str(e.get('taxonomy_name', '')),
                                  str(model_id),
                                  root / data.renderings / str(e['taxonomy_id']) / str(model_id)
                                  / 'rendering',
                                  root / data.voxels / str(e['taxonomy_id']) / str(model_id)
                                  / 'model.binvox')
                     for model_id in e.get(split, [])] for e in entries]
    if data.max_objects is None:
        records = [r for group in per_category for r in group]
    else:
        records = []
        depth = 0
        while len(records) < data.max_objects and any(depth < len(g) for g in per_category):
            records.extend(g[depth] for g in per_category if depth < len(g))
            depth += 1
        records = records[:data.max_objects]
        order = {id(r): i for i, r in enumerate(r for g in per_category for r in g)}
        records.sort(key=lambda r: order[id(r)])
    if verify:
        for record in records:
            _check_files(record, data.views_per_model)
    return records


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Return the generator of one sample's randomness.

    It is a pure function of seed, epoch and index.
    """
    return np.random.default_rng([seed, epoch, index])


def read_rendering(path: Path) -> np.ndarray:
    """Read one rendering as OpenCV does, BGRA uint8.

    :raises ShapeNetDataError: the file is missing or not a 4-channel image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ShapeNetDataError(f'{path}: missing or unreadable rendering')
    if image.ndim != 3 or image.shape[2] != 4:
        raise ShapeNetDataError(f'{path}: expected an RGBA rendering, got shape {image.shape}')
    return image


def read_volume(path: Path, resolution: int = RESOLUTION) -> np.ndarray:
    """Read a ground-truth grid as float32 ``(R, R, R)``.

    :param resolution: the edge R the grid must have (the network's).
    :raises ShapeNetDataError: missing or malformed file, or a grid of another size.
    """
    try:
        grid, _, _ = read_binvox(path)
    except VoxelFileError as exc:
        raise ShapeNetDataError(str(exc)) from exc
    if grid.shape != (resolution,) * 3:
        raise ShapeNetDataError(f'{path}: expected a {resolution}³ grid, got {grid.shape}')
    return grid.astype(np.float32)


class ShapeNetViews(Dataset):
    """Samples of a split: ``images (V, 3, 224, 224)`` and ``volume (R, R, R)``.

    Training samples take a random subset of the object's views and the training transform;
    testing samples take views ``0..V-1`` and the released test transform.
    """

    def __init__(self, records: Sequence[ObjectRecord], *, train: bool,
                 transform: TrainTransform | TestTransform, seed: int = 0,
                 views_per_model: int = 24, default_views: int = 1,
                 resolution: int = RESOLUTION) -> None:
        """:param default_views: views of a sample addressed by a plain integer index.

        :param resolution: the edge of the grids to read (32, or 128 for a 128³ network).
        """
        self.records = list(records)
        self.resolution = resolution
        self.train = train
        self.transform = transform
        self.seed = seed
        self.views_per_model = views_per_model
        self.default_views = default_views

    def __len__(self) -> int:
        """Return the number of objects."""
        return len(self.records)

    def __getitem__(self, key: SampleKey | int) -> dict[str, Any]:
        """Load a sample; ``key`` is a :class:`SampleKey` or an object index.

        :raises ShapeNetDataError: a file of the object is missing or malformed (named).
        """
        if not isinstance(key, SampleKey):
            key = SampleKey(int(key), self.default_views, 0)
        record = self.records[key.index]
        if not 1 <= key.views <= self.views_per_model:
            raise ShapeNetDataError(f'asked for {key.views} views; objects have '
                                    f'{self.views_per_model}')
        rng = sample_rng(self.seed, key.epoch, key.index)
        if self.train:
            views = rng.choice(self.views_per_model, size=key.views, replace=False)
        else:
            views = np.arange(key.views)
        bgra = [read_rendering(record.view_path(int(v))) for v in views]
        images = self.transform(bgra, rng)
        return {
            'images': torch.from_numpy(images),
            'volume': torch.from_numpy(read_volume(record.voxel_path, self.resolution)),
            'taxonomy_id': record.taxonomy_id,
            'index': key.index,
        }


class ViewCountBatchSampler(Sampler[list[SampleKey]]):
    """Group a sampler's indices into batches whose number of views is drawn per batch.

    The count of batch ``b`` of an epoch is uniform in ``[min_views, max_views]`` from a
    generator of ``(seed, epoch)``: every rank of a distributed run draws the same sequence.
    """

    def __init__(self, sampler: Sampler[int], *, batch_size: int, min_views: int,
                 max_views: int, seed: int, drop_last: bool = True) -> None:
        """:param sampler: yields object indices (e.g. a ``DistributedSampler``)."""
        self.sampler = sampler
        self.batch_size = batch_size
        self.min_views = min_views
        self.max_views = max_views
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (reshuffles a ``DistributedSampler`` and reseeds the view counts)."""
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        """Return the number of batches per epoch."""
        count = len(self.sampler)  # type: ignore[arg-type]
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[list[SampleKey]]:
        """Yield lists of :class:`SampleKey`, one list per batch."""
        rng = np.random.default_rng([self.seed, self.epoch, 0x71E])
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                views = int(rng.integers(self.min_views, self.max_views + 1))
                yield [SampleKey(i, views, self.epoch) for i in batch]
                batch = []
        if batch and not self.drop_last:
            views = int(rng.integers(self.min_views, self.max_views + 1))
            yield [SampleKey(i, views, self.epoch) for i in batch]


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch; categories and indices stay Python lists."""
    return {
        'images': torch.stack([s['images'] for s in samples]),  # (B, V, 3, 224, 224)
        'volume': torch.stack([s['volume'] for s in samples]),  # (B, R, R, R)
        'taxonomy_id': [s['taxonomy_id'] for s in samples],
        'index': torch.tensor([s['index'] for s in samples], dtype=torch.long),
    }


def make_train_loader(dataset: ShapeNetViews, *, batch_size: int, min_views: int,
                      max_views: int, seed: int, workers: int, rank: int = 0,
                      world_size: int = 1, pin_memory: bool = False
                      ) -> tuple[DataLoader, ViewCountBatchSampler]:
    """Build the shuffled training loader of one process.

    ``DistributedSampler`` also serves the single-process case: its shuffle is a pure function
    of seed and epoch, which makes resumed runs draw the same batches.

    :param batch_size: samples per batch of this process.
    :returns: the loader and its batch sampler (call ``set_epoch`` on it each epoch).
    :raises ShapeNetDataError: the split holds fewer objects than one batch.
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=seed, drop_last=False)
    batches = ViewCountBatchSampler(sampler, batch_size=batch_size, min_views=min_views,
                                    max_views=max_views, seed=seed, drop_last=True)
    if len(batches) == 0:
        raise ShapeNetDataError(f'the training split has {len(dataset)} objects, fewer than one '
                                f'batch of {batch_size * world_size}; lower --batch-size or add '
                                'objects')
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                        pin_memory=pin_memory, persistent_workers=False)
    return loader, batches


def make_eval_loader(dataset: ShapeNetViews, *, views: int, batch_size: int, workers: int,
                     rank: int = 0, world_size: int = 1, pin_memory: bool = False
                     ) -> DataLoader:
    """Build an unshuffled loader over this rank's share (``index % world_size == rank``).

    Unlike ``DistributedSampler`` nothing is padded, so gathering the shares counts every
    object exactly once.
    """
    indices = list(range(rank, len(dataset), world_size))
    batches = [[SampleKey(i, views, 0) for i in indices[start:start + batch_size]]
               for start in range(0, len(indices), batch_size)]
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory)
