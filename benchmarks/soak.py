"""Soak test: the demo rig and the reconstruction node at full rate for a long time.

The rig (``sim_camera_rig``, the demo's three 640x480 cameras, a new object every few seconds)
and the node (demo parameters, no rate limit) run as their own processes over Fast DDS. This
process listens to the clouds and ``/diagnostics`` and records, every period (a minute by
default): the node's resident memory, the latency of the clouds received in that period (stamp to
arrival, median and p95), the reconstructions, frames and sets dropped by reason, and errors
(failed reconstructions, callback errors, error lines in the node's log).

    .venv/bin/python benchmarks/soak.py --minutes 60 --out out/soak

writes ``soak.csv`` (one row per period), ``soak.png`` (memory, latency and rate against time)
and ``soak.json`` (the rows and the verdicts: memory at the end within 5 % of its value at 5
minutes, latency p95 of the last 10 minutes within 1.2x of the first 10, no errors). The exit
status is 0 when the node and the rig stayed up, 1 otherwise; the verdicts are reported, not
enforced (a loaded machine is slow, not broken).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import psutil

from pix2voxpp_ros.ros.demo import DEFAULT_WEIGHTS, start_demo_processes, stop_processes

REPO = Path(__file__).resolve().parents[1]
LARGE_SHM_PROFILE = REPO / 'config' / 'fastdds_large_images.xml'
ERROR_KEYS = ('failed_reconstructions', 'errors.callback', 'errors.internal')


def _parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--minutes', type=float, default=60.0, help='how long to run')
    parser.add_argument('--period-s', type=float, default=60.0, help='one CSV row per period')
    parser.add_argument('--out', type=Path, default=Path('out/soak'), help='output folder')
    parser.add_argument('--weights', type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--backend', default='auto', help='torch, openvino or auto')
    parser.add_argument('--precision', default='fp32', help='fp32, bf16, fp16 or auto')
    parser.add_argument('--rig-rate-hz', type=float, default=4.0,
                        help='camera frame rate (the node reconstructs as fast as it can)')
    parser.add_argument('--object-switch-s', type=float, default=8.0)
    parser.add_argument('--config-dir', type=Path, default=None)
    return parser.parse_args(argv)


class Listener:
    """Clouds (arrival latency) and the node's diagnostics, from this process's rclpy context."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import PointCloud2

        rclpy.init(args=[])
        self._rclpy = rclpy
        self.node = rclpy.create_node(f'pix2voxpp_soak_{os.getpid()}')
        self.lock = threading.Lock()
        self.latencies_s: list[float] = []  # since the last take
        self.values: dict[str, str] = {}  # the node's latest main diagnostics values
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(PointCloud2, '/pix2voxpp/occupancy', self._on_cloud, qos)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down under us
            pass

    def _on_cloud(self, msg: Any) -> None:
        stamp_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.latencies_s.append(time.time() - stamp_s)  # the rig stamps with system time

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.endswith(': reconstruction'):
                with self.lock:
                    self.values = {kv.key: kv.value for kv in status.values}

    def take(self) -> tuple[list[float], dict[str, str]]:
        """Return the latencies since the last call and the latest diagnostics values."""
        with self.lock:
            latencies, self.latencies_s = self.latencies_s, []
            return latencies, dict(self.values)

    def close(self) -> None:
        """Stop spinning and shut this context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _counters(values: dict[str, str]) -> dict[str, int]:
    """Cumulative counters of the node's diagnostics: reconstructions, drops, errors."""
    keys = [k for k in values if k.startswith('frames_dropped.') or k.startswith('errors.')]
    keys += ['reconstructions', 'sets_dropped', 'failed_reconstructions']
    return {k: int(values[k]) for k in keys if values.get(k, '').isdigit()}


