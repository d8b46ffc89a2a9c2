"""Run under ``torchrun`` by test_distributed.py (a test helper, not a test).

Train stage 1 then stage 2, then hash the parameters of this rank into
``HASHES/stage<N>.rank<R>.txt``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from pix2voxpp_training import distributed
from pix2voxpp_training.config import load_config
from pix2voxpp_training.train import train

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


def parameter_hash(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's name and bytes, in name order."""
    digest = hashlib.sha256()
    for name, parameter in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(data: str, out: str, hashes: str) -> None:
    """Train both stages on ``data`` into ``out``; write this rank's hashes to ``hashes``."""
    rank = os.environ['RANK']
    # One process group for both stages: train() joins it and leaves it running.
    context = distributed.setup('cpu')
    config = load_config(CONFIGS / 'synthetic_f.yaml', {
        'data.workers': 0, 'data.max_objects': 8,
        'stage1.epochs': 1, 'stage1.batch_size': 4,
        'stage2.epochs': 1, 'stage2.batch_size': 4, 'stage2.min_views': 2,
        'stage2.max_views': 3, 'stage2.val_views': 2,
    })
    first = train(config, data=data, out=Path(out) / 'stage1', stage=1, device='cpu',
                  progress=False)
    Path(hashes, f'stage1.rank{rank}.txt').write_text(parameter_hash(first.model))
    second = train(config, data=data, out=Path(out) / 'stage2', stage=2, device='cpu',
                   init=Path(out) / 'stage1' / 'checkpoints' / 'best.pth', progress=False)
    Path(hashes, f'stage2.rank{rank}.txt').write_text(parameter_hash(second.model))
    distributed.cleanup(context)


if __name__ == '__main__':
    main(*sys.argv[1:4])
