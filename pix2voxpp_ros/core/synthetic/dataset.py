"""Writer of a synthetic dataset in ShapeNet's file layout as prepared by 3D-R2N2.

Layout under the output folder::

    ShapeNet.json                                              categories and splits
    ShapeNetRendering/<taxonomy_id>/<model_id>/rendering/      00.png … 23.png (137×137 RGBA),
                                                               renderings.txt,
                                                               rendering_metadata.txt
    ShapeNetVox32/<taxonomy_id>/<model_id>/model.binvox        solid 32³ grid
    (or ShapeNetVox128/.../model.binvox, a solid 128³ grid, with ``resolution=128``)
    recipe.json                                                the recipe, unless plain r2n2

A 128³ dataset (for the 128³ network) builds every object faithful to the 128³ grid
(:func:`~.shapes.make_object` with ``resolution=128``: the same draws as the 32³ object of its
seed, snapped four times as finely), renders it and writes its 128³ grid only: such an object's
thin parts are thinner than a 32³ voxel, so a 32³ grid of it would not be the voxel-faithful
ground truth of ShapeNetVox32. One folder holds one resolution; the other's voxel folder in it is
refused.

The recipe (:mod:`.recipes`) chooses the objects' variety and the cameras: ``r2n2`` writes what
every earlier version wrote, ``robot`` the wide variety seen from where robots look. One folder
holds one recipe.

Everything is a pure function of ``(seed, recipe, category, index)``: object shape, views and
model id come from hashes of those values, never from the order in which worker processes
finish, and PNGs are written with a fixed compression level, so the same seed and recipe give
byte-identical files. Model ids depend on the seed, category and index only: object ``i`` of
two recipes has one id (the same object where the varieties agree).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from ..errors import Pix2VoxError
from ..voxels import write_binvox
from .render import render_view
from .recipes import RECIPE_FILE, RECIPES, Recipe
from .shapes import CATEGORIES, SyntheticObject, category, make_object
from .lattice import RESOLUTION
from .voxelize import voxelize

PathLike = Union[str, Path]

#: Views per model, as in ShapeNetRendering.
VIEWS = 24
#: Grids a dataset can be written at: ShapeNetVox32's and the 128³ network's.
RESOLUTIONS = (32, 128)
#: Default train / val / test fractions.
DEFAULT_SPLIT = (0.7, 0.1, 0.2)
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]
# No published baseline exists for synthetic categories; the key set matches ShapeNet.json.
_BASELINE = {f'{n}-view': 0.0 for n in range(1, 6)}


class DatasetError(Pix2VoxError, ValueError):
    """Invalid arguments for writing a dataset."""


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` wrote.

    :ivar root: the output folder.
    :ivar models: taxonomy id → model ids, in index order.
    :ivar splits: taxonomy id → ``{'train': [...], 'val': [...], 'test': [...]}``.
    :ivar seconds: wall time of the generation.
    """

    root: Path
    models: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        """Number of models written."""
        return sum(len(ids) for ids in self.models.values())

    @property
    def objects_per_second(self) -> float:
        """Generation speed (views and voxels of one model count as one object)."""
        return self.count / self.seconds if self.seconds > 0 else float('inf')


def _digest(seed: int, taxonomy_id: str, index: int, purpose: str, size: int) -> bytes:
    text = f'pix2voxpp-synth/{purpose}/{seed}/{taxonomy_id}/{index}'.encode('ascii')
    return hashlib.blake2b(text, digest_size=size).digest()


def model_id(seed: int, taxonomy_id: str, index: int) -> str:
    """Return the 32-hex-digit model id of object ``index`` of a category for a dataset seed."""
    return _digest(seed, taxonomy_id, index, 'id', 16).hex()


def object_seed(seed: int, taxonomy_id: str, index: int) -> int:
    """Return the per-object seed (63 bits) derived from the dataset seed, category and index."""
    return int.from_bytes(_digest(seed, taxonomy_id, index, 'object', 8), 'big') >> 1


def dataset_object(name: str, index: int, *, seed: int, resolution: int = RESOLUTION,
                   variety: str = 'classic') -> SyntheticObject:
    """Rebuild object ``index`` of a category exactly as :func:`write_dataset` made it.

    :param resolution: the dataset's grid (32 or 128).
    :param variety: the dataset recipe's variety (``recipe.json``; ``classic`` without one).
    :raises UnknownCategoryError: unknown category.
    """
    cat = category(name)
    return make_object(cat.name, seed=object_seed(seed, cat.taxonomy_id, index),
                       resolution=resolution, variety=variety)


def voxel_folder(resolution: int) -> str:
    """Return the folder of a resolution's grids: ``ShapeNetVox32`` or ``ShapeNetVox128``."""
    return f'ShapeNetVox{resolution}'


