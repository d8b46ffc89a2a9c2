"""Hostile checkpoints: zip bombs, oversized records, bad metadata and random damage.

Each is refused with one CheckpointError line naming the file and what was refused, before
anything large is allocated; nothing ever runs code or raises another exception type.
"""

from __future__ import annotations

import io
import os
import random
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from pix2voxpp_ros.core.checkpoint import (CheckpointError, WeightsMetadata, read_checkpoint,
                                           save_checkpoint)
from pix2voxpp_ros.core.checkpoint_file import ArchiveLimits, load_weights_file

from bounded import within
from model_helpers import make_model
from zip_bombs import write_zip_bomb

GiB = 1 << 30


def test_zip_bomb_is_refused_naming_the_record_and_the_limit(tmp_path: Path) -> None:
    """6 GiB of deflated zeros in a 6 MB file: refused from the zip directory alone."""
    bomb = write_zip_bomb(tmp_path / 'bomb.pth')
    assert bomb.stat().st_size < 8 << 20
    with within(seconds=20.0, grown_mib=100), pytest.raises(
            CheckpointError, match=r"bomb\.pth: record 'archive/data/0' declares 6144 MiB, "
                                   r'more than the 1024 MiB limit'):
        read_checkpoint(bomb)


def test_limits_on_ratio_total_count_and_duplicates(tmp_path: Path) -> None:
    small = ArchiveLimits(record_bytes=GiB, total_bytes=GiB, records=10)
    bomb = write_zip_bomb(tmp_path / 'ratio.pth', 64 << 20)  # under every size limit
    with pytest.raises(CheckpointError, match=r"record 'archive/data/0' inflates \d+x, more "
                                              r'than the 10x limit'):
        load_weights_file(bomb, limits=small)
    with pytest.raises(CheckpointError, match='together, more than the 32 MiB limit'):
        load_weights_file(bomb, limits=small._replace(total_bytes=32 << 20,
                                                      compression_ratio=1e9))
    with pytest.raises(CheckpointError, match='7 records, more than the 3 a checkpoint'):
        load_weights_file(bomb, limits=small._replace(records=3))
    path = tmp_path / 'twice.pth'
    torch.save({'x': torch.zeros(3)}, path)
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('TWICE/DATA/0', b'\0' * 12)  # the same name to PyTorch's lookup
    with pytest.raises(CheckpointError, match="record 'TWICE/DATA/0' appears twice"):
        load_weights_file(path)


def test_oversized_legacy_file_and_pickle_are_refused(tmp_path: Path) -> None:
    path = tmp_path / 'legacy.pth'
    torch.save({'x': torch.zeros(1000)}, path, _use_new_zipfile_serialization=False)
    assert load_weights_file(path)['x'].shape == (1000,)  # the old format still loads
    with pytest.raises(CheckpointError, match=r'legacy\.pth: 0 MiB file, larger than the'):
        load_weights_file(path, limits=ArchiveLimits(total_bytes=1000))
    torch.save({'x': list(range(1000))}, path)
    with pytest.raises(CheckpointError, match=r"record 'legacy/data.pkl' declares 0 MiB, more "
                                              'than the 0 MiB limit'):
        load_weights_file(path, limits=ArchiveLimits(pickle_bytes=100))


def test_refused_global_is_named(tmp_path: Path) -> None:
    path = tmp_path / 'evil.pth'
    torch.save({'encoder_state_dict': {}, 'hook': os.system}, path)
    with pytest.raises(CheckpointError, match=r'not plain weights \(.*GLOBAL (posix|os)\.system'):
        read_checkpoint(path)


def _with_metadata(path: Path, **values: object) -> Path:
    save_checkpoint(path, make_model('F'))
    raw = torch.load(path, weights_only=True)
    raw['metadata'].update(values)
    torch.save(raw, path)
    return path


@pytest.mark.parametrize(('values', 'message'), [
    ({'input_size': 0}, r'input_size 0: must be 224'),
    ({'input_size': 1e5}, r'input_size 100000.0: must be 224'),
    ({'resolution': 64}, r'resolution 64: must be 32 or 128'),
    ({'background': 'grey'}, r"background 'grey': must be a grey level in \[0, 1\]"),
    ({'background': float('nan')}, r'background nan'),
    ({'std': [0.5, 0.0, 0.5]}, r'std \(0.5, 0.0, 0.5\): must be 3 numbers in \[0.001, 10\]'),
    ({'std': '123'}, r"std '123': must be 3 numbers"),
    ({'mean': [0.5, 0.5]}, r'mean \(0.5, 0.5\): must be 3 numbers in \[0, 1\]'),
    ({'mean': [float('inf')] * 3}, r'mean \(inf, inf, inf\)'),
    ({'threshold': 'high'}, r"threshold must be in \(0, 1\), got 'high'"),
    ({'channel_order': ['B', 'G', 'R']}, r"channel_order must be 'BGR' or 'RGB'"),
    ({'provenance': 'x' * 1000}, r"provenance 'xxxxx.*\.\.\.: must be a dict"),
])
def test_bad_metadata_is_refused_at_load(tmp_path: Path, values: dict, message: str) -> None:
    path = _with_metadata(tmp_path / 'meta.pth', **values)
    with pytest.raises(CheckpointError, match=r'meta\.pth: refused metadata: ' + message):
        read_checkpoint(path)


