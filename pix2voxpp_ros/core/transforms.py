"""A small transform tree for recorded TF: poses between frames at a time, interpolated.

``pix2voxpp-bag`` places reconstructions like the node, but offline there is no ``tf2_ros``
listener: the recording's ``/tf`` and ``/tf_static`` messages go into a :class:`TransformTree`,
and :meth:`TransformTree.lookup` gives a frame's pose in another at a stamp, as TF would: the
chain of parent -> child edges through their common ancestor, each dynamic edge interpolated
between the two transforms around the stamp (translation linearly, rotation along the shorter
arc), never extrapolated. Static edges hold at any time. History is bounded per edge and in
all, and the number of frames and the length of their names are bounded, whatever a recording
holds. :class:`ResolvedPoses` keeps the poses of a view set's frames as they were looked up when
the set was complete, so the bag tool can place the set later, on another thread, while the
tree already holds the transforms that came after. Pure numpy.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from .calibration import PoseSource, PoseUnavailableError
from .geometry import PoseError, matrix_to_quaternion, quaternion_to_matrix
from .limits import MAX_FRAME_ID_CHARS
from .views import Frame

#: Transforms kept per dynamic edge (the newest; TF keeps 10 s, and 1,000 is 10 s at
#: 100 Hz), and child frames a tree may hold (no robot has that many).
MAX_HISTORY = 1000
MAX_FRAMES = 10_000
#: Edges from a frame up to its root: a humanoid's deepest chain has a few dozen; a deeper one
#: (a recording chaining thousands of frames) would make every transform and look-up walk it.
MAX_DEPTH = 100
#: Dynamic transforms kept in all edges together: 200 frames moving at 100 Hz for 10 s, about
#: 60 MB; further transforms of a new stamp are refused (10,000 frames x 1,000 would be 3 GB).
MAX_TRANSFORMS = 200_000
#: Bytes of one recorded tf2_msgs/TFMessage: a robot's largest, /tf_static of a few hundred
#: frames, is tens of KB; one transform is at least 60 bytes, so at most ~17,000 a message.
MAX_TF_MESSAGE_BYTES = 1 << 20


@dataclass
class _Edge:
    parent: str
    static: Optional[np.ndarray] = None  # (4, 4) for a static edge
    stamps: list[int] = field(default_factory=list)  # sorted, ns
    poses: list[np.ndarray] = field(default_factory=list)  # (4, 4) child in parent


def _interpolate(a: np.ndarray, b: np.ndarray, fraction: float) -> np.ndarray:
    """Pose between ``a`` and ``b``: translation linear, rotation by slerp."""
    qa, qb = np.array(matrix_to_quaternion(a[:3, :3])), np.array(matrix_to_quaternion(b[:3, :3]))
    dot = float(qa @ qb)
    if dot < 0.0:  # the shorter way round
        qb, dot = -qb, -dot
    if dot > 0.9995:
        q = qa + fraction * (qb - qa)
    else:
        angle = np.arccos(min(dot, 1.0))
        q = (np.sin((1 - fraction) * angle) * qa + np.sin(fraction * angle) * qb) / np.sin(angle)
    pose = np.eye(4)
    pose[:3, :3] = quaternion_to_matrix(q)
    pose[:3, 3] = (1 - fraction) * a[:3, 3] + fraction * b[:3, 3]
    return pose


class TransformTree:
    """Transforms between named frames, static or stamped.

    :param max_history: transforms kept per dynamic edge (the oldest are forgotten).
    :param max_frames: frames the tree may hold; transforms of further frames are refused.
    :param max_transforms: dynamic transforms kept in all edges; further new ones are refused.
    """

    def __init__(self, *, max_history: int = MAX_HISTORY, max_frames: int = MAX_FRAMES,
                 max_transforms: int = MAX_TRANSFORMS) -> None:
        self._edges: dict[str, _Edge] = {}
        self._max_history = max_history
        self._max_frames = max_frames
        self._max_transforms = max_transforms
        self._stored = 0  # dynamic transforms in all edges
        self.refused = 0  # transforms not stored (a limit, a loop, a bad matrix or name)

    def add(self, parent: str, child: str, stamp_ns: int, pose: np.ndarray, *,
            static: bool = False) -> bool:
        """Store ``child``'s pose ``(4, 4)`` in ``parent`` at ``stamp_ns``; False if refused.

        A child has one parent (a later transform naming another parent moves it, as TF does);
        a transform that would close a loop, a non-finite pose, a frame name longer than
        :data:`~.limits.MAX_FRAME_ID_CHARS`, a frame more than :data:`MAX_DEPTH` below its root
        or a frame or transform beyond the limits is refused and counted in :attr:`refused`.
        """
        pose = np.asarray(pose, dtype=np.float64)
        if (pose.shape != (4, 4) or not np.isfinite(pose).all() or not parent or not child
                or parent == child or max(len(parent), len(child)) > MAX_FRAME_ID_CHARS
                or self._too_deep_or_loop(parent, child)):
            self.refused += 1
            return False
        edge = self._edges.get(child)
        if edge is None or edge.parent != parent:
            if edge is None and len(self._edges) >= self._max_frames:
                self.refused += 1
                return False
            if edge is not None:
                self._stored -= len(edge.stamps)
            edge = self._edges[child] = _Edge(parent)
        if static:
            edge.static = pose
            return True
        index = bisect.bisect_left(edge.stamps, stamp_ns)
        if index < len(edge.stamps) and edge.stamps[index] == stamp_ns:
            edge.poses[index] = pose
            return True
        full = len(edge.stamps) >= self._max_history
        if not full and self._stored >= self._max_transforms:
            self.refused += 1
            return False
        edge.stamps.insert(index, stamp_ns)
        edge.poses.insert(index, pose)
        if full:
            del edge.stamps[0], edge.poses[0]
        else:
            self._stored += 1
        return True

    def __len__(self) -> int:
        """Dynamic transforms stored in all edges."""
        return self._stored

    def _ancestors(self, frame: str) -> list[str]:
        """``frame`` and its parents up to the root, nearest first (at most MAX_DEPTH up)."""
        chain = [frame]
        while chain[-1] in self._edges and len(chain) <= min(len(self._edges), MAX_DEPTH):
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def _too_deep_or_loop(self, parent: str, child: str) -> bool:
        """Whether ``child`` under ``parent`` would close a loop or hang MAX_DEPTH down."""
        chain = self._ancestors(parent)
        return child in chain or len(chain) > MAX_DEPTH

    def _edge_pose(self, child: str, stamp_ns: int) -> np.ndarray:
        edge = self._edges[child]
        if edge.static is not None:
            return edge.static
        stamps = edge.stamps
        if not stamps or not stamps[0] <= stamp_ns <= stamps[-1]:
            span = f'{stamps[0] / 1e9:.3f} .. {stamps[-1] / 1e9:.3f}' if stamps else 'none'
            raise PoseUnavailableError(f'{edge.parent} -> {child} is not known at '
                                       f'{stamp_ns / 1e9:.3f} (transforms: {span})')
        index = bisect.bisect_left(stamps, stamp_ns)
        if stamps[index] == stamp_ns:
            return edge.poses[index]
        before, after = stamps[index - 1], stamps[index]
        return _interpolate(edge.poses[index - 1], edge.poses[index],
                            (stamp_ns - before) / (after - before))

    def _to_root(self, frame: str, stamp_ns: int, stop: str) -> np.ndarray:
        """Pose of ``frame`` in its ancestor ``stop``."""
        pose = np.eye(4)
        current = frame
        while current != stop:
            pose = self._edge_pose(current, stamp_ns) @ pose
            current = self._edges[current].parent
        return pose

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """Return the ``(4, 4)`` pose of frame ``source`` in frame ``target`` at ``stamp_ns``.

        :raises PoseUnavailableError: the frames are not connected, or a dynamic edge between
            them has no transforms around the stamp.
        """
        up_source, up_target = self._ancestors(source), self._ancestors(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            raise PoseUnavailableError(f'no transform {target} -> {source}: the frames are not '
                                       'connected')
        source_pose = self._to_root(source, stamp_ns, common)
        if common == target:  # a frame's pose in one of its ancestors, as recorded
            return source_pose
        target_pose = self._to_root(target, stamp_ns, common)
        return np.linalg.solve(target_pose, source_pose)


class RecordedPoses:
    """A :class:`~.calibration.PoseSource` over a :class:`TransformTree` (recorded TF).

    :param tree: the recording's transforms.
    :param fixed_frame: the frame poses are expressed in.
    """

    def __init__(self, tree: TransformTree, fixed_frame: str) -> None:
        self.tree = tree
        self.fixed_frame = fixed_frame

    def frame_pose(self, frame: Frame, *, timeout_s: float = 0.0) -> np.ndarray:
        """Return the pose of the frame's camera at its stamp (offline: nothing to wait for)."""
        return self.tree.lookup(self.fixed_frame, frame.frame_id, frame.stamp_ns)


