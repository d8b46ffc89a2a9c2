"""Every error class the package and training define derives from the one base error.

The modules are walked and imported, so a new module or a new error class is checked without
being listed here; the builtin bases callers catch (ValueError, RuntimeError, KeyError) are kept.
"""

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import pix2voxpp_ros
from pix2voxpp_ros.core.errors import Pix2VoxError

PACKAGES = ['pix2voxpp_ros', 'pix2voxpp_training']


def _modules(package_name: str) -> list[ModuleType]:
    package = importlib.import_module(package_name)
    names = [info.name for info in pkgutil.walk_packages(package.__path__, package_name + '.')
             if not info.name.endswith('.__main__')]  # importing __main__ would run the tool
    return [package, *(importlib.import_module(name) for name in names)]


def _own_exceptions(package_name: str) -> list[type]:
    found = {}
    for module in _modules(package_name):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, BaseException) and not issubclass(cls, Warning)
                    and cls.__module__.startswith(package_name)):
                found[f'{cls.__module__}.{cls.__qualname__}'] = cls
    return [found[name] for name in sorted(found)]


@pytest.mark.parametrize('package_name', PACKAGES)
def test_every_error_derives_from_the_base(package_name):
    classes = _own_exceptions(package_name)
    assert len(classes) >= 5  # the walk found the modules
    outside = [f'{c.__module__}.{c.__qualname__}' for c in classes
               if not issubclass(c, Pix2VoxError)]
    assert outside == []


def test_errors_keep_the_builtin_bases_callers_catch():
    from pix2voxpp_ros.core.checkpoint import CheckpointError
    from pix2voxpp_ros.core.preprocess import EmptyMaskError
    from pix2voxpp_ros.core.synthetic.shapes import UnknownCategoryError
    assert issubclass(CheckpointError, RuntimeError)
    assert issubclass(EmptyMaskError, ValueError)
    with pytest.raises(KeyError):
        raise UnknownCategoryError('mug')
    with pytest.raises(Pix2VoxError, match='mug'):
        raise UnknownCategoryError('mug')


def test_error_names_are_unique_across_the_package_and_training():
    names: dict[str, list[str]] = {}
    for package_name in PACKAGES:
        for cls in _own_exceptions(package_name):
            names.setdefault(cls.__name__, []).append(cls.__module__)
    assert {n: m for n, m in names.items() if len(m) > 1} == {}


def test_the_package_itself_is_walked():
    assert pix2voxpp_ros.__name__ in {m.__name__ for m in _modules('pix2voxpp_ros')}
