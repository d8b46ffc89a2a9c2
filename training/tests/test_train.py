"""End to end on a tiny dataset: checkpoints, exact resume, command lines, evaluation, export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from pix2voxpp_ros.core.checkpoint import read_checkpoint
from pix2voxpp_training import evaluate, export, train

from training_helpers import CONFIGS

SMALL_ARGS = ['--config', str(CONFIGS / 'synthetic_f.yaml'), '--batch-size', '2',
              '--max-objects', '4', '--device', 'cpu', '--no-progress',
              '--set', 'stage1.val_every=1', '--set', 'stage2.min_views=2',
              '--set', 'stage2.max_views=3', '--set', 'stage2.val_views=2',
              '--set', 'precision=fp32']  # exact resume comparisons; bf16 has its own test


def _train(data: Path, out: Path, *extra: str) -> int:
    return train.main(['--data', str(data), '--out', str(out), *SMALL_ARGS, *extra])


@pytest.fixture(scope='module')
def stage1_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two uninterrupted epochs of stage 1 with a DataLoader worker process."""
    out = tmp_path_factory.mktemp('uninterrupted')
    assert _train(tiny_data, out, '--stage', '1', '--epochs', '2', '--workers', '1') == 0
    return out


def test_checkpoints_are_project_checkpoints(stage1_run: Path) -> None:
    best = read_checkpoint(stage1_run / 'checkpoints' / 'best.pth')
    last = read_checkpoint(stage1_run / 'checkpoints' / 'last.pth')
    assert best.format == 'project' and not best.model.config.use_merger
    training = last.extra['training']
    assert training['epoch'] == 2 and training['stage'] == 1
    assert {'optimizer', 'scheduler', 'scaler', 'rng', 'config'} <= set(training)
    assert best.metadata.threshold in (0.2, 0.3, 0.4, 0.5)
    assert best.metadata.threshold == training['best']['threshold']
    assert best.metadata.provenance['val_iou'] == pytest.approx(training['best']['iou'])
    assert (stage1_run / 'history_stage1.jsonl').read_text().count('\n') == 2
    assert any((stage1_run / 'tensorboard' / 'stage1').iterdir())


