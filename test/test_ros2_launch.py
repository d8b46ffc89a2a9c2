"""The launch files under the real ``ros2 launch`` (a robot's apt install, or the kit here).

Skipped where ``launch_ros`` or ``ros2`` is missing or this package is not in an ament index
(``make test`` provides all three from ``../shared/ros-kit``; see ``robot_tools.py``). Each test
starts ``ros2 launch`` as a process group, checks what the node does over DDS from a
:class:`ros_helpers.Rig`, and stops the launch with Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from ros_helpers import Rig, isolate_ros_domain, wait_for, write_checkpoint

pytestmark = [pytest.mark.robot_tools('launch', 'ros2cli'), pytest.mark.timeout(300)]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator:
    """Start ``ros2 launch`` with arguments; stop every process it started afterwards."""
    isolate_ros_domain()
    started: list[tuple[subprocess.Popen, Path]] = []

    def run(*arguments: str) -> subprocess.Popen:
        log = tmp_path / f'launch{len(started)}.log'
        process = subprocess.Popen(['ros2', 'launch', 'pix2voxpp_ros', *arguments],
                                   stdout=log.open('wb'), stderr=subprocess.STDOUT,
                                   start_new_session=True, env=dict(os.environ))
        started.append((process, log))
        process.log_text = lambda: log.read_text(errors='replace')  # type: ignore[attr-defined]
        return process
    yield run
    for process, log in started:
        # The whole group, even when ros2 launch itself is gone: its nodes may live on.
        for sig in (signal.SIGINT, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                # poll() reaps ros2 launch itself: a zombie would keep the group alive.
                wait_for(lambda: process.poll() is not None and not _group_alive(process.pid),
                         timeout=30,
                         what='the launched processes to end')
                break
            except TimeoutError:
                continue
        process.wait(10)
        print(log.read_text(errors='replace')[-3000:])  # shown when a test failed


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_namespaced_section_of_the_parameters_file_applies(launch, tmp_path: Path) -> None:
    weights = write_checkpoint(tmp_path / 'f.pth')
    camera = '/p2v_launch/cam0/image'
    params = tmp_path / 'robot1.yaml'
    params.write_text(yaml.safe_dump({'/robot1/pix2voxpp': {'ros__parameters': {
        'weights': str(weights), 'camera_topics': [camera], 'device': 'cpu',
        'camera_rois': []}}}))
    process = launch('pix2voxpp.launch.py', 'namespace:=robot1', f'params_file:={params}',
                     'use_rviz:=true')  # rviz2 is missing here: a warning, not an abort
    rig = Rig([camera], node='/robot1/pix2voxpp')
    try:
        rig.wait_for_subscribers(timeout=120)  # the section's camera topic, and active
        assert rig.lifecycle_state() == 'active'
        assert process.poll() is None, 'ros2 launch ended early'
        if 'rviz2 is not installed' not in process.log_text():  # a robot with RViz starts it
            from ament_index_python.packages import get_package_prefix
            assert get_package_prefix('rviz2')
    finally:
        rig.close()


def test_launch_arguments_override_both_parameters_files(launch, tmp_path: Path) -> None:
    """``/**:`` and ``/**/pix2voxpp:`` sections apply; extra_params_file wins; arguments last."""
    weights = write_checkpoint(tmp_path / 'f.pth')
    camera = '/p2v_launch/override/image'
    params = tmp_path / 'all.yaml'
    params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'weights': str(tmp_path / 'not_these.pth'), 'camera_topics': ['/not/this'],
        'device': 'cpu', 'max_rate_hz': 3.0, 'camera_rois': []}}}))
    extra = tmp_path / 'extra.yaml'
    extra.write_text(yaml.safe_dump({'/**/pix2voxpp': {'ros__parameters': {
        'max_rate_hz': 0.5}}}))
    process = launch('pix2voxpp.launch.py', f'params_file:={params}',
                     f'extra_params_file:={extra}', f'weights:={weights}',
                     f'camera_topics:=[{camera}]')
    rig = Rig([camera], node='/pix2voxpp')
    try:
        rig.wait_for_subscribers(timeout=120)  # the argument's topic, with the argument's weights
        from rcl_interfaces.srv import GetParameters
        reply = rig.call(GetParameters, '/pix2voxpp/get_parameters', GetParameters.Request(
            names=['weights', 'camera_topics', 'max_rate_hz', 'device']))
        assert reply.values[0].string_value == str(weights)
        assert list(reply.values[1].string_array_value) == [camera]
        assert reply.values[2].double_value == 0.5  # extra_params_file over params_file
        assert reply.values[3].string_value == 'cpu'  # the /** section
        assert rig.lifecycle_state() == 'active'
        assert process.poll() is None, 'ros2 launch ended early'
    finally:
        rig.close()


def test_a_missing_parameters_file_ends_the_launch_naming_it(launch, tmp_path: Path) -> None:
    process = launch('pix2voxpp.launch.py', f'params_file:={tmp_path / "missing.yaml"}')
    assert process.wait(60) != 0
    assert 'missing.yaml' in process.log_text()


def test_the_demo_takes_the_users_parameters_file(launch, tmp_path: Path) -> None:
    camera = '/rig/camera_0/image_raw'
    params = tmp_path / 'mine.yaml'  # one change on top of the demo's own parameters
    params.write_text(yaml.safe_dump({'pix2voxpp': {'ros__parameters': {'max_rate_hz': 0.5}}}))
    process = launch('demo.launch.py', f'params_file:={params}')  # use_rviz defaults to true
    rig = Rig([camera], node='/pix2voxpp', reliable=True)  # the demo's node wants reliable
    try:
        rig.wait_for_subscribers(timeout=120)
        from rcl_interfaces.srv import GetParameters
        reply = rig.call(GetParameters, '/pix2voxpp/get_parameters',
                         GetParameters.Request(names=['max_rate_hz', 'camera_topics']))
        assert reply.values[0].double_value == 0.5  # the user's file, not the demo's 2.0
        assert len(reply.values[1].string_array_value) == 3  # the rest: the demo's file
        wait_for(lambda: rig.cloud_count() > 0, timeout=120, what='a cloud of the demo')
        assert process.poll() is None, 'ros2 launch ended early'
    finally:
        rig.close()