def generate_model(root: PathLike, name: str, index: int, *, seed: int, views: int = VIEWS,
                   supersample: int = 2, resolution: int = RESOLUTION,
                   recipe: Recipe = RECIPES['r2n2']) -> str:
    """Write the renderings, metadata and voxels of one model; return its model id.

    :param root: dataset folder (``ShapeNetRendering`` and ``ShapeNetVox<resolution>`` go below
        it).
    :param name: category name or taxonomy id.
    :param index: object index within the category.
    :param seed: dataset seed.
    :param views: number of renderings.
    :param supersample: anti-aliasing factor of the renderings (1: hard edges, alpha 0 or 255).
    :param resolution: the grid the object is built for and voxelized at, 32 or 128.
    :param recipe: the objects' variety and the cameras (:mod:`.recipes`).
    :raises UnknownCategoryError: unknown category.
    """
    cat = category(name)
    mid = model_id(seed, cat.taxonomy_id, index)
    obj_seed = object_seed(seed, cat.taxonomy_id, index)
    obj = make_object(cat.name, seed=obj_seed, resolution=resolution, variety=recipe.variety)
    grid = voxelize(obj, resolution=resolution)
    cameras = recipe.sample_cameras(obj_seed, grid, views)
    root = Path(root)
    render_dir = root / 'ShapeNetRendering' / cat.taxonomy_id / mid / 'rendering'
    render_dir.mkdir(parents=True, exist_ok=True)
    names = [f'{k:02d}.png' for k in range(views)]
    for file_name, camera in zip(names, cameras):
        rgba = render_view(obj, camera, supersample=supersample)
        ok, png = cv2.imencode('.png', cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), _PNG_PARAMS)
        if not ok:
            raise OSError(f'OpenCV could not encode {render_dir / file_name}')
        (render_dir / file_name).write_bytes(png.tobytes())
    (render_dir / 'renderings.txt').write_text(''.join(f'{n}\n' for n in names))
    (render_dir / 'rendering_metadata.txt').write_text(
        ''.join(f'{c.metadata_line()}\n' for c in cameras))
    vox_dir = root / voxel_folder(resolution) / cat.taxonomy_id / mid
    vox_dir.mkdir(parents=True, exist_ok=True)
    # translate/scale place the unit grid cube, centred on the origin, in the object frame.
    write_binvox(vox_dir / 'model.binvox', grid, translate=(-0.5, -0.5, -0.5), scale=1.0)
    return mid


def _split(ids: Sequence[str], fractions: Sequence[float], rng: np.random.Generator
           ) -> dict[str, list[str]]:
    count = len(ids)
    n_val = int(round(fractions[1] * count))
    n_test = int(round(fractions[2] * count))
    n_test = min(n_test, count - n_val)
    order = rng.permutation(count)
    test, val = set(order[:n_test]), set(order[n_test:n_test + n_val])
    out: dict[str, list[str]] = {'train': [], 'val': [], 'test': []}
    for k, mid in enumerate(ids):  # keep index order inside each split
        out['test' if k in test else 'val' if k in val else 'train'].append(mid)
    return out


