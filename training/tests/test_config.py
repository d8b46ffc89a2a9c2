"""The YAML configuration loader: the shipped configs, unknown keys, types, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pix2voxpp_training.config import (TrainConfig, TrainingConfigError, load_config,
                                       parse_override)

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


@pytest.mark.parametrize('name', ['shapenet_f', 'shapenet_a', 'synthetic_f',
                                  'synthetic_car128_f', 'synthetic_car128_f_cpu'])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(CONFIGS / f'{name}.yaml')
    assert config.name == name
    assert config.stage1.max_views == 1
    assert config.stage2.min_views >= 1


def test_paper_recipe_numbers() -> None:
    for name, variant, refiner in (('shapenet_f', 'F', False), ('shapenet_a', 'A', True)):
        config = load_config(CONFIGS / f'{name}.yaml')
        assert (config.model.variant, config.model.use_refiner) == (variant, refiner)
        s1, s2 = config.stage1, config.stage2
        assert (s1.epochs, s1.milestones, s1.gamma, s1.batch_size) == (250, (150,), 0.5, 64)
        assert (s1.lr.encoder, s1.lr.decoder, s1.lr.refiner) == (1e-3, 1e-3, 1e-3)
        assert (s2.epochs, s2.lr.merger, s2.lr.refiner) == (100, 1e-4, 1e-3)
        assert s1.betas == s2.betas == (0.9, 0.999)
        assert config.loss_weight == 10.0
        aug = config.augment
        assert aug.background == (225, 255) and aug.lighting_std == 0.1
        assert aug.lighting_eigval == (0.2175, 0.0188, 0.0045)
        assert (aug.brightness, aug.contrast, aug.saturation, aug.flip_p) == (0.4, 0.4, 0.4, 0.5)
        assert aug.box_crop_p == 0.0  # the paper crops every rendering the same way
        assert aug.occlusion_p == 0.0  # and hides nothing


def test_synthetic_configs_train_as_before_unless_occlusion_is_set() -> None:
    for name in ('synthetic_f', 'synthetic_car128_f'):
        aug = load_config(CONFIGS / f'{name}.yaml').augment
        assert (aug.occlusion_p, aug.occlusion_share) == (0.0, (0.1, 0.5))
        assert aug.box_crop_p == 0.5
    config = load_config(CONFIGS / 'synthetic_f.yaml', {'augment.occlusion_p': 0.3})
    assert config.augment.occlusion_p == 0.3


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / 'bad.yaml'
    path.write_text('name: x\nlearning_rate: 0.1\n')
    with pytest.raises(TrainingConfigError,
                       match=r"bad.yaml.*unknown configuration key 'learning_rate'"):
        load_config(path)


def test_unknown_nested_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / 'bad.yaml'
    path.write_text('stage2:\n  lr:\n    mergr: 0.1\n')
    with pytest.raises(TrainingConfigError, match=r"unknown configuration key 'stage2.lr.mergr'"):
        load_config(path)


def test_wrong_type_and_range_are_named(tmp_path: Path) -> None:
    path = tmp_path / 'bad.yaml'
    path.write_text('stage1:\n  epochs: ten\n')
    with pytest.raises(TrainingConfigError, match='stage1.epochs: expected an integer'):
        load_config(path)
    path.write_text('model:\n  variant: B\n')
    with pytest.raises(TrainingConfigError, match='model.variant'):
        load_config(path)
    path.write_text('stage1:\n  max_views: 3\n')
    with pytest.raises(TrainingConfigError, match='stage1.max_views'):
        load_config(path)
    path.write_text('stage2:\n  min_views: 1\n')
    with pytest.raises(TrainingConfigError, match='stage2.min_views: must be at least 2'):
        load_config(path)
    path.write_text('augment:\n  box_crop_p: 1.5\n')
    with pytest.raises(TrainingConfigError, match=r'augment.box_crop_p: must be in \[0, 1\]'):
        load_config(path)


def test_yaml_is_never_executed(tmp_path: Path) -> None:
    path = tmp_path / 'evil.yaml'
    path.write_text('name: !!python/object/apply:os.system ["echo pwned"]\n')
    with pytest.raises(TrainingConfigError, match='not valid YAML'):
        load_config(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match='nope.yaml'):
        load_config(tmp_path / 'nope.yaml')


def test_overrides_and_round_trip() -> None:
    key, value = parse_override('stage2.lr.merger=1e-3')
    config = load_config(CONFIGS / 'synthetic_f.yaml', {key: value, 'stage1.epochs': 3})
    assert config.stage2.lr.merger == 1e-3 and config.stage1.epochs == 3
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TrainingConfigError, match='section.key=value'):
        parse_override('epochs')
    with pytest.raises(TrainingConfigError, match="unknown configuration key 'stage1.epoch'"):
        load_config(CONFIGS / 'synthetic_f.yaml', {'stage1.epoch': 3})
