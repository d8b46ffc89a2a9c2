"""Dataset recipes: which objects a synthetic dataset holds and from where they are seen.

A :class:`Recipe` names the two choices that make a dataset's renderings what they are:

* ``r2n2`` — the generator's classic objects seen as 3D-R2N2 rendered ShapeNet (elevation
  25-30°, one field of view, :func:`~.camera.sample_r2n2_cameras`): the datasets every earlier
  version wrote, byte for byte;
* ``robot`` — the wide variety of objects (:func:`~.shapes.make_object` with
  ``variety='wide'``) seen as robots see them: elevations from 0 to 75°, cameras from a wrist
  camera's close-up to an overhead one's distance, the field of view that frames the object as
  R2N2's renderings do (:func:`~.camera.sample_robot_cameras`).

Each view's camera is in ``rendering_metadata.txt`` as before; the recipe itself is recorded in
``recipe.json`` beside ``ShapeNet.json``, which a dataset of the plain ``r2n2`` recipe does not
have (it is what every dataset without the file was made with).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import Pix2VoxError
from .camera import (R2N2_ELEVATION_RANGE, ROBOT_DISTANCE_RANGE, ROBOT_ELEVATION_RANGE,
                     ROBOT_FILL_RANGE, Camera, sample_r2n2_cameras, sample_robot_cameras)
from .shapes import VARIETIES
from .voxelize import surface_corners

#: The camera samplers a recipe can use.
CAMERA_KINDS = ('r2n2', 'robot')
#: Name of the file recording a dataset's recipe.
RECIPE_FILE = 'recipe.json'


class RecipeError(Pix2VoxError, ValueError):
    """An unknown recipe, camera kind or variety, or an invalid elevation range."""


@dataclass(frozen=True)
class Recipe:
    """What a synthetic dataset draws: its objects' variety and its cameras.

    :ivar name: the recipe's name (``r2n2`` or ``robot``).
    :ivar cameras: the camera sampler, one of :data:`CAMERA_KINDS`.
    :ivar variety: the objects' variety, one of :data:`~.shapes.VARIETIES`.
    :ivar elevation_deg: the range the views' elevations are drawn from.
    """

    name: str
    cameras: str
    variety: str
    elevation_deg: tuple[float, float]

    def __post_init__(self) -> None:
        """Check the fields (:class:`RecipeError` names the bad value)."""
        if self.cameras not in CAMERA_KINDS:
            raise RecipeError(f'unknown camera kind {self.cameras!r}; known: '
                              f'{", ".join(CAMERA_KINDS)}')
        if self.variety not in VARIETIES:
            raise RecipeError(f'unknown variety {self.variety!r}; known: {", ".join(VARIETIES)}')
        low, high = self.elevation_deg
        if not 0.0 <= low <= high < 90.0:
            raise RecipeError(f'elevation range {low:g} {high:g}: need 0 <= low <= high < 90')

    def sample_cameras(self, obj_seed: int, grid: np.ndarray, count: int) -> list[Camera]:
        """Draw the views of the object of ``obj_seed``, whose voxels are ``grid``.

        The R2N2 cameras come from the generator ``[obj_seed, 1]`` as they always did; the
        robot cameras from ``[obj_seed, 2]``, framing the grid's voxels.
        """
        if self.cameras == 'r2n2':
            return sample_r2n2_cameras(np.random.default_rng([obj_seed, 1]), count,
                                       elevation_range=self.elevation_deg)
        return sample_robot_cameras(np.random.default_rng([obj_seed, 2]), surface_corners(grid),
                                    count, elevation_range=self.elevation_deg)

    @property
    def is_default(self) -> bool:
        """Whether this is the plain ``r2n2`` recipe, the one datasets without a record have."""
        return self == RECIPES['r2n2']

    def record(self) -> dict[str, Any]:
        """Return what ``recipe.json`` holds: the recipe and its samplers' fixed ranges."""
        out: dict[str, Any] = {'recipe': self.name, 'cameras': self.cameras,
                               'variety': self.variety,
                               'elevation_deg': [float(v) for v in self.elevation_deg]}
        if self.cameras == 'robot':
            out['distance_grid_edges'] = [float(v) for v in ROBOT_DISTANCE_RANGE]
            out['fill'] = [float(v) for v in ROBOT_FILL_RANGE]
        return out


#: The recipes, by name.
RECIPES: dict[str, Recipe] = {
    'r2n2': Recipe('r2n2', 'r2n2', 'classic', R2N2_ELEVATION_RANGE),
    'robot': Recipe('robot', 'robot', 'wide', ROBOT_ELEVATION_RANGE),
}


def recipe(name: str, *, variety: str | None = None,
           elevation_deg: tuple[float, float] | None = None) -> Recipe:
    """Look a recipe up by name, optionally with another variety or elevation range.

    :raises RecipeError: unknown name or variety, or an invalid elevation range.
    """
    if name not in RECIPES:
        raise RecipeError(f'unknown recipe {name!r}; known: {", ".join(RECIPES)}')
    base = RECIPES[name]
    return replace(base, variety=base.variety if variety is None else variety,
                   elevation_deg=base.elevation_deg if elevation_deg is None
                   else (float(elevation_deg[0]), float(elevation_deg[1])))