def _check_args(per_category: int, counts: Mapping[str, int], seed: int, names: Sequence[str],
                workers: int, split: Sequence[float], views: int, supersample: int,
                resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise DatasetError(f'resolution must be 32 or 128, got {resolution}')
    if per_category < 1:
        raise DatasetError(f'per_category must be at least 1, got {per_category}')
    if seed < 0:
        raise DatasetError(f'seed must be non-negative, got {seed}')
    if workers < 1:
        raise DatasetError(f'workers must be at least 1, got {workers}')
    if not 1 <= views <= 100:
        raise DatasetError(f'views must be in [1, 100], got {views}')
    if not 1 <= supersample <= 8:
        raise DatasetError(f'supersample must be in [1, 8], got {supersample}')
    if len(split) != 3 or min(split) < 0 or abs(sum(split) - 1.0) > 1e-6:
        raise DatasetError(f'split must be three non-negative fractions summing to 1, '
                           f'got {tuple(split)}')
    if not names:
        raise DatasetError('no categories given')
    chosen = {category(name).name for name in names}  # raises UnknownCategoryError naming it
    counted: dict[str, str] = {}
    for name, count in counts.items():
        canonical = category(name).name
        if canonical in counted:
            raise DatasetError(f'two counts for {canonical}: {counted[canonical]!r} and {name!r}')
        if canonical not in chosen:
            raise DatasetError(f'a count is given for {name}, which is not among the categories')
        if count < 1:
            raise DatasetError(f'the count of {name} must be at least 1, got {count}')
        counted[canonical] = name


def write_dataset(out_dir: PathLike, *, per_category: int, seed: int,
                  categories: Sequence[str] | None = None,
                  counts: Mapping[str, int] | None = None, workers: int = 1,
                  split: Sequence[float] = DEFAULT_SPLIT, views: int = VIEWS,
                  supersample: int = 2, resolution: int = RESOLUTION,
                  recipe: Recipe = RECIPES['r2n2'], progress: bool = True) -> DatasetSummary:
    """Generate a whole synthetic dataset in ShapeNet/3D-R2N2's layout.

    :param out_dir: output folder, created if needed; existing files of the same models are
        overwritten.
    :param per_category: models per category.
    :param seed: dataset seed; the same seed gives byte-identical files.
    :param categories: category names or taxonomy ids (default: all of :data:`CATEGORIES`).
    :param counts: models of some categories instead of ``per_category`` (name or taxonomy id
        to count), to weight a dataset towards hard categories. Object ``i`` of a category is
        the same whatever the count, so a larger count only adds objects (but the train / val /
        test split is drawn anew for each count).
    :param workers: worker processes (1: generate in this process).
    :param split: train / val / test fractions.
    :param views: renderings per model.
    :param supersample: anti-aliasing factor of the renderings.
    :param resolution: 32 (ShapeNetVox32) or 128 (objects built for and voxelized at 128³,
        ShapeNetVox128; see the module's docstring).
    :param recipe: the objects' variety and the cameras (:mod:`.recipes`); any but the plain
        ``r2n2`` recipe is recorded in ``recipe.json``.
    :param progress: show a tqdm progress bar.
    :returns: a :class:`DatasetSummary`.
    :raises DatasetError: invalid arguments, or ``out_dir`` holds the other resolution's grids
        or another recipe's dataset.
    :raises UnknownCategoryError: an unknown category.
    """
    names = list(CATEGORIES) if categories is None else list(categories)
    counts = dict(counts or {})
    _check_args(per_category, counts, seed, names, workers, split, views, supersample,
                resolution)
    for other in RESOLUTIONS:
        if other != resolution and (Path(out_dir) / voxel_folder(other)).exists():
            raise DatasetError(f'{out_dir} holds {voxel_folder(other)}: a {other}³ dataset, '
                               f'whose renderings a {resolution}³ one would replace; choose '
                               'another folder')
    _check_recipe(Path(out_dir), recipe)
    cats = []
    for name in names:
        cat = category(name)
        if cat not in cats:
            cats.append(cat)
    count_of = {cat.name: per_category for cat in cats}
    count_of.update((category(name).name, count) for name, count in counts.items())
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    if not recipe.is_default:
        (root / RECIPE_FILE).write_text(json.dumps(recipe.record(), indent=2) + '\n')
    jobs = [(cat.name, index) for cat in cats for index in range(count_of[cat.name])]
    start = time.perf_counter()
    results: dict[tuple[str, int], str] = {}
    bar = _progress(len(jobs), progress)
    try:
        if workers == 1:
            for name, index in jobs:
                results[name, index] = generate_model(root, name, index, seed=seed, views=views,
                                                      supersample=supersample,
                                                      resolution=resolution, recipe=recipe)
                bar.update(1)
        else:
            # 'spawn' starts clean interpreters: safe whatever threads the caller runs.
            context = multiprocessing.get_context('spawn')
            with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                     initializer=_init_worker) as pool:
                futures = {pool.submit(generate_model, root, name, index, seed=seed,
                                       views=views, supersample=supersample,
                                       resolution=resolution, recipe=recipe): (name, index)
                           for name, index in jobs}
                try:
                    for future in as_completed(futures):
                        results[futures[future]] = future.result()
                        bar.update(1)
                except BaseException:
                    # Fail fast: drop the models not started yet instead of making them all.
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    models: dict[str, list[str]] = {}
    splits: dict[str, dict[str, list[str]]] = {}
    taxonomy = []
    for cat in cats:
        ids = [results[cat.name, index] for index in range(count_of[cat.name])]
        models[cat.taxonomy_id] = ids
        rng = np.random.default_rng([seed, int(cat.taxonomy_id), 2])
        splits[cat.taxonomy_id] = _split(ids, split, rng)
        taxonomy.append({'taxonomy_id': cat.taxonomy_id, 'taxonomy_name': cat.name,
                         'baseline': dict(_BASELINE), **splits[cat.taxonomy_id]})
    (root / 'ShapeNet.json').write_text(json.dumps(taxonomy, indent=2) + '\n')
    return DatasetSummary(root, models, splits, seconds)


def _check_recipe(root: Path, recipe: Recipe) -> None:
    """Refuse to mix two recipes' models in one folder (its record would then be wrong)."""
    path = root / RECIPE_FILE
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f'{path}: cannot read the dataset recipe ({exc})') from exc
        if recorded != recipe.record():
            name = recorded.get('recipe') if isinstance(recorded, dict) else None
            raise DatasetError(f'{root} holds a dataset of another recipe ({name!r}, {path}); '
                               f'choose another folder for the {recipe.name!r} one')
    elif not recipe.is_default and (root / 'ShapeNetRendering').exists():
        raise DatasetError(f'{root} holds renderings of the r2n2 recipe (no {RECIPE_FILE}); '
                           f'choose another folder for the {recipe.name!r} one')


def _init_worker() -> None:
    # One process per core already; OpenCV's own threads would only compete with them.
    cv2.setNumThreads(1)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm  # only needed for the bar
    return tqdm(total=total, unit='obj', desc='synthetic objects')