def _log_errors(path: Path) -> int:
    """Error lines the node logged (ROS loggers print ``[ERROR]``)."""
    try:
        return path.read_text(errors='replace').count('[ERROR]')
    except OSError:
        return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak and return its report (rows and verdicts)."""
    os.environ['ROS_DOMAIN_ID'] = str(random.randint(60, 200))  # keep concurrent runs apart
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(LARGE_SHM_PROFILE))
    args.out.mkdir(parents=True, exist_ok=True)
    listener = Listener()
    processes = start_demo_processes(
        args, dict(os.environ), args.out, rig_parameters=[f'rate_hz:={args.rig_rate_hz}'],
        node_parameters=['max_rate_hz:=0.0'])
    node = psutil.Process(processes[1].pid)
    rows: list[dict[str, Any]] = []
    previous: dict[str, int] = {}
    start = time.monotonic()
    alive = True
    try:
        while time.monotonic() - start < args.minutes * 60.0:
            time.sleep(max(0.0, start + (len(rows) + 1) * args.period_s - time.monotonic()))
            if any(p.poll() is not None for p in processes):
                alive = False
                print('soak: a process exited early; see the logs in', args.out, file=sys.stderr)
                break
            latencies, values = listener.take()
            counters = _counters(values)
            delta = {k: v - previous.get(k, 0) for k, v in counters.items()}
            previous = counters
            row = {
                'minute': round((time.monotonic() - start) / 60.0, 2),
                'rss_mib': round(node.memory_info().rss / 2**20, 1),
                'clouds': len(latencies),
                'latency_median_ms': round(statistics.median(latencies) * 1e3, 1)
                if latencies else '',
                'latency_p95_ms': round(_percentile(latencies, 0.95) * 1e3, 1)
                if latencies else '',
                'reconstructions': delta.get('reconstructions', 0),
                'sets_dropped': delta.get('sets_dropped', 0),
                'errors': sum(delta.get(k, 0) for k in ERROR_KEYS),
                'log_errors': _log_errors(args.out / 'node.log'),
            }
            row.update({k: v for k, v in sorted(delta.items()) if k.startswith('frames_dropped.')})
            rows.append(row)
            print(' '.join(f'{k} {v}' for k, v in row.items() if not k.startswith('frames')),
                  flush=True)
    finally:
        stop_processes(processes)
        listener.close()
    return {'rows': rows, 'alive': alive, 'minutes': args.minutes,
            'verdicts': verdicts(rows, period_s=args.period_s)}


def verdicts(rows: list[dict[str, Any]], *, period_s: float) -> dict[str, Any]:
    """Judge the soak: memory flat after warm-up, latency not drifting, no errors."""
    per_minute = 60.0 / period_s
    result: dict[str, Any] = {
        'errors': sum(r['errors'] for r in rows) + (rows[-1]['log_errors'] if rows else 0)}
    warm = int(round(5 * per_minute)) - 1  # the row at 5 minutes
    if rows and warm < len(rows) - 1:
        change = rows[-1]['rss_mib'] / rows[warm]['rss_mib'] - 1.0
        result['rss_change_since_5_min'] = round(change, 4)
        result['rss_ok'] = abs(change) <= 0.05
    window = int(round(10 * per_minute))
    p95 = [r['latency_p95_ms'] for r in rows if r['latency_p95_ms'] != '']
    if len(p95) >= 2 * window:
        first, last = statistics.median(p95[:window]), statistics.median(p95[-window:])
        result['latency_p95_ratio_last_to_first_10_min'] = round(last / first, 3)
        result['latency_ok'] = last <= 1.2 * first
    result['errors_ok'] = result['errors'] == 0
    return result


def write_outputs(report: dict[str, Any], folder: Path) -> None:
    """Write soak.json, soak.csv and soak.png."""
    rows = report['rows']
    (folder / 'soak.json').write_text(json.dumps(report, indent=2) + '\n')
    if not rows:
        return
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with (folder / 'soak.csv').open('w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval=0)
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    minutes = [r['minute'] for r in rows]
    figure, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(minutes, [r['rss_mib'] for r in rows], marker='.')
    axes[0].set_ylabel('node RSS (MiB)')
    timed = [r for r in rows if r['latency_p95_ms'] != '']
    axes[1].plot([r['minute'] for r in timed], [r['latency_median_ms'] for r in timed],
                 marker='.', label='median')
    axes[1].plot([r['minute'] for r in timed], [r['latency_p95_ms'] for r in timed],
                 marker='.', label='p95')
    axes[1].set_ylabel('frame to cloud (ms)')
    axes[1].legend()
    period_min = minutes[0] if minutes else 1.0
    axes[2].plot(minutes, [r['reconstructions'] / period_min for r in rows], marker='.',
                 label='reconstructions')
    axes[2].plot(minutes, [r['sets_dropped'] / period_min for r in rows], marker='.',
                 label='sets replaced before their turn')
    axes[2].set_ylabel('per minute')
    axes[2].set_xlabel('minutes')
    axes[2].legend()
    for axis in axes:
        axis.grid(alpha=0.3)
    verdict = report['verdicts']
    figure.suptitle(f'soak: {report["minutes"]:g} min, errors {verdict["errors"]}')
    figure.tight_layout()
    figure.savefig(folder / 'soak.png', dpi=110)
    plt.close(figure)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the soak; 0 when both processes stayed up."""
    args = _parse_args(argv)
    if not args.weights.is_file():
        print(f'soak: weights file not found: {args.weights}', file=sys.stderr)
        return 2
    report = run(args)
    write_outputs(report, args.out)
    print(json.dumps(report['verdicts'], indent=2))
    print(f'soak: wrote {args.out}/soak.csv, soak.png, soak.json')
    return 0 if report['alive'] else 1


if __name__ == '__main__':
    sys.exit(main())
