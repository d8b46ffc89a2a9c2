"""What the reconstruction node reports: its counters, ``/diagnostics`` and throttled logs.

:class:`NodeStats` holds every counter behind one lock: image callbacks and the worker update it,
the diagnostics timer reads it through :meth:`NodeStats.reconstruction_status` and
:meth:`NodeStats.camera_statuses`, which build the DiagnosticStatus messages. :class:`ThrottledLog`
keeps a flood of bad frames from flooding the log.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..core.clock import NS_PER_S
from ..core.drops import FRAME_DROP_REASONS, OBJECT_DROP_REASONS
from ..core.limits import shorten

ERROR_KINDS = ('inference', 'image', 'internal', 'callback')
LOG_THROTTLE_S = 5.0
# Keys the throttle remembers: a few per camera and kind of problem are all a node needs;
# beyond this, expired keys are forgotten and new ones share one overflow key, so keys made
# from senders' data can neither grow the table nor escape the throttle.
MAX_THROTTLE_KEYS = 256
MAX_LOG_CHARS = 2000  # a logged line is cut here: a sender's text must not flood the log
_OVERFLOW_KEY = ('throttle table full',)
STATS_WINDOW = 50  # reconstructions the medians in /diagnostics are taken over


@dataclass
class CameraStats:
    """Counters of one camera topic (updated by its callback, read by the diagnostics timer)."""

    topic: str
    received: int = 0
    accepted: int = 0
    drops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FRAME_DROP_REASONS, 0))
    last_received_s: Optional[float] = None  # monotonic
    last_accepted_s: Optional[float] = None  # monotonic
    encoding: str = ''
    size: str = ''
    rate_mark: tuple[int, float] = (0, 0.0)  # (received, monotonic time) at the last report
    silent: bool = False  # had frames, then went silent (logged once per change)


@dataclass
class RunStats:
    """Counters of reconstructions (updated by the worker, read by the diagnostics timer)."""

    reconstructions: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    sets_dropped_before: int = 0  # of earlier activations' slots
    last_success: Optional[bool] = None
    last_message: str = ''
    last_stamp_ns: Optional[int] = None
    last_views: str = ''
    last_points: int = 0
    last_latency_ms: float = 0.0
    last_model_ms: float = 0.0
    last_breakdown: dict = field(default_factory=dict)  # where the latency went, ms
    last_done_s: Optional[float] = None  # monotonic
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    placements_failed: int = 0  # view sets whose result could not be placed (not published)
    last_placement: str = ''  # x y z heading_deg of the last placed result
    last_placement_iou: str = ''
    last_size_m: str = ''
    models_ms: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    # mask_mode instances: objects published, and left out by reason (OBJECT_DROP_REASONS)
    objects_published: int = 0
    objects_dropped: dict = field(default_factory=lambda: dict.fromkeys(
        (str(r) for r in OBJECT_DROP_REASONS), 0))
    last_objects: int = 0


class ThrottledLog:
    """Log at most once per ``period_s`` per key, saying how many messages were suppressed.

    At most ``max_keys`` keys are remembered (see :data:`MAX_THROTTLE_KEYS`); messages are cut
    to :data:`MAX_LOG_CHARS`.

    :param logger: an rclpy logger.
    """

    def __init__(self, logger: Any, *, period_s: float = LOG_THROTTLE_S,
                 max_keys: int = MAX_THROTTLE_KEYS) -> None:
        self._logger = logger
        self._period_s = period_s
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._last: dict[Any, float] = {}
        self._suppressed: dict[Any, int] = {}

    def warn(self, key: Any, message: str, *, error: bool = False) -> None:
        """Log ``message`` as a warning (or an error) unless ``key`` was logged lately."""
        now = time.monotonic()
        with self._lock:
            if key not in self._last and len(self._last) >= self._max_keys:
                self._forget_expired(now)
                if len(self._last) >= self._max_keys:
                    key = _OVERFLOW_KEY
            last = self._last.get(key)
            if last is not None and now - last < self._period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        message = shorten(message, MAX_LOG_CHARS)
        if suppressed:
            message += f' ({suppressed} more like this since the last report)'
        if error:
            self._logger.error(message)
        else:
            self._logger.warning(message)

    def _forget_expired(self, now: float) -> None:
        """Forget keys not logged within the period (their suppressed counts go with them)."""
        for old in [k for k, t in self._last.items() if now - t >= self._period_s]:
            del self._last[old]
            self._suppressed.pop(old, None)

    @property
    def keys(self) -> int:
        """How many keys the throttle remembers now."""
        with self._lock:
            return len(self._last)


class NodeStats:
    """Every counter of the node behind one lock, and the diagnostics built from them.

    :param name: the node's name, which prefixes every status name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.cameras: list[CameraStats] = []
        self.run = RunStats()

    def reset(self, topics: tuple[str, ...] | list[str]) -> None:
        """Start afresh for these camera topics (at configure)."""
        with self.lock:
            self.cameras = [CameraStats(topic) for topic in topics]
            self.run = RunStats()

    def rename(self, topics: list[str]) -> None:
        """Use the resolved topic names (at activate)."""
        with self.lock:
            for stats, topic in zip(self.cameras, topics):
                stats.topic = topic

    def received(self, camera: int, now_s: float) -> None:
        """Count a frame that arrived on ``camera``."""
        with self.lock:
            stats = self.cameras[camera]
            stats.received += 1
            stats.last_received_s = now_s

    def accepted(self, camera: int, now_s: float, *, encoding: str, size: str) -> None:
        """Count a frame of ``camera`` that went into the view buffer."""
        with self.lock:
            stats = self.cameras[camera]
            stats.accepted += 1
            stats.last_accepted_s = now_s
            stats.encoding = encoding
            stats.size = size

    def dropped(self, camera: int, reason: str) -> None:
        """Count a frame of ``camera`` dropped for ``reason`` (one of FRAME_DROP_REASONS)."""
        with self.lock:
            self.cameras[camera].drops[reason] += 1

    def error(self, kind: str) -> None:
        """Count an error of ``kind`` (one of ERROR_KINDS)."""
        with self.lock:
            self.run.errors[kind] += 1

    def sets_dropped(self, count: int) -> None:
        """Add the view sets a closed slot replaced before the worker took them."""
        with self.lock:
            self.run.sets_dropped_before += count

    def succeeded(self, *, stamp_ns: int, views: str, points: int, latency_ms: float,
                  model_ms: float, breakdown: dict[str, float]) -> bool:
        """Record a published reconstruction; return True when it was the first one."""
        with self.lock:
            run = self.run
            first = run.reconstructions == 0
            run.reconstructions += 1
            run.last_success, run.last_message = True, ''
            run.last_stamp_ns, run.last_views, run.last_points = stamp_ns, views, points
            run.last_breakdown = breakdown
            run.last_latency_ms, run.last_model_ms = latency_ms, model_ms
            run.last_done_s = time.monotonic()
            run.latencies_ms.append(latency_ms)
            run.models_ms.append(model_ms)
        return first

    def placed(self, pose: Any, silhouette_iou: float) -> None:
        """Record the placement of a published reconstruction (an ``ObjectPose``)."""
        with self.lock:
            run = self.run
            run.last_placement = ' '.join(f'{v:.4f}' for v in pose.position) + \
                f' {math.degrees(pose.heading_rad):.2f}'
            run.last_placement_iou = f'{silhouette_iou:.3f}'
            run.last_size_m = f'{pose.size_m:.4f}'

    def objects(self, published: int, left_out: Mapping[str, int]) -> None:
        """Count one view set's objects: published, and left out by reason."""
        with self.lock:
            run = self.run
            run.objects_published += published
            run.last_objects = published
            for reason, count in left_out.items():
                run.objects_dropped[str(reason)] += count

    def placement_failed(self, message: str) -> None:
        """Count a view set whose reconstruction could not be placed (placement_failed)."""
        with self.lock:
            self.run.placements_failed += 1
            self.run.last_message = message

    def failed(self, message: str) -> None:
        """Record a failed reconstruction."""
        with self.lock:
            self.run.last_success = False
            self.run.last_message = message
            self.run.last_done_s = time.monotonic()

    def diagnostics(self, *, stamp: Any, state: str, active: bool, configure_error: str,
                    config: Any, reconstructor: Any, threshold: float, pending_dropped: int,
                    waiting_for: Callable[[], Optional[str]], logger: Any) -> DiagnosticArray:
        """Build the node's DiagnosticArray; log cameras that went silent or came back, once.

        :param config: the node's configuration, None while unconfigured (no camera statuses).
        """
        msg = DiagnosticArray()
        msg.header.stamp = stamp
        main = self.reconstruction_status(
            state=state, configure_error=configure_error, config=config,
            reconstructor=reconstructor, threshold=threshold, pending_dropped=pending_dropped,
            waiting_for=waiting_for)
        cameras, changes = ([], []) if config is None else self.camera_statuses(
            state=state, active=active, max_frame_age_s=config.max_frame_age_s)
        msg.status = [main] + cameras
        for topic, silent, message in changes:
            if silent:
                logger.warning(f'camera {topic}: {message}')
            else:
                logger.info(f'camera {topic}: frames arrive again')
        return msg

    def reconstruction_status(self, *, state: str, configure_error: str, config: Any,
                              reconstructor: Any, threshold: float, pending_dropped: int,
                              waiting_for: Callable[[], Optional[str]]) -> DiagnosticStatus:
        """Build the node's main status.

        :param waiting_for: why no view set is complete, or None when one is (asked only while
            active and healthy).
        """
        device = str(reconstructor.device) if reconstructor else ''
        status = DiagnosticStatus(name=f'{self.name}: reconstruction', hardware_id=device)
        now = time.monotonic()
        with self.lock:
            run = self.run
            latency_med = statistics.median(run.latencies_ms) if run.latencies_ms else 0.0
            model_med = statistics.median(run.models_ms) if run.models_ms else 0.0
            values = {
                'state': state,
                'trigger': config.trigger if config else '',
                'device': device,
                'precision': reconstructor.precision if reconstructor else '',
                'backend': reconstructor.backend if reconstructor else '',
                'weights': config.weights if config else '',
                'threshold': f'{threshold:.3f}',
                **self._run_values(run),
                'latency_ms_median': f'{latency_med:.2f}',
                'model_ms_median': f'{model_med:.2f}',
                'sets_dropped': str(run.sets_dropped_before + pending_dropped),
                'placement': config.placement if config else '',
                'sets_dropped.placement_failed': str(run.placements_failed),
                'placement_iou': run.last_placement_iou,
                'placed_size_m': run.last_size_m,
                'placed_pose': run.last_placement,
            }
            values.update({f'frames_dropped.{r}': str(sum(c.drops[r] for c in self.cameras))
                           for r in FRAME_DROP_REASONS})
            if config is not None and config.instances:
                values['objects_published'] = str(run.objects_published)
                values['last_objects'] = str(run.last_objects)
                values.update({f'objects_dropped.{r}': str(n)
                               for r, n in run.objects_dropped.items()})
            values.update({f'errors.{k}': str(n) for k, n in run.errors.items()})
            last_success, last_message = run.last_success, run.last_message
            last_done, count = run.last_done_s, run.reconstructions
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        if state == 'unconfigured':
            status.level = DiagnosticStatus.ERROR if configure_error else DiagnosticStatus.WARN
            status.message = (f'configure failed: {configure_error}' if configure_error
                              else 'unconfigured: waiting for configure')
        elif state != 'active':
            status.level, status.message = DiagnosticStatus.WARN, f'{state}: not reconstructing'
        elif last_success is False:
            status.level, status.message = DiagnosticStatus.ERROR, f'last {last_message}'
        elif (waiting := waiting_for()) is not None:
            status.level = DiagnosticStatus.WARN  # e.g. a camera stopped publishing
            status.message = f'waiting for views: {waiting}'
        else:
            status.level = DiagnosticStatus.OK
            since = '' if last_done is None else f', last {now - last_done:.1f} s ago'
            status.message = (f'{count} reconstruction(s){since}, median latency '
                              f'{latency_med:.0f} ms (model {model_med:.0f} ms)')
        return status

    @staticmethod
    def _run_values(run: RunStats) -> dict[str, str]:
        """Return the counters and the last reconstruction's numbers as diagnostic values."""
        return {
            'reconstructions': str(run.reconstructions),
            'failed_reconstructions': str(sum(run.errors[k] for k in ERROR_KINDS[:3])),
            'last_stamp': '' if run.last_stamp_ns is None else
            f'{run.last_stamp_ns // NS_PER_S}.{run.last_stamp_ns % NS_PER_S:09d}',
            'last_views': run.last_views,
            'last_points': str(run.last_points),
            'latency_ms': f'{run.last_latency_ms:.2f}',
            'model_ms': f'{run.last_model_ms:.2f}',
            'overhead_ms': f'{run.last_latency_ms - run.last_model_ms:.2f}',
            **{k: f'{v:.2f}' for k, v in run.last_breakdown.items()},
        }

    def camera_statuses(self, *, state: str, active: bool, max_frame_age_s: float
                        ) -> tuple[list[DiagnosticStatus], list[tuple[str, bool, str]]]:
        """Build one status per camera.

        :returns: the statuses, and ``(topic, silent, message)`` for every camera that went
            silent or came back since the last call (for the caller to log once).
        """
        now = time.monotonic()
        statuses, changes = [], []
        with self.lock:
            for stats in self.cameras:
                received, mark_time = stats.rate_mark
                rate = (stats.received - received) / (now - mark_time) if mark_time else 0.0
                stats.rate_mark = (stats.received, now)
                age = None if stats.last_accepted_s is None else now - stats.last_accepted_s
                status = DiagnosticStatus(name=f'{self.name}: camera {stats.topic}',
                                          hardware_id=stats.topic)
                silent = active and (age is None or age > max_frame_age_s)
                if not active:
                    status.level, status.message = DiagnosticStatus.OK, state
                elif age is None:
                    status.level = DiagnosticStatus.WARN
                    status.message = ('no usable frame yet' if stats.received else
                                      'no frames received yet')
                elif silent:
                    status.level = DiagnosticStatus.WARN
                    status.message = f'no usable frame for {age:.1f} s'
                else:
                    status.level = DiagnosticStatus.OK
                    status.message = f'{rate:.1f} Hz'
                went_silent = silent and age is not None  # it had frames before
                if active and went_silent != stats.silent:
                    changes.append((stats.topic, went_silent, status.message))
                stats.silent = went_silent
                values = {'topic': stats.topic, 'rate_hz': f'{rate:.2f}',
                          'frames_received': str(stats.received),
                          'frames_accepted': str(stats.accepted),
                          'last_frame_age_s': '' if age is None else f'{age:.3f}',
                          'encoding': stats.encoding, 'size': stats.size}
                values.update({f'frames_dropped.{r}': str(n) for r, n in stats.drops.items()})
                status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
                statuses.append(status)
        return statuses, changes
