"""rosbag2 files without ROS: read recorded messages, write new bags completely or not at all.

Built on ``rosbags`` (pure Python; mcap and sqlite3 storage, CDR): :class:`BagReader` opens a bag
(directory or single ``.mcap`` / ``.db3`` file), checks topics and their types with messages that
list what the bag has, and yields decoded messages; every failure of the storage, from a missing
file to a truncated one, becomes one :class:`BagError` naming the file (a directory's metadata is
checked first, :func:`~.bag_files.check_metadata`). :class:`BagWriter` writes rclpy messages
(serialized with ``rclpy.serialization``, the bytes a live publisher sends) into a bag under a
temporary name and renames it into place only when it is complete, with mcap chunk checksums
and a mark in its metadata by which ``overwrite`` later recognizes it as the project's own.
A message type that rosbags' definitions lack (``vision_msgs``, ``moveit_msgs``: written only
where they import) is described from its package's ``.msg`` files (:func:`register_types`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Iterable, Iterator, Optional, Union

from rosbags.interfaces import Nodetype
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore

from ..core.errors import Pix2VoxError
from ..core.limits import shorten
from ..core.staging import partial_name, remove_stale_partials
from .bag_files import BagFileError, add_chunk_crcs, check_metadata, check_replaceable, mark_own

if sys.version_info >= (3, 14):  # the zstd module rosbags uses
    from compression import zstd
else:
    from backports import zstd

IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
CLOUD_TYPE = 'sensor_msgs/msg/PointCloud2'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
MARKERS_TYPE = 'visualization_msgs/msg/MarkerArray'
MARKER_TYPE = 'visualization_msgs/msg/Marker'
STRING_TYPE = 'std_msgs/msg/String'
POSE_TYPE = 'geometry_msgs/msg/PoseStamped'
POSE_ARRAY_TYPE = 'geometry_msgs/msg/PoseArray'
DETECTIONS_TYPE = 'vision_msgs/msg/Detection3DArray'
COLLISION_OBJECT_TYPE = 'moveit_msgs/msg/CollisionObject'
TF_TYPE = 'tf2_msgs/msg/TFMessage'  # /tf and /tf_static
# A message of a message-compressed bag, or a compressed mcap chunk, expanded: 512 MiB is more
# than three of the largest images the node takes (50 MP RGB, 150 MB) and hundreds of times the
# chunk size recorders use (768 KiB to a few MiB); a zstd frame of zeros could claim terabytes.
MAX_MESSAGE_BYTES = 512 << 20
METADATA_VERSION = 8  # rosbag2 metadata.yaml version of the bags written
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


class BagError(Pix2VoxError):
    """A bag cannot be read or written, or lacks what was asked for; the message says which."""


def _bound_chunk_expansion() -> None:
    """Make rosbags expand a compressed mcap chunk to at most its declared, bounded size.

    rosbags expands a zstd or lz4 chunk completely and only then compares the result with the
    size the chunk declares; a chunk of a few kilobytes could expand to gigabytes first. Its
    table of chunk decompressors is replaced once by ones that stop at the declared size.
    """
    from lz4.frame import LZ4FrameDecompressor
    from rosbags.rosbag2 import storage_mcap

    def checked(size: int) -> int:
        if not 0 <= size <= MAX_MESSAGE_BYTES:
            raise storage_mcap.ReaderError(
                f'a chunk declares {size} bytes uncompressed, more than the '
                f'{MAX_MESSAGE_BYTES} this tool expands (no real recorder writes such chunks)')
        return size

    storage_mcap.DECOMPRESSORS['zstd'] = lambda data, size: zstd.ZstdDecompressor().decompress(
        data, max_length=checked(size))
    storage_mcap.DECOMPRESSORS['lz4'] = lambda data, size: LZ4FrameDecompressor().decompress(
        data, max_length=checked(size))


_bound_chunk_expansion()


@lru_cache(maxsize=1)
def typestore() -> Any:
    """Return the message definitions that decode and describe topics (ROS 2 Kilted)."""
    return get_typestore(Stores.ROS2_KILTED)


class BagReader:
    """An open rosbag2 bag: its topics and decoded messages.

    :param path: a bag directory (``metadata.yaml`` and its files) or one ``.mcap``/``.db3`` file.
    :raises BagError: missing, not a bag, or unreadable (its metadata or storage is broken).
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f'{self.path}: no such bag (a rosbag2 directory, .mcap or .db3 file)')
        try:
            check_metadata(self.path)
        except BagFileError as exc:
            raise BagError(f'{self.path}: not a readable rosbag2 bag: {exc}') from None
        try:
            self._reader = Reader(self.path)
            self._reader.open()
            topics = self._reader.topics
            self.topics: dict[str, str] = {t: info.msgtype or '?' for t, info in topics.items()}
            self.counts: dict[str, int] = {t: int(info.msgcount) for t, info in topics.items()}
            self._expand = self._reader.compression_mode == 'message'
            if self._expand:  # rosbags would expand each message unbounded: yield it as stored
                storage = self._reader.storage
                storage.metadata = storage.metadata._replace(compression_mode=None)
        except Exception as exc:  # noqa: BLE001 - rosbags raises many kinds; one message
            raise BagError(f'{self.path}: not a readable rosbag2 bag: {_reason(exc)}') from exc

    def close(self) -> None:
        """Close the storage (idempotent)."""
        if getattr(self, '_reader', None) is not None and self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, exc_type: Optional[type], exc_value: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def topics_of_type(self, *msgtypes: str) -> list[str]:
        """Topics whose type is one of ``msgtypes``, sorted."""
        return sorted(t for t, msgtype in self.topics.items() if msgtype in msgtypes)

    def require(self, topic: str, msgtype: str, *, role: str) -> None:
        """Check that ``topic`` is in the bag with type ``msgtype``.

        :param role: what the topic is for, e.g. ``camera topic``, for the message.
        :raises BagError: the topic is absent (listing the bag's topics of that type) or has
            another type.
        """
        if topic not in self.topics:
            same = self.topics_of_type(msgtype)
            listed = ', '.join(same) if same else f'none (it has {len(self.topics)} other topics)'
            raise BagError(f'{self.path}: {role} {topic} is not in the bag; its '
                           f'{msgtype} topics: {listed}')
        if self.topics[topic] != msgtype:
            raise BagError(f'{self.path}: {role} {topic} has type {self.topics[topic]}, '
                           f'expected {msgtype}')

    def messages(self, topics: Iterable[str]) -> Iterator[tuple[str, int, Any]]:
        """Yield ``(topic, recorded time ns, raw CDR bytes)`` of ``topics`` in recorded order.

        :raises BagError: the storage fails while reading (e.g. a truncated file).
        """
        wanted = set(topics)
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:
            return
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, stamp, raw = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - storage errors of every kind; one message
                raise BagError(f'{self.path}: reading failed, the bag may be truncated or '
                               f'damaged: {_reason(exc)}') from exc
            yield connection.topic, stamp, self._expanded(raw) if self._expand else raw

    def _expanded(self, raw: bytes) -> bytes:
        """Decompress one zstd-compressed message, at most :data:`MAX_MESSAGE_BYTES`."""
        expander = zstd.ZstdDecompressor()
        try:
            data = expander.decompress(raw, max_length=MAX_MESSAGE_BYTES)
        except zstd.ZstdError as exc:
            raise BagError(f'{self.path}: a compressed message is damaged: {exc}') from None
        if not expander.eof:
            raise BagError(f'{self.path}: a compressed message expands beyond '
                           f'{MAX_MESSAGE_BYTES} bytes (a limit of this tool: no frame of a '
                           'real camera is that large), or is truncated')
        return data

    def decode(self, raw: Any, msgtype: str) -> Any:
        """Decode CDR bytes to a ``rosbags`` message (fields as in the ROS message).

        :raises BagError: the bytes are not a valid message of that type.
        """
        try:
            return typestore().deserialize_cdr(raw, msgtype)
        except Exception as exc:  # noqa: BLE001 - a damaged message of any kind
            raise BagError(f'undecodable {msgtype}: {_reason(exc)}') from exc


