"""Two gloo processes under torchrun on the CPU keep identical parameters; rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pix2voxpp_ros.core.checkpoint import read_checkpoint

from ddp_worker import parameter_hash

HERE = Path(__file__).resolve().parent


@pytest.mark.timeout(240)
def test_two_process_torchrun_keeps_ranks_identical(tiny_data: Path, tmp_path: Path) -> None:
    hashes = tmp_path / 'hashes'
    hashes.mkdir()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE)}
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node=2', str(HERE / 'ddp_worker.py'), str(tiny_data),
               str(tmp_path / 'run'), str(hashes)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=220)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'on 2 x cpu' in done.stdout  # rank 0 reports the world size
    for stage in (1, 2):
        rank0 = (hashes / f'stage{stage}.rank0.txt').read_text()
        rank1 = (hashes / f'stage{stage}.rank1.txt').read_text()
        assert rank0 == rank1, f'stage {stage}: ranks diverged'
        saved = read_checkpoint(tmp_path / 'run' / f'stage{stage}' / 'checkpoints' / 'last.pth')
        assert parameter_hash(saved.model) == rank0
    # Only rank 0 wrote: one history line per epoch, not one per rank.
    assert (tmp_path / 'run' / 'stage1' / 'history_stage1.jsonl').read_text().count('\n') == 1
