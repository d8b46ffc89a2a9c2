"""The real node given hostile weights over real DDS: a zip bomb and bad metadata (issue 24).

Configure fails with one clear reason in the diagnostics and the log, the node's memory stays
bounded (a 6 GiB record is never allocated), and it stays up: good weights then configure.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
from lifecycle_msgs.msg import Transition

from ros_helpers import (NodeProcess, Rig, isolate_ros_domain, wait_for, write_checkpoint,
                         write_params)
from zip_bombs import write_zip_bomb

pytestmark = [pytest.mark.timeout(300), pytest.mark.first_tier]

STARTUP_S = 120.0  # importing torch and rclpy on a loaded 2-core machine
NODE = 'pix2voxpp_hostile_weights'


class PeakRss:
    """Sample a process's resident memory every 20 ms in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        """Stop sampling; return the peak."""
        self._stop.set()
        self._thread.join(5)
        return self.peak


def test_zip_bomb_and_bad_metadata_weights_keep_the_node_up(tmp_path: Path) -> None:
    isolate_ros_domain()
    weights = write_zip_bomb(tmp_path / 'weights.pth')  # 6 MB file, one 6 GiB record
    params = write_params(tmp_path / 'p.yaml', {'weights': str(weights),
                                                'camera_topics': ['/p2v_hw/cam/image'],
                                                'device': 'cpu', 'num_threads': 1},
                          node_name=NODE)
    node = NodeProcess(params, log_path=tmp_path / 'node.log', node_name=NODE)
    memory = PeakRss(node.pid)
    rig = Rig([], node=f'/{NODE}')
    try:
        def status() -> Any:
            return rig.latest_diagnostics().get(f'{NODE}: reconstruction')

        level, message, _ = wait_for(status, timeout=STARTUP_S, what='diagnostics')
        assert level == 2, message
        assert "record 'archive/data/0' declares 6144 MiB, more than the 1024 MiB" in message
        assert rig.lifecycle_state() == 'unconfigured' and node.alive()

        write_checkpoint(weights)
        raw = torch.load(weights, weights_only=True)
        raw['metadata']['input_size'] = 0  # looped forever in preprocessing before
        torch.save(raw, weights)
        assert not rig.change_state(Transition.TRANSITION_CONFIGURE)
        wait_for(lambda: 'refused metadata: input_size 0: must be 224' in status()[1],
                 timeout=30, what='the metadata reason in the diagnostics')

        write_checkpoint(weights)
        assert rig.change_state(Transition.TRANSITION_CONFIGURE)
        assert rig.lifecycle_state() == 'inactive' and node.alive()
        log = node.log()
        assert log.count('configure failed') == 2 and 'Traceback' not in log
    finally:
        peak = memory.stop()
        rig.close()
        code = node.stop()
    assert code == 0
    assert peak < 2 << 30, f'node peak RSS {peak >> 20} MiB'