def _nested_types(node: tuple) -> Iterator[str]:
    """Yield the message types a field of a parsed definition names (through arrays)."""
    kind, detail = node
    if kind == Nodetype.NAME:
        yield detail
    elif kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        yield from _nested_types(detail[0])


def _msg_file(msgtype: str) -> Path:
    """Find ``pkg/msg/Name``'s ``.msg`` file in the package's ``share`` folder.

    Looked for beside the Python package that imports (``<prefix>/share/<pkg>``, a few
    levels above its ``site-packages`` or ``dist-packages``), then in the ament index.

    :raises BagError: no such file.
    """
    package, _, name = msgtype.partition('/')
    relative = Path('share', package, *name.split('/')).with_suffix('.msg')
    places = []
    spec = importlib.util.find_spec(package) if package.isidentifier() else None
    if spec is not None and spec.origin:
        places += list(Path(spec.origin).parents)[:6]
    try:
        from ament_index_python.packages import get_package_prefix
        places.append(Path(get_package_prefix(package)))
    except Exception:  # noqa: BLE001 - no ament index here, or not in it
        pass
    for place in places:
        if (place / relative).is_file():
            return place / relative
    raise BagError(f'cannot write {msgtype}: its definition ({relative}) is not installed '
                   'beside its Python package nor in the ament index')