def test_resumed_run_equals_uninterrupted_run(stage1_run: Path, tiny_data: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / 'interrupted'
    assert _train(tiny_data, out, '--stage', '1', '--epochs', '1', '--workers', '0') == 0
    assert _train(tiny_data, out, '--stage', '1', '--epochs', '2', '--workers', '0',
                  '--resume') == 0
    expected = read_checkpoint(stage1_run / 'checkpoints' / 'last.pth').model.state_dict()
    resumed = read_checkpoint(out / 'checkpoints' / 'last.pth').model.state_dict()
    assert expected.keys() == resumed.keys()
    for key, value in expected.items():
        assert torch.equal(value, resumed[key]), key


def test_train_command_line_errors(tiny_data: Path, stage1_run: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    assert _train(tiny_data, tmp_path / 'a', '--stage', '2') == 2
    assert '--init' in capsys.readouterr().err
    assert _train(tiny_data, tmp_path / 'a', '--stage', '2', '--init',
                  str(tmp_path / 'nothing.pth')) == 2
    assert 'nothing.pth: --init checkpoint not found' in capsys.readouterr().err
    assert _train(tmp_path / 'no_data', tmp_path / 'a', '--stage', '1') == 2
    assert 'no_data: dataset folder not found' in capsys.readouterr().err
    assert _train(tiny_data, tmp_path / 'a', '--stage', '1', '--set', 'stage1.epoch=3') == 2
    assert "unknown configuration key 'stage1.epoch'" in capsys.readouterr().err
    assert _train(tiny_data, tmp_path / 'a', '--stage', '1', '--resume') == 2
    assert 'last.pth' in capsys.readouterr().err
    assert _train(tiny_data, stage1_run, '--stage', '1') == 2  # would overwrite a run
    assert '--resume' in capsys.readouterr().err


def test_stage2_evaluate_and_export(stage1_run: Path, tiny_data: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / 'stage2'
    init = stage1_run / 'checkpoints' / 'best.pth'
    assert _train(tiny_data, run, '--stage', '2', '--init', str(init), '--epochs', '1',
                  '--workers', '0') == 0
    weights = run / 'checkpoints' / 'best.pth'
    assert read_checkpoint(weights).model.config.use_merger

    report_path = tmp_path / 'eval' / 'merger.json'
    assert evaluate.main(['--weights', str(weights), '--data', str(tiny_data), '--views', '1',
                          '2', '3', '--json', str(report_path), '--workers', '0',
                          '--device', 'cpu', '--no-progress']) == 0
    table = capsys.readouterr().out
    assert '3-view' in table and 'F-Score@1%' in table and 'overall' in table
    report = json.loads(report_path.read_text())
    assert report['views'] == [1, 2, 3] and report['merger'] and report['objects'] == 2
    first = report['results'][0]
    assert set(first['counts']) == {'table', 'chair'}
    assert first['iou']['best'] == pytest.approx(max(first['iou']['overall']))
    assert 0.0 <= first['fscore']['overall'] <= 1.0
    rows = list(csv.DictReader(report_path.with_suffix('.csv').open()))
    assert len(rows) == 3 * 3 and {r['category'] for r in rows} == {'table', 'chair', 'overall'}
    assert report_path.with_suffix('.png').stat().st_size > 1000

    average = tmp_path / 'eval' / 'average.json'
    assert evaluate.main(['--weights', str(weights), '--data', str(tiny_data), '--views', '1',
                          '2', '--no-merger', '--no-fscore', '--json', str(average),
                          '--workers', '0', '--device', 'cpu', '--no-progress']) == 0
    table = capsys.readouterr().out
    assert '2-view' in table and 'F-Score' not in table  # --no-fscore: no table of NaNs
    assert 'NaN' not in average.read_text()  # NaN is not JSON; null stands for 'not computed'
    averaged = json.loads(average.read_text())
    assert not averaged['merger'] and averaged['results'][0]['fscore'] is None
    assert {r['fscore@1%'] for r in csv.DictReader(average.with_suffix('.csv').open())} == {''}
    assert average.with_suffix('.png').stat().st_size > 1000
    assert averaged['results'][0]['iou'] == report['results'][0]['iou']  # one view: no fusion
    compared = tmp_path / 'eval' / 'compared.json'
    assert evaluate.main(['--weights', str(weights), '--data', str(tiny_data), '--views', '1',
                          '2', '--compare-average', '--no-fscore', '--json', str(compared),
                          '--workers', '0', '--device', 'cpu', '--no-progress']) == 0
    assert 'paired bootstrap 95 % interval' in capsys.readouterr().out
    both = json.loads(compared.read_text())
    assert both['results'][1]['iou'] == report['results'][1]['iou']  # the merger's own table
    assert both['average']['results'][1]['iou'] == averaged['results'][1]['iou']  # one pass
    two = both['comparison'][1]
    assert two['views'] == 2 and two['objects'] == 2
    assert two['difference'] == pytest.approx(two['merger_iou'] - two['average_iou'])
    assert two['ci95'][0] <= two['difference'] <= two['ci95'][1]
    assert both['comparison'][0]['difference'] == 0.0  # one view: both are the coarse volume
    assert evaluate.main(['--weights', str(weights), '--data', str(tiny_data), '--views',
                          '25']) == 2
    assert '--views must be in 1..24' in capsys.readouterr().err
    assert evaluate.main(['--weights', str(tmp_path / 'none.pth'), '--data',
                          str(tiny_data)]) == 2
    assert 'none.pth' in capsys.readouterr().err

    deployed = tmp_path / 'deploy' / 'weights.pth'
    assert export.main(['--weights', str(weights), '--out', str(deployed), '--half']) == 0
    raw = torch.load(deployed, weights_only=True)
    assert set(raw) == {'format', 'format_version', 'model_config', 'metadata', 'state_dict'}
    assert raw['state_dict']['encoder.layer1.0.weight'].dtype == torch.float16
    assert deployed.stat().st_size < 25e6
    loaded = read_checkpoint(deployed)
    provenance = loaded.metadata.provenance
    assert provenance['variant'] == 'F' and provenance['stage'] == 2
    assert provenance['config']['name'] == 'synthetic_f'
    assert provenance['val_iou'] == pytest.approx(read_checkpoint(weights).extra['training']
                                                  ['best']['iou'])
    assert loaded.metadata.threshold == read_checkpoint(weights).metadata.threshold
    assert 'dataset' in provenance and 'test' not in provenance
    with_test = tmp_path / 'deploy' / 'with_test.pth'
    assert export.main(['--weights', str(weights), '--out', str(with_test), '--test-json',
                        str(compared)]) == 0
    test = read_checkpoint(with_test).metadata.provenance['test']
    assert test['split'] == 'test' and test['objects'] == 2
    assert test['views'][0]['fscore_1pct'] is None  # compared.json was made with --no-fscore
    both['results'][0]['iou']['at_weights_threshold'] = None  # threshold not evaluated
    assert export.summarize_test_split(both)['views'][0]['iou_at_weights_threshold'] is None
    assert [row['views'] for row in test['views']] == [1, 2]
    assert test['views'][1]['iou'] == round(both['results'][1]['iou']['best'], 4)
    assert test['views'][1]['merger_minus_average'] == round(two['difference'], 4)
    assert export.main(['--weights', str(weights), '--out', str(with_test), '--test-json',
                        str(report_path.with_suffix('.csv'))]) == 2
    assert 'merger.csv' in capsys.readouterr().err
    assert export.main(['--weights', str(tmp_path / 'none.pth'), '--out', str(deployed)]) == 2


def test_export_records_every_training_step(stage1_run: Path, tiny_data: Path,
                                            tmp_path: Path) -> None:
    first = stage1_run / 'checkpoints' / 'best.pth'
    more = tmp_path / 'stage1_more'
    assert _train(tiny_data, more, '--stage', '1', '--init', str(first), '--epochs', '1',
                  '--workers', '0', '--set', 'stage1.lr.encoder=5.0e-4') == 0
    run = tmp_path / 'stage2'
    assert _train(tiny_data, run, '--stage', '2', '--init', str(more / 'checkpoints' /
                  'best.pth'), '--epochs', '1', '--workers', '0') == 0
    deployed = tmp_path / 'weights.pth'
    assert export.main(['--weights', str(run / 'checkpoints' / 'best.pth'), '--out',
                        str(deployed)]) == 0
    steps = read_checkpoint(deployed).metadata.provenance['training_steps']
    assert [step['stage'] for step in steps] == [2, 1, 1]
    assert [step['epochs'] for step in steps] == [1, 1, 2]
    assert steps[2]['checkpoint'] == str(first)
    assert steps[1]['schedule']['lr']['encoder'] == 5.0e-4
    assert steps[2]['schedule']['lr']['encoder'] == 1.0e-3
    assert all(step['dataset'] == str(tiny_data.resolve()) for step in steps)
    assert steps[0]['objects'] == {'train': 4, 'val': 2}

    # The first step's checkpoint moved away: the list says so and the export still works.
    (more / 'checkpoints' / 'best.pth').rename(tmp_path / 'moved.pth')
    assert export.main(['--weights', str(run / 'checkpoints' / 'best.pth'), '--out',
                        str(deployed)]) == 0
    steps = read_checkpoint(deployed).metadata.provenance['training_steps']
    assert len(steps) == 2 and 'unavailable' in steps[1]
    assert steps[1]['checkpoint'] == str(more / 'checkpoints' / 'best.pth')
