"""The Pix2Vox++ network: encoder, decoder, merger, refiner and their assembly."""

from .config import ModelConfig
from .network import (MAX_VIEWS, Pix2VoxPP, Reconstruction, build_model, init_weights,
                      load_matching_weights)

__all__ = ['MAX_VIEWS', 'ModelConfig', 'Pix2VoxPP', 'Reconstruction', 'build_model',
           'init_weights', 'load_matching_weights']