def register_types(store: Any, msgtype: str) -> None:
    """Add ``msgtype`` and every type it uses that ``store`` lacks, from their ``.msg`` files.

    What a bag needs to describe a topic (its definition and RIHS01 hash) for message
    packages rosbags does not ship; found as :func:`_msg_file` says.

    :raises BagError: a definition is not installed or cannot be parsed.
    """
    found: dict[str, Any] = {}
    pending = [msgtype]
    while pending:
        name = pending.pop()
        if name in found or name in store.types:
            continue
        path = _msg_file(name)
        try:
            found.update(get_types_from_msg(path.read_text(encoding='utf-8'), name))
        except (OSError, UnicodeError, TypesysError) as exc:
            raise BagError(f'cannot write {msgtype}: {path}: {_reason(exc)}') from exc
        pending += [nested for _, field in found[name][1] for nested in _nested_types(field)]
    try:
        store.register(found)
    except TypesysError as exc:
        raise BagError(f'cannot write {msgtype}: {_reason(exc)}') from exc


def tf_message_cdr(transforms: Iterable[Any]) -> bytes:
    """Serialize transforms as one ``tf2_msgs/msg/TFMessage`` (CDR), for ``/tf`` in a bag.

    :param transforms: ``geometry_msgs/TransformStamped`` messages (rclpy's or rosbags'):
        only their fields are read. Built with rosbags' definitions, so ``tf2_msgs`` (which
        the PyPI wheels lack) need not import.
    """
    types = typestore().types

    def convert(t: Any) -> Any:
        stamp, v, q = t.header.stamp, t.transform.translation, t.transform.rotation
        return types['geometry_msgs/msg/TransformStamped'](
            header=types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=int(stamp.sec),
                                                           nanosec=int(stamp.nanosec)),
                frame_id=str(t.header.frame_id)),
            child_frame_id=str(t.child_frame_id),
            transform=types['geometry_msgs/msg/Transform'](
                translation=types['geometry_msgs/msg/Vector3'](x=float(v.x), y=float(v.y),
                                                               z=float(v.z)),
                rotation=types['geometry_msgs/msg/Quaternion'](x=float(q.x), y=float(q.y),
                                                               z=float(q.z), w=float(q.w))))
    message = types[TF_TYPE](transforms=[convert(t) for t in transforms])
    return bytes(typestore().serialize_cdr(message, TF_TYPE))


def _reason(exc: BaseException) -> str:
    text = shorten(str(exc).strip())  # a damaged bag's names can be kilobytes long
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


