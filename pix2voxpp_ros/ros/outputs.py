"""The reconstruction node's outputs: the worker's job and the topics it publishes.

:func:`reconstruct_and_publish` is what the worker thread runs for one view set (prepare, infer,
publish, count); :func:`failed_outcome` is what it runs when that raised. :class:`ResultPublisher`
owns ``~/occupancy``, ``~/grid`` and ``~/markers``; markers are built only while someone
watches, and the latched topic never shows a late viewer markers of an older cloud.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from ..core.calibration import PlacementFailedError, PoseSource, place_view_set
from ..core.drops import FrameDrop
from ..core.inference import InferenceError, Reconstructor
from ..core.node_config import NodeConfig
from ..core.placement import ObjectPose
from ..core.preprocess import ImageInputError
from ..core.views import NS_PER_S
from .conversions import (clear_markers, grid_to_markers, ns_to_stamp, objects_to_markers,
                          reconstruction_messages)
from .diagnostics import NodeStats, ThrottledLog
from .placement_io import PlacementPublisher
from .worker import Job, Outcome, ViewPreparer

MARKER_CHECK_PERIOD_S = 0.1  # how soon a new marker viewer gets markers of the latest cloud

# Outputs are latched (transient local): RViz or a planner started later gets the last result.
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


@dataclass(frozen=True)
class Placing:
    """What the worker needs to place results (``placement: calibrated``).

    :ivar poses: camera poses (TF or ``camera_poses``).
    :ivar publisher: ``~/object_pose`` and the object's TF frame.
    :ivar report_drop: logs and counts a frame left out (``no_transform``), as the inputs do.
    """

    poses: PoseSource
    publisher: PlacementPublisher
    report_drop: Callable[[FrameDrop], None]

    def failed(self, exc: PlacementFailedError, what: str, *, stats: NodeStats,
               log: Optional[ThrottledLog]) -> Outcome:
        """Count and log a view set that could not be placed; nothing of it is published.

        :param what: names the view set in the message.
        """
        for drop in exc.drops:
            self.report_drop(drop)
        message = f'{what} failed: {exc}'
        stats.placement_failed(message)
        if log is not None:
            log.warn(('placement',), message + '; nothing published')
        return Outcome(False, message)


class ResultPublisher:
    """The node's three output topics.

    :param node: a lifecycle node (the publishers are lifecycle publishers).
    :param log: the node's throttled log (for a failing marker timer).
    """

    def __init__(self, node: Any, log: ThrottledLog) -> None:
        self._log = log
        self._cloud_pub = node.create_lifecycle_publisher(PointCloud2, '~/occupancy', OUTPUT_QOS)
        self._marker_pub = node.create_lifecycle_publisher(MarkerArray, '~/markers', OUTPUT_QOS)
        self._grid_pub = node.create_lifecycle_publisher(PointCloud2, '~/grid', OUTPUT_QOS)
        # Markers cost ~10 ms per 1,000 voxels, so they are built only while someone watches.
        self._marker_lock = threading.Lock()
        self._markers_current = False  # the latched markers show the latest cloud
        # The latest cloud's header and what builds its markers (for a viewer joining later).
        self._last_output: Optional[tuple[Header, Callable[[], MarkerArray]]] = None
        node.create_timer(MARKER_CHECK_PERIOD_S, self._refresh_markers)

    @property
    def markers_watched(self) -> bool:
        """Whether anyone subscribes to ``~/markers`` now."""
        return self._marker_pub.get_subscription_count() > 0

    def publish(self, grid: np.ndarray, *, threshold: float, object_size_m: float,
                header: Header, pose: Optional[ObjectPose] = None) -> tuple[PointCloud2, int]:
        """Publish cloud, grid and (when watched) markers, placed at ``pose`` when given.

        :returns: the cloud and the monotonic time in ns when it was published.
        """
        messages = reconstruction_messages(
            grid, threshold=threshold, object_size_m=object_size_m, header=header,
            markers=self.markers_watched, pose=pose)
        self._cloud_pub.publish(messages.cloud)
        published_ns = time.monotonic_ns()
        self._grid_pub.publish(messages.grid)
        self._publish_markers(messages.markers, header, lambda: grid_to_markers(
            grid, threshold=threshold, object_size_m=object_size_m, header=header, pose=pose))
        return messages.cloud, published_ns

    def publish_objects(self, cloud: PointCloud2, markers: Optional[MarkerArray], *,
                        header: Header, build_markers: Callable[[], MarkerArray]) -> int:
        """Publish the cloud of every object and (when built) their markers; ``~/grid`` rests.

        :param build_markers: builds the markers when a viewer joins later.
        :returns: the monotonic time in ns when the cloud was published.
        """
        self._cloud_pub.publish(cloud)
        published_ns = time.monotonic_ns()
        self._publish_markers(markers, header, build_markers,
                              retract=lambda: objects_to_markers([], header=header))
        return published_ns

    def _publish_markers(self, markers: Optional[MarkerArray], header: Header,
                         build: Callable[[], MarkerArray],
                         retract: Optional[Callable[[], MarkerArray]] = None) -> None:
        """Publish the markers of the latest cloud, or retract the latched ones when unbuilt.

        :param retract: builds the DELETEALL markers (default: the single object's namespace).
        """
        with self._marker_lock:
            self._last_output = (header, build)
            if markers is not None:
                self._marker_pub.publish(markers)
                self._markers_current = True
            elif self._markers_current:
                # Nobody watches: replace the latched markers by a cheap DELETEALL of this stamp,
                # so a viewer joining later never sees an older object next to the cloud.
                self._marker_pub.publish(clear_markers(header) if retract is None
                                         else retract())
                self._markers_current = False

    def _refresh_markers(self) -> None:
        """Timer: give a viewer that joined since the last reconstruction its markers."""
        try:
            if self._markers_current or self._last_output is None or not self.markers_watched:
                return
            with self._marker_lock:
                if self._markers_current or self._last_output is None:
                    return
                self._marker_pub.publish(self._last_output[1]())
                self._markers_current = True
        except Exception as exc:  # noqa: BLE001 - a timer callback never kills the spin
            self._log.warn('markers', f'markers failed: {type(exc).__name__}: {exc}')


def describe_views(job: Job, topics: list[str]) -> str:
    """Name the views of a job for logs and diagnostics."""
    names = [topics[c] if c < len(topics) else str(c) for c in job.views.cameras]
    if len(set(names)) == 1 and len(names) > 1:
        return f'{len(names)} key frames of {names[0]}'
    return ', '.join(names)


def reconstruct_and_publish(job: Job, *, reconstructor: Reconstructor, preparer: ViewPreparer,
                            config: NodeConfig, threshold: float, publisher: ResultPublisher,
                            stats: NodeStats, topics: list[str], logger: Any,
                            log: Optional[ThrottledLog] = None,
                            placing: Optional[Placing] = None) -> Outcome:
    """Reconstruct one view set, place it (``placing``), publish the results and count them."""
    frames = job.views.frames
    started_ns = time.monotonic_ns()
    # What Reconstructor.reconstruct does, with each frame preprocessed once, maybe early.
    views = np.stack(preparer.views(frames))  # (V, 3, 224, 224)
    prepared_ns = time.monotonic_ns()
    grid = reconstructor.infer(views[None])[0]  # (R, R, R), R = reconstructor.resolution
    inferred_ns = time.monotonic_ns()
    model_ms = reconstructor.last_model_time_s * 1e3
    names = describe_views(job, topics)
    pose, size, frame_id, quality = None, config.object_size_m, config.frame_id, ''
    if placing is not None:
        try:
            placed = place_view_set(grid, job.views, threshold=threshold, poses=placing.poses,
                                    settings=config.placement_settings())
        except PlacementFailedError as exc:
            return placing.failed(exc, f'placement of {len(frames)} view(s) ({names}, stamp '
                                       f'{job.views.newest_stamp_ns / NS_PER_S:.3f})',
                                  stats=stats, log=log)
        for drop in placed.drops:
            placing.report_drop(drop)
        grid, pose, size, frame_id = placed.grid, placed.pose, placed.pose.size_m, \
            config.fixed_frame
        quality = (f'; placed in {frame_id} at ({", ".join(f"{v:.3f}" for v in pose.position)}) '
                   f'm, heading {math.degrees(pose.heading_rad):.1f} deg, size {size:.3f} m, '
                   f'silhouette IoU {placed.silhouette_iou:.2f}')
    placed_ns = time.monotonic_ns()
    header = Header(stamp=ns_to_stamp(job.views.newest_stamp_ns), frame_id=frame_id)
    cloud, published_ns = publisher.publish(grid, threshold=threshold, object_size_m=size,
                                            header=header, pose=pose)
    if placing is not None and pose is not None:
        placing.publisher.publish(pose, header, object_frame=config.frame_id)
        stats.placed(pose, placed.silhouette_iou)
    latency_ms = (published_ns - job.views.newest_received_ns) / 1e6
    breakdown = {'queue_ms': (started_ns - job.views.newest_received_ns) / 1e6,
                 'prepare_ms': (prepared_ns - started_ns) / 1e6,
                 'infer_ms': (inferred_ns - prepared_ns) / 1e6,
                 'place_ms': (placed_ns - inferred_ns) / 1e6,
                 'publish_ms': (published_ns - placed_ns) / 1e6}
    first = stats.succeeded(stamp_ns=job.views.newest_stamp_ns, views=names, points=cloud.width,
                            latency_ms=latency_ms, model_ms=model_ms, breakdown=breakdown)
    summary = (f'{len(frames)} view(s) ({names}), stamp '
               f'{job.views.newest_stamp_ns / NS_PER_S:.3f}: {cloud.width} occupied voxels at '
               f'threshold {threshold:.2f}{quality}; model {model_ms:.1f} ms, frame to cloud '
               f'{latency_ms:.1f} ms')
    if first:
        logger.info(f'first reconstruction published: {summary}')
    else:
        logger.debug(f'reconstructed {summary}')
    return Outcome(True, f'reconstructed from {summary}')


def failed_outcome(job: Job, exc: Exception, *, stats: NodeStats, log: ThrottledLog,
                   topics: list[str], shutting_down: Callable[[], bool]) -> Outcome:
    """Log (throttled) and count a failed reconstruction; the worker goes on."""
    if shutting_down():  # Ctrl-C shut ROS down under a running reconstruction
        return Outcome(False, 'ROS is shutting down')
    if isinstance(exc, InferenceError):
        kind = 'inference'
    elif isinstance(exc, ImageInputError):
        kind = 'image'
    else:
        kind = 'internal'
    stats.error(kind)
    message = (f'reconstruction from {len(job.views)} view(s) ({describe_views(job, topics)}, '
               f'stamp {job.views.newest_stamp_ns / NS_PER_S:.3f}) failed: '
               f'{type(exc).__name__}: {exc}')
    stats.failed(message)
    detail = '' if kind != 'internal' else '\n' + ''.join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.warn(('worker', kind), message + detail, error=True)
    return Outcome(False, message)
