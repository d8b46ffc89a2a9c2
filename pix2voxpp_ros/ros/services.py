"""The reconstruction node's services ``~/reconstruct`` and ``~/reset``, and their answers.

``~/reconstruct`` waits for its result, so it is served by a hidden helper node spun on a thread
of its own (:func:`serve_on_helper`): the wait never blocks image callbacks, diagnostics or
lifecycle services of the node's single-threaded executor. :class:`NodeServices` answers both
from a :class:`Snapshot` of the node that it asks for on each call.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, NamedTuple, Optional

import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from ..core.node_config import NodeConfig
from ..core.pending_slot import PendingSlot
from ..core.views import ViewBuffer
from .worker import Job, submit_and_wait

SERVICE_TIMEOUT_S = 60.0


def _spin_quietly(executor: SingleThreadedExecutor) -> None:
    try:
        executor.spin()
    except Exception:  # noqa: BLE001 - ExternalShutdownException or a context shut down
        pass


def serve_on_helper(node: Any, srv_type: Any, relative_name: str,
                    callback: Callable[[Any, Any], Any]) -> tuple[Any, SingleThreadedExecutor]:
    """Serve ``relative_name`` (e.g. ``~/reconstruct``) of ``node`` from a hidden helper node.

    :returns: the helper node and its executor (shut both down before destroying ``node``).
    """
    resolve = getattr(node, 'resolve_service_name', None)  # absent from older rclpy
    name = resolve(relative_name) if resolve else \
        f'{node.get_fully_qualified_name()}/{relative_name.lstrip("~/")}'
    # Its own name ('_' hides it from node lists) and no global arguments, so that a remap of
    # the node's name does not give both nodes the same one.
    helper = rclpy.create_node(f'_{node.get_name()}_{name.rsplit("/", 1)[-1]}',
                               context=node.context, namespace=node.get_namespace(),
                               use_global_arguments=False, start_parameter_services=False,
                               enable_rosout=False)
    helper.create_service(srv_type, name, callback)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(helper)
    threading.Thread(target=_spin_quietly, args=(executor,), daemon=True,
                     name=f'pix2voxpp_{name.rsplit("/", 1)[-1]}_service').start()
    return helper, executor


def explain_incomplete(config: NodeConfig, buffer: ViewBuffer, *, now_ns: int,
                       topics: list[str]) -> str:
    """Say why the buffer holds no complete view set, with the numbers that decide it."""
    status = buffer.status(now_ns=now_ns)
    if config.moving_camera:
        return (f'no complete view set: {status.key_frames} of {status.required} key frames '
                f'(at least {config.min_view_interval_s} s apart, younger than '
                f'max_frame_age_s {config.max_frame_age_s} s)')
    held = ', '.join(f'{topic}: ' + ('no fresh frame' if age is None else f'{age:.2f} s old')
                     for topic, age in zip(topics or config.camera_topics, status.ages_s))
    return (f'no complete view set: need {status.required} camera(s) with frames within '
            f'sync_slop_s {config.sync_slop_s} s of each other and younger than '
            f'max_frame_age_s {config.max_frame_age_s} s; have {held}')


def reconstruct_now(buffer: ViewBuffer, slot: PendingSlot[Job], *, now_ns: int,
                    explain: Callable[[], str],
                    timeout_s: float = SERVICE_TIMEOUT_S) -> tuple[bool, str]:
    """Reconstruct from the buffer's current complete view set and wait for the outcome.

    :returns: ``(success, message)`` as ``~/reconstruct`` answers them.
    """
    start_ns = time.monotonic_ns()
    view_set = buffer.complete_set(now_ns=now_ns)
    if view_set is None:
        return False, explain()
    buffer.mark_taken(view_set)
    outcome = submit_and_wait(slot, view_set, timeout=timeout_s)
    if outcome is None:
        return False, (f'no result within {timeout_s:.0f} s; the reconstruction goes on in the '
                       'background')
    return outcome.success, (f'{outcome.message}; service latency '
                             f'{(time.monotonic_ns() - start_ns) / 1e6:.1f} ms')


def waiting_for_views(config: Optional[NodeConfig], buffer: Optional[ViewBuffer], *,
                      now_ns: int, topics: list[str]) -> Optional[str]:
    """Why no camera's frame is usable right now, or None when some are (for diagnostics)."""
    if config is None or buffer is None or buffer.status(now_ns=now_ns).complete_views:
        return None
    return explain_incomplete(config, buffer, now_ns=now_ns, topics=topics)


class Snapshot(NamedTuple):
    """What the services need to know of the node at the time of a call."""

    state: str
    active: bool
    config: Optional[NodeConfig]
    buffer: Optional[ViewBuffer]
    slot: Optional[PendingSlot[Job]]
    topics: list[str]


class NodeServices:
    """Serve ``~/reset`` on ``node`` and ``~/reconstruct`` on a helper node.

    :param snapshot: returns the node's current state on each call.
    """

    def __init__(self, node: Any, snapshot: Callable[[], Snapshot]) -> None:
        self._node = node
        self._snapshot = snapshot
        node.create_service(Trigger, '~/reset', self._on_reset)
        self._helper, self._executor = serve_on_helper(node, Trigger, '~/reconstruct',
                                                       self._on_reconstruct)

    def close(self) -> None:
        """Stop the helper node (before the node is destroyed)."""
        self._executor.shutdown(timeout_sec=5.0)
        self._helper.destroy_node()

    def _now_ns(self) -> int:
        return self._node.get_clock().now().nanoseconds

    def explain_incomplete(self, now: Optional[Snapshot] = None) -> str:
        """Say why no complete view set exists now."""
        now = now or self._snapshot()
        if now.buffer is None or now.config is None:
            return 'the node is not configured'
        return explain_incomplete(now.config, now.buffer, now_ns=self._now_ns(),
                                  topics=now.topics)

    def _on_reconstruct(self, request: Trigger.Request,
                        response: Trigger.Response) -> Trigger.Response:
        """Reconstruct from the current complete view set and answer with what was used."""
        try:
            now = self._snapshot()
            if not now.active or now.buffer is None or now.slot is None:
                response.success = False
                response.message = f'the node is {now.state}, not active'
                return response
            response.success, response.message = reconstruct_now(
                now.buffer, now.slot, now_ns=self._now_ns(),
                explain=lambda: self.explain_incomplete(now))
        except Exception as exc:  # noqa: BLE001 - a service must always answer
            response.success = False
            response.message = f'{type(exc).__name__}: {exc}'
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Forget every buffered frame and stamp."""
        now = self._snapshot()
        response.success = True
        if now.buffer is None:
            response.message = f'nothing to clear: the node is {now.state}'
            return response
        now.buffer.reset()
        response.message = f'cleared the frames of {now.buffer.config.num_cameras} camera(s)'
        self._node.get_logger().info('view buffer reset')
        return response
