"""The files around a bag: its metadata checked before use, the project's own output recognized.

:func:`check_metadata` reads a bag directory's ``metadata.yaml`` with bounded size and checks
every value ``rosbags`` uses (counts, times, names, compression) before the storage is opened,
so a damaged file gives one message naming the key; file-compressed bags are refused (``rosbags``
would expand them into ``$TMPDIR`` without a bound). :func:`mark_own` / :func:`check_replaceable`
let ``--overwrite`` replace only a bag this project wrote, nothing else. :class:`StagedFolder`
keeps side outputs (PLY/NPY files) under a temporary name until the run succeeds, and
``core.staging`` removes what a killed run left. :func:`add_chunk_crcs` writes the mcap chunk
checksums ``rosbags`` leaves at zero, so corruption is noticed when the bag is read.
No ROS; ``rosbags`` is not imported here either.
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..core.errors import Pix2VoxError
from ..core.limits import short_repr
from ..core.params_file import load_yaml
from ..core.staging import partial_name, remove_stale_partials

# metadata.yaml of a real bag is kilobytes (a few hundred topics, a few thousand split files);
# 16 MiB is thousands of times that and still parsed in well under a second.
MAX_METADATA_BYTES = 16 << 20
# Counts and times are 64-bit fields in rosbag2 (uint64 counts, int64 nanoseconds).
_INT64 = (-(1 << 63), (1 << 63) - 1)
_COUNT = (0, (1 << 63) - 1)
METADATA_VERSIONS = (1, 9)  # rosbag2's metadata versions that rosbags reads
COMPRESSION_MODES = ('', 'none', 'message', 'file')
# Key in metadata.yaml's custom_data marking a bag this project wrote, and the files beside it.
OWN_MARK = 'pix2voxpp_ros.written_by'
OWN_FILES = 'pix2voxpp_ros.extra_files'


class BagFileError(Pix2VoxError):
    """A bag's files are damaged, unsupported or not this tool's to replace; says which."""


def _load_metadata(bag: Path) -> Any:
    path = bag / 'metadata.yaml'
    try:
        size = path.stat().st_size
        if size > MAX_METADATA_BYTES:
            raise BagFileError(f'metadata.yaml: {size} bytes, more than the '
                               f'{MAX_METADATA_BYTES} a metadata file of any real bag needs')
        # safe YAML without aliases (rosbag2 writes none; nested ones can stand for gigabytes)
        return load_yaml(path.read_text(encoding='utf-8', errors='replace'))
    except FileNotFoundError:
        return None  # rosbags says what is missing
    except (OSError, yaml.YAMLError, RecursionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BagFileError(f'metadata.yaml: not readable YAML: {reason[:200]}') from None


def _get(table: Any, key: str, where: str, kind: type, *, optional: bool = False) -> Any:
    if not isinstance(table, dict):
        raise BagFileError(f'{where}: expected a mapping, got {short_repr(table)}')
    if key not in table and optional:
        return None
    if key not in table:
        raise BagFileError(f'{where}: the key {key} is missing')
    value = table[key]
    if optional and value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BagFileError(f'{where}.{key}: expected an integer, got {short_repr(value)}')
    if not isinstance(value, kind):
        raise BagFileError(f'{where}.{key}: expected a {kind.__name__}, got {short_repr(value)}')
    return value


def _int(table: Any, key: str, where: str, bounds: tuple[int, int], *,
         optional: bool = False) -> Optional[int]:
    value = _get(table, key, where, int, optional=optional)
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise BagFileError(f'{where}.{key}: {value} is outside {bounds[0]}..{bounds[1]}')
    return value


def check_metadata(bag: Union[str, Path]) -> Optional[dict]:
    """Check a bag directory's ``metadata.yaml``; return its ``rosbag2_bagfile_information``.

    Returns None for a single ``.mcap``/``.db3`` file or a directory without the file (the
    reader then says what is missing). Messages start with ``metadata.yaml:`` (the caller
    names the bag).

    :raises BagFileError: too large, not YAML, a value of the wrong type or out of its range
        (named by its key, e.g. ``topics_with_message_count[0].message_count``), or a
        file-compressed bag.
    """
    bag = Path(bag)
    if not bag.is_dir():
        return None
    document = _load_metadata(bag)
    if document is None:
        return None
    where = 'metadata.yaml: rosbag2_bagfile_information'
    info = _get(document, 'rosbag2_bagfile_information', 'metadata.yaml', dict)
    _int(info, 'version', where, METADATA_VERSIONS)
    _get(info, 'storage_identifier', where, str)
    _int(info, 'message_count', where, _COUNT)
    _int(_get(info, 'duration', where, dict), 'nanoseconds', f'{where}.duration', _INT64)
    _int(_get(info, 'starting_time', where, dict), 'nanoseconds_since_epoch',
         f'{where}.starting_time', _INT64)
    for i, name in enumerate(_get(info, 'relative_file_paths', where, list)):
        if not isinstance(name, str):
            raise BagFileError(f'{where}.relative_file_paths[{i}]: expected a file name, got '
                               f'{short_repr(name)}')
    for i, entry in enumerate(_get(info, 'files', where, list, optional=True) or []):
        _int(entry, 'message_count', f'{where}.files[{i}]', _COUNT, optional=True)
    for i, entry in enumerate(_get(info, 'topics_with_message_count', where, list)):
        _int(entry, 'message_count', f'{where}.topics_with_message_count[{i}]', _COUNT)
        topic = _get(entry, 'topic_metadata', f'{where}.topics_with_message_count[{i}]', dict)
        for key in ('name', 'type', 'serialization_format'):
            _get(topic, key, f'{where}.topics_with_message_count[{i}].topic_metadata', str)
    _check_compression(info, where)
    return info


def _check_compression(info: dict, where: str) -> None:
    mode = _get(info, 'compression_mode', where, str, optional=True) or ''
    _get(info, 'compression_format', where, str, optional=True)
    if mode.lower() not in COMPRESSION_MODES:
        raise BagFileError(f'{where}.compression_mode: {short_repr(mode)} is none of '
                           f'{", ".join(m for m in COMPRESSION_MODES if m)}')
    if mode.lower() == 'file':  # rosbags expands every file into $TMPDIR, with no size bound
        raise BagFileError('a file-compressed bag (compression_mode: file) is not read: its '
                           'files would be expanded to disk without a bound; convert it to an '
                           'uncompressed bag first (e.g. ros2 bag convert, or rosbags-convert)')


def mark_own(custom_data: dict[str, str], extra_files: list[str], writer: str) -> None:
    """Put the mark :func:`check_replaceable` recognizes into a new bag's ``custom_data``."""
    custom_data[OWN_MARK] = writer
    custom_data[OWN_FILES] = ','.join(sorted(extra_files))