def _frame_key(frame: Frame) -> tuple[int, int, str]:
    return frame.camera, frame.stamp_ns, frame.frame_id


class ResolvedPoses:
    """A :class:`~.calibration.PoseSource` of poses looked up earlier: each frame's, or why not.

    ``pix2voxpp-bag`` looks a view set's camera poses up on its reading thread when the set is
    complete, as the node's worker does when it takes the set (the transforms that came after
    it in the recording are not yet read), and places the set later on another thread.

    :param source: where poses come from now (recorded TF, or ``camera_poses``).
    :param frames: the frames of one view set.
    :param timeout_s: handed to ``source``.
    """

    def __init__(self, source: PoseSource, frames: Sequence[Frame], *,
                 timeout_s: float = 0.0) -> None:
        self._poses: dict[tuple[int, int, str], Union[np.ndarray, PoseUnavailableError]] = {}
        for frame in frames:
            try:
                found: Union[np.ndarray, PoseUnavailableError] = source.frame_pose(
                    frame, timeout_s=timeout_s)
            except (PoseUnavailableError, PoseError) as exc:
                found = exc if isinstance(exc, PoseUnavailableError) else \
                    PoseUnavailableError(str(exc))
            self._poses[_frame_key(frame)] = found

    @property
    def missing(self) -> int:
        """Frames for which no pose was found."""
        return sum(isinstance(f, PoseUnavailableError) for f in self._poses.values())

    def frame_pose(self, frame: Frame, *, timeout_s: float = 0.0) -> np.ndarray:
        """Return the pose found for the frame.

        :raises PoseUnavailableError: there was none, or the frame was not looked up.
        """
        found = self._poses.get(_frame_key(frame))
        if found is None:
            raise PoseUnavailableError(f'camera {frame.camera}: no pose was looked up for the '
                                       f'frame of {frame.stamp_ns / 1e9:.3f}')
        if isinstance(found, PoseUnavailableError):
            raise found
        return found