def test_good_metadata_still_loads(tmp_path: Path) -> None:
    path = _with_metadata(tmp_path / 'ok.pth', mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 1],
                          background=1, future_key='ignored')
    metadata = read_checkpoint(path).metadata
    assert metadata.std == (0.229, 0.224, 1.0) and metadata.background == 1
    assert WeightsMetadata.from_dict(metadata.to_dict()) == metadata


# Runs the CLI and writes its peak RSS (VmHWM of the process after exec, in kB) to a file:
# wait4's ru_maxrss would count the pages the child shared with pytest before its exec.
_RUN_AND_REPORT_PEAK = """
import runpy, sys
peak_file, sys.argv = sys.argv[1], [sys.argv[0]] + sys.argv[2:]
try:
    runpy.run_module('pix2voxpp_ros.cli.reconstruct', run_name='__main__')
finally:
    with open('/proc/self/status') as status, open(peak_file, 'w') as out:
        out.write(next(line for line in status if line.startswith('VmHWM:')).split()[1])
"""


def test_the_cli_refuses_a_zip_bomb_in_bounded_memory(tmp_path: Path) -> None:
    """In a child limited to 6 GiB of address space: one line, exit 1, peak RSS < 1.5 GB."""
    bomb = write_zip_bomb(tmp_path / 'bomb.pth')
    image = tmp_path / 'view.png'
    image.write_bytes(b'')  # never read: the weights are refused first
    limit = 6 * GiB
    peak = tmp_path / 'peak_kb'

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    child = subprocess.run([sys.executable, '-c', _RUN_AND_REPORT_PEAK, str(peak), str(image),
                            '--weights', str(bomb), '--out', str(tmp_path / 'out.npy'),
                            '--device', 'cpu', '--backend', 'torch'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=limit_memory, timeout=120)
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 1, lines
    assert len(lines) == 1 and 'Traceback' not in lines[0], lines
    assert "record 'archive/data/0' declares 6144 MiB, more than the 1024 MiB limit" in lines[0]
    peak_kb = int(peak.read_text())
    assert peak_kb < 1500 << 10, f'peak RSS {peak_kb >> 10} MiB'


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, overwrite, cut or duplicate a few bytes of ``data``."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        where = rng.randrange(len(data))
        if kind < 0.4:
            data[where] ^= 1 << rng.randrange(8)
        elif kind < 0.7:
            data[where:where + 8] = rng.randbytes(8)
        elif kind < 0.85:
            del data[where:where + rng.randint(1, 64)]
        else:
            data[where:where] = data[max(0, where - 32):where]
    return bytes(data)


def test_fuzzed_checkpoints_are_refused_or_loaded(tmp_path: Path) -> None:
    """200 random mutations of a small checkpoint: CheckpointError or a dict, nothing else."""
    buffer = io.BytesIO()
    torch.save({'format': 'pix2voxpp_ros.checkpoint', 'format_version': 1,
                'metadata': WeightsMetadata().to_dict(), 'model_config': {'variant': 'F'},
                'state_dict': {'w': torch.arange(64.0), 'b': torch.zeros(3, 3)}}, buffer)
    original = buffer.getvalue()
    rng = random.Random(24)
    path = tmp_path / 'fuzz.pth'
    outcomes = {'refused': 0, 'loaded': 0}
    deadline = time.monotonic() + 120
    for _ in range(200):
        path.write_bytes(_mutate(original, rng))
        try:
            raw = load_weights_file(path)
        except CheckpointError as exc:
            assert '\n' not in str(exc) and str(exc).startswith(f'{path}: '), str(exc)
            outcomes['refused'] += 1
        else:
            assert raw is None or isinstance(raw, (dict, list, tuple, int, float, str, bytes,
                                                   torch.Tensor))
            outcomes['loaded'] += 1
        assert time.monotonic() < deadline
    assert outcomes['refused'] > 50 and outcomes['loaded'] > 0, outcomes