def check_replaceable(path: Path, *, inputs: tuple[Path, ...] = ()) -> None:
    """Check that ``path`` is a bag this project wrote and nothing else, so it may be replaced.

    A bag is recognized by the mark in its metadata (:func:`mark_own`); the directory must hold
    only its metadata, its storage files and the extra files the mark lists.

    :param inputs: paths being read (the input bag): never replaced, nor a folder holding one.
    :raises BagFileError: ``path`` is an input or holds one, a file or link, a directory not
        such a bag, or such a bag with files added since.
    """
    target = path.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source == target or target in source.parents:
            raise BagFileError(f'{path}: is the input bag {source} or holds it; '
                               '--overwrite never replaces the input')
    refuse = f'{path}: not replaced, it is not a bag written by pix2voxpp'
    if not path.is_dir() or path.is_symlink():
        kind = 'a link' if path.is_symlink() else 'a file'
        raise BagFileError(f'{refuse} (it is {kind}); remove it yourself or choose another '
                           'output')
    try:
        info = check_metadata(path)
    except BagFileError as exc:
        raise BagFileError(f'{refuse} ({exc})') from None
    custom = (info or {}).get('custom_data') or {}
    if not isinstance(custom, dict) or not isinstance(custom.get(OWN_MARK), str):
        raise BagFileError(f'{refuse}; remove it yourself or choose another output')
    files = {'metadata.yaml', *(Path(p).name for p in info['relative_file_paths'])}
    files.update(name for name in str(custom.get(OWN_FILES, '')).split(',') if name)
    foreign = sorted(p.name for p in path.iterdir() if p.name not in files or p.is_dir())
    if foreign:
        raise BagFileError(f'{path}: not replaced, it holds files pix2voxpp did not write: '
                           f'{short_repr(foreign)}')


class StagedFolder:
    """Files for ``final`` (a folder, maybe existing) written in a temporary sibling first.

    :meth:`commit` moves them into ``final`` (created if needed; same-named files replaced, all
    else in it kept); :meth:`discard` removes them, so a failed run leaves nothing there.
    """

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        if self.final.exists() and not self.final.is_dir():
            raise BagFileError(f'{self.final}: exists and is not a folder')
        self.path = partial_name(self.final)
        remove_stale_partials(self.final)
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)

    def commit(self) -> None:
        """Move every staged file into the final folder, then remove the stage."""
        self.final.mkdir(parents=True, exist_ok=True)
        for staged in sorted(self.path.iterdir()):
            os.replace(staged, self.final / staged.name)
        self.discard()

    def discard(self) -> None:
        """Remove the stage and what is in it (idempotent)."""
        shutil.rmtree(self.path, ignore_errors=True)


_MCAP_MAGIC = b'\x89MCAP0\r\n'
_CHUNK = 0x06


def add_chunk_crcs(mcap: Path) -> int:
    """Write the CRC-32 of each uncompressed chunk of an mcap file into its chunk record.

    ``rosbags`` writes 0 ("no checksum") and checks non-zero checksums when it reads, so after
    this a flipped byte in a chunk is reported instead of read. Returns the chunks updated.

    :raises BagFileError: not an mcap file as ``rosbags`` writes it.
    """
    updated = 0
    with open(mcap, 'r+b') as handle:
        if handle.read(8) != _MCAP_MAGIC:
            raise BagFileError(f'{mcap}: not an mcap file')
        while True:
            head = handle.read(9)
            if len(head) < 9:
                break
            opcode, length = head[0], struct.unpack('<Q', head[1:])[0]
            start = handle.tell()
            if opcode != _CHUNK:
                if opcode == 0x0F or opcode == 0x02:  # data end / footer: past the chunks
                    break
                handle.seek(start + length)
                continue
            handle.seek(start + 28)  # after start, end, uncompressed size and the crc
            size = struct.unpack('<I', handle.read(4))[0]
            compression = handle.read(size)
            records = struct.unpack('<Q', handle.read(8))[0]
            if compression:  # rosbags' own bags are uncompressed; leave others as they are
                handle.seek(start + length)
                continue
            crc = zlib.crc32(handle.read(records))
            handle.seek(start + 24)
            handle.write(struct.pack('<I', crc))
            handle.seek(start + length)
            updated += 1
    return updated