class BagWriter:
    """Write a new bag at ``path``: under a temporary name first, renamed when complete.

    Use as a context manager; when the block raises, nothing is left behind. Messages are rclpy
    messages (serialized with :func:`rclpy.serialization.serialize_message`) or CDR bytes.

    :param path: the bag directory to create.
    :param storage: ``mcap`` (default, what ``ros2 bag record`` writes since Iron) or ``sqlite3``.
    :param overwrite: replace an existing bag at ``path`` (only once the new one is complete),
        only if it is a bag this project wrote (:func:`~.bag_files.check_replaceable`).
    :param inputs: the paths being read: never replaced.
    :raises BagError: ``path`` exists (without ``overwrite``, or is not the project's own bag
        or is an input), or an unknown storage.
    """

    def __init__(self, path: Union[str, Path], *, storage: str = 'mcap',
                 overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f'storage must be one of {", ".join(STORAGES)}, got {storage!r}')
        if (self.path.exists() or self.path.is_symlink()) and not overwrite:
            raise BagError(f'{self.path}: already exists; choose another output or pass '
                           '--overwrite')
        self.storage = storage
        self.overwrite = overwrite
        self.inputs = tuple(inputs)
        self._check_replaceable()
        # The bag's files are named after its directory: keep the final name inside a
        # temporary parent, so the renamed bag looks exactly as if written in place.
        self._parent = partial_name(self.path)
        self._writer: Optional[Writer] = None
        self._connections: dict[str, Any] = {}
        self.extra_files: dict[str, bytes] = {}  # written into the bag directory at the end
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(self.path)  # what killed runs left
            if self._parent.exists():
                shutil.rmtree(self._parent)
            self._parent.mkdir()
            # Version 8, the oldest rosbags writes: what Jazzy records and Kilted reads too.
            self._writer = Writer(self._parent / self.path.name, version=METADATA_VERSION,
                                  storage_plugin=STORAGES[self.storage])
            self._writer.open()
        except Exception as exc:  # noqa: BLE001 - permissions, disk: one message
            self._discard()
            raise BagError(f'{self.path}: cannot create the bag: {_reason(exc)}') from exc
        return self

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic and its type (``sensor_msgs/msg/PointCloud2`` style).

        :raises BagError: a type rosbags lacks whose definition is not installed here.
        """
        assert self._writer is not None, 'use BagWriter as a context manager'
        if msgtype not in typestore().types:
            register_types(typestore(), msgtype)
        self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                               typestore=typestore())
        self.counts[topic] = 0

    def write(self, topic: str, message: Any, stamp_ns: int) -> None:
        """Write one message (an rclpy message, or its CDR bytes) at recorded time ``stamp_ns``."""
        assert self._writer is not None, 'use BagWriter as a context manager'
        if not isinstance(message, (bytes, bytearray, memoryview)):
            from rclpy.serialization import serialize_message
            message = serialize_message(message)
        self._writer.write(self._connections[topic], int(stamp_ns), message)
        self.counts[topic] += 1

    def __exit__(self, exc_type: Optional[type], exc_value: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        writer, self._writer = self._writer, None
        if exc_type is not None:
            if writer is not None:
                writer.abort()
            self._discard()
            return
        try:
            assert writer is not None
            mark_own(writer.custom_data, list(self.extra_files), 'pix2voxpp_ros')
            writer.close()
            written = self._parent / self.path.name
            for name, data in self.extra_files.items():
                (written / name).write_bytes(data)
            for mcap in written.glob('*.mcap'):
                add_chunk_crcs(mcap)
            if self.path.exists() or self.path.is_symlink():
                if not self.overwrite:
                    raise BagError(f'{self.path}: appeared while the bag was written; it is '
                                   'kept and the new bag discarded')
                self._check_replaceable()  # again: it may have changed during the run
                shutil.rmtree(self.path)
            os.replace(written, self.path)
        except BagError:
            self._discard()
            raise
        except Exception as exc:  # noqa: BLE001 - disk full, permissions: one message
            self._discard()
            raise BagError(f'{self.path}: writing the bag failed: {_reason(exc)}') from exc
        self._discard()

    def _check_replaceable(self) -> None:
        if self.overwrite and (self.path.exists() or self.path.is_symlink()):
            try:
                check_replaceable(self.path, inputs=self.inputs)
            except BagFileError as exc:
                raise BagError(str(exc)) from None

    def _discard(self) -> None:
        shutil.rmtree(self._parent, ignore_errors=True)
