"""Two minutes of the soak benchmark in the suite: the node's memory stays flat, no errors.

``benchmarks/soak.py`` runs the demo rig and the node at full rate as processes over Fast DDS;
the hour-long run and its speed figures are in the README. Speed is not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ros_helpers import REPO_ROOT, isolate_ros_domain

pytestmark = [pytest.mark.slow, pytest.mark.first_tier, pytest.mark.timeout(400)]


def test_two_minutes_at_full_rate_keep_memory_flat_and_raise_no_errors(tmp_path) -> None:
    isolate_ros_domain()
    out = tmp_path / 'soak'
    run = subprocess.run([sys.executable, str(REPO_ROOT / 'benchmarks' / 'soak.py'),
                          '--minutes', '2', '--period-s', '20', '--device', 'cpu',
                          '--out', str(out)], capture_output=True, text=True, timeout=360)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / 'soak.json').read_text())
    rows = report['rows']
    assert report['alive'] and len(rows) == 6
    assert sum(r['reconstructions'] for r in rows) > 0 and all(r['clouds'] for r in rows[1:])
    assert report['verdicts']['errors'] == 0, rows
    after_warm_up = rows[2]['rss_mib']  # at one minute: model loaded, buffers in use
    assert rows[-1]['rss_mib'] <= 1.1 * after_warm_up, [r['rss_mib'] for r in rows]
    assert (out / 'soak.csv').read_text().count('\n') == len(rows) + 1
    assert (out / 'soak.png').stat().st_size > 10_000
