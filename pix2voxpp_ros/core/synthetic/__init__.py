"""Synthetic objects with known shape, rendered and voxelized in ShapeNet/3D-R2N2's file layout.

Pure numpy and OpenCV (no ROS, no torch). The pieces:

* :mod:`.shapes` — procedural categories and :func:`make_object`, built voxel-faithful with
  :mod:`.lattice`, in two varieties: ``classic`` and ``wide`` (:mod:`.wide`: more styles and
  proportions, towards real furniture, vehicles and containers);
* :mod:`.camera` — :class:`Camera` (R2N2 view parameters, intrinsics, pose, projection), R2N2's
  view sampling and :func:`sample_robot_cameras` (where robots look from);
* :mod:`.render` — :func:`render_view` (RGBA) and :func:`render_depth` for any camera;
* :mod:`.scenes` — :func:`make_tabletop_scene`: the object on a table among distractors, with
  its exact mask (:func:`render_scene_view`), off-centre cameras and the wrist camera's orbit;
* :mod:`.voxelize` — :func:`voxelize`, the 32³ (or 128³) solid grid in ShapeNetVox32's frame;
* :mod:`.dataset` — :func:`write_dataset`, the whole ShapeNetRendering / ShapeNetVox32 /
  ShapeNet.json layout (ShapeNetVox128 for the 128³ network), deterministic for a seed and
  parallel over processes;
* :mod:`.recipes` — what a dataset draws: ``r2n2`` (classic objects, R2N2's views) or ``robot``
  (the wide variety from where robots look);
* :mod:`.sheet` — contact sheets of objects, rendered and as voxels.
"""

from .camera import (Camera, CameraError, R2N2_MAX_DISTANCE, sample_r2n2_cameras,
                     sample_robot_cameras)
from .dataset import (DatasetError, DatasetSummary, dataset_object, generate_model, model_id,
                      object_seed, write_dataset)
from .recipes import RECIPES, Recipe, RecipeError, recipe
from .render import render_depth, render_view
from .shapes import (CATEGORIES, VARIETIES, Category, SyntheticObject, UnknownCategoryError,
                     category, make_object)
from .voxelize import voxelize

__all__ = [
    'CATEGORIES', 'Camera', 'CameraError', 'Category', 'DatasetError', 'DatasetSummary',
    'R2N2_MAX_DISTANCE', 'RECIPES', 'Recipe', 'RecipeError', 'VARIETIES',
    'SyntheticObject', 'UnknownCategoryError', 'category', 'dataset_object', 'generate_model',
    'make_object', 'model_id', 'object_seed', 'recipe', 'render_depth', 'render_view',
    'sample_r2n2_cameras', 'sample_robot_cameras', 'voxelize', 'write_dataset',
]
