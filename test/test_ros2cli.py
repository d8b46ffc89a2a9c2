"""The node under the robot's own command line: ros2 param, lifecycle, node, service.

A robot's operator inspects and drives the node with ros2cli, not with our test rig: these tests
start the real node as a process and run the real ``ros2`` commands (from apt on a robot, from the
offline kit in ``make test``) against it over DDS. Skipped, saying how to get them, where ros2cli
is missing (see ``robot_tools.py``).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from ros_helpers import (NodeProcess, Rig, isolate_ros_domain, wait_for, write_checkpoint,
                         write_params)

pytestmark = [pytest.mark.robot_tools('ros2cli'), pytest.mark.timeout(300)]

NODE = 'p2v_cli'
CAMERA = f'/{NODE}_test/cam0/image'
# With --no-daemon a new participant learns node names from a transient-local sample that
# Fast DDS may resend only at its 3 s heartbeat: look-ups by name spin 3.5 s (the kit's finding).
SPIN = ['--no-daemon', '--spin-time', '3.5']


def ros2(*arguments: str, expect: str, tries: int = 4, timeout: float = 40.0) -> str:
    """Run ``ros2 ARGUMENTS`` until its output matches the regex ``expect``; return the output.

    :raises AssertionError: no try matched (the last output is in the message).
    """
    output = ''
    for _ in range(tries):
        result = subprocess.run(['ros2', *arguments], capture_output=True, text=True,
                                timeout=timeout)
        output = result.stdout + result.stderr
        if re.search(expect, output, re.MULTILINE):
            return output
        time.sleep(1.0)
    raise AssertionError(f'ros2 {" ".join(arguments)}: no {expect!r} in:\n{output}')


@pytest.fixture(scope='module')
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """Run the real node, active, with one camera and a small checkpoint."""
    isolate_ros_domain()
    tmp = tmp_path_factory.mktemp('ros2cli')
    params = write_params(tmp / 'params.yaml', {
        'weights': str(write_checkpoint(tmp / 'f.pth')), 'camera_topics': [CAMERA],
        'device': 'cpu', 'backend': 'torch', 'num_threads': 1, 'threshold': 0.4},
        node_name=NODE)
    process = NodeProcess(params, log_path=tmp / 'node.log', node_name=NODE)
    rig = Rig([CAMERA], node=f'/{NODE}')
    try:
        rig.wait_for_subscribers(timeout=120)
        wait_for(lambda: rig.lifecycle_state() == 'active', timeout=60, what='an active node')
        yield process
    finally:
        rig.close()
        code = process.stop()
        print(process.log()[-3000:])  # shown when a test failed
    assert code == 0, f'the node exited with {code} on Ctrl-C'


def test_ros2_node_info_shows_the_node_and_its_topics(node: NodeProcess) -> None:
    info = ros2('node', 'info', f'/{NODE}', *SPIN,
                expect=r'/occupancy: sensor_msgs/msg/PointCloud2')
    assert f'{CAMERA}: sensor_msgs/msg/Image' in info  # its subscription
    assert f'/{NODE}/reset: std_srvs/srv/Trigger' in info  # its own service


def test_ros2_service_call_reconstruct_says_why_not(node: NodeProcess) -> None:
    ros2('service', 'list', '--no-daemon', '--spin-time', '3.5',
         expect=f'^/{NODE}/reconstruct$')  # served by a hidden helper node
    # No frame was sent: the node refuses, saying what is missing.
    reply = ros2('service', 'call', f'/{NODE}/reconstruct', 'std_srvs/srv/Trigger',
                 expect=r'success=False')
    assert re.search(r"message='[^']*(frame|view)", reply), reply


def test_ros2_param_get_and_set(node: NodeProcess) -> None:
    ros2('param', 'get', f'/{NODE}', 'threshold', *SPIN, expect=r'Double value is: 0\.4\b')
    ros2('param', 'set', f'/{NODE}', 'threshold', '0.6', *SPIN, expect='Set parameter successful')
    # An invalid value is refused with the node's reason, and the old value stays.
    refused = ros2('param', 'set', f'/{NODE}', 'threshold', '1.5', *SPIN,
                   expect='Setting parameter failed')
    assert 'threshold' in refused.split('Setting parameter failed', 1)[1]
    ros2('param', 'get', f'/{NODE}', 'threshold', *SPIN, expect=r'Double value is: 0\.6\b')


def test_ros2_param_dump_lists_every_declared_parameter(node: NodeProcess, tmp_path: Path
                                                        ) -> None:
    from pix2voxpp_ros.core.node_config import PARAMETER_NAMES
    dump = ros2('param', 'dump', f'/{NODE}', *SPIN, expect='ros__parameters')
    for name in PARAMETER_NAMES:
        assert re.search(rf'^\s+{name}:', dump, re.MULTILINE), f'{name} missing from the dump'
    assert CAMERA in dump  # the values too, e.g. the parameters file's camera topic


def test_ros2_lifecycle_drives_the_node(node: NodeProcess) -> None:
    ros2('lifecycle', 'nodes', '--no-daemon', '--spin-time', '3.5', expect=f'^/{NODE}$')
    ros2('lifecycle', 'set', f'/{NODE}', 'deactivate', *SPIN, expect='Transitioning successful')
    ros2('lifecycle', 'get', f'/{NODE}', *SPIN, expect=r'^inactive \[2\]')
    # A structural parameter changes only unconfigured, as the refusal says.
    refused = ros2('param', 'set', f'/{NODE}', 'sync_slop_s', '0.2', *SPIN,
                   expect='Setting parameter failed')
    assert 'unconfigured' in refused
    ros2('lifecycle', 'set', f'/{NODE}', 'cleanup', *SPIN, expect='Transitioning successful')
    ros2('param', 'set', f'/{NODE}', 'sync_slop_s', '0.2', *SPIN,
         expect='Set parameter successful')
    for transition in ('configure', 'activate'):
        ros2('lifecycle', 'set', f'/{NODE}', transition, *SPIN, expect='Transitioning successful')
    ros2('lifecycle', 'get', f'/{NODE}', *SPIN, expect=r'^active \[3\]')
    assert node.alive()
