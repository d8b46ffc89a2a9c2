"""The demo's processes: the reconstruction node and the simulated rig, started and stopped.

Both run as their own Python processes (``python -m``, this interpreter) with the demo's parameter
files, so they use the code this process imports; their output goes to ``node.log`` and
``rig.log``. ``benchmarks/soak.py`` starts them the same way.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..rig_topics import NAMESPACE
from .scene_setup import config_dir

NODE_READY_TIMEOUT_S = 120.0  # loading and warming up the weights on a busy CPU


def _commands(args: argparse.Namespace, rig_parameters: Sequence[str],
              node_parameters: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return the rig's and the node's command lines."""
    config = args.config_dir or config_dir()
    rig_cmd = [sys.executable, '-m', 'pix2voxpp_ros.ros.sim_camera_rig', '--ros-args',
               '-r', f'__ns:={NAMESPACE}', '--params-file', str(config / 'demo_rig.yaml')]
    if args.object_switch_s is not None:
        rig_cmd += ['-p', f'object_switch_s:={args.object_switch_s}']
    node_cmd = [sys.executable, '-m', 'pix2voxpp_ros.ros.reconstruction_node', '--ros-args',
                '--params-file', str(config / 'demo_node.yaml'),
                '-p', f'weights:={args.weights.resolve()}', '-p', f'device:={args.device}',
                '-p', f'backend:={args.backend}', '-p', f'precision:={args.precision}']
    for command, overrides in ((rig_cmd, rig_parameters), (node_cmd, node_parameters)):
        for override in overrides:
            command += ['-p', override]
    return rig_cmd, node_cmd


def start_demo_processes(args: argparse.Namespace, env: dict[str, str], folder: Path, *,
                         rig_parameters: Sequence[str] = (),
                         node_parameters: Sequence[str] = (),
                         node_ready: Optional[Callable[[], bool]] = None,
                         ready_timeout_s: float = NODE_READY_TIMEOUT_S) -> list[subprocess.Popen]:
    """Start the node and the rig as their own processes; their logs go to ``folder``.

    With ``node_ready``, the rig starts only once it returns true (the node has loaded its
    weights and subscribed), so the first object is not shown to a node still loading and the
    demo always scores the same objects; after ``ready_timeout_s``, or if the node exits, the
    rig starts anyway and the caller sees what the node logged.

    :param args: needs ``config_dir``, ``object_switch_s``, ``weights``, ``device``,
        ``backend`` and ``precision``.
    :param rig_parameters: more ``name:=value`` overrides of the rig (e.g. for the soak test).
    :param node_parameters: more ``name:=value`` overrides of the node.
    :returns: ``[rig, node]``.
    """
    rig_cmd, node_cmd = _commands(args, rig_parameters, node_parameters)

    def start(name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(folder / f'{name}.log', 'w')
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    node = start('node', node_cmd)
    if node_ready is not None:
        deadline = time.monotonic() + ready_timeout_s
        while node.poll() is None and time.monotonic() < deadline and not node_ready():
            time.sleep(0.1)
    return [start('rig', rig_cmd), node]


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ctrl-C each process, wait for them, kill what hangs."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
