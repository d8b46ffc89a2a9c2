"""``pix2voxpp-bag`` on hostile and messy bags: nothing of the user's lost, one line per refusal.

Each case of issue 24 that concerns the bag files, built here with ``rosbags``: damaged
``metadata.yaml`` values, a file-compressed bag (refused, nothing expanded into ``$TMPDIR``), one
glitched stamp, ``--overwrite`` aimed at what the tool did not write, a run that fails late
with side outputs, folders a killed run left, a recording none of whose frames decodes, chunk
checksums of the project's own bags; then random damage to a small valid bag (fixed seed).
The tool runs in this process (``main(argv)``), so a traceback fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import pytest
import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

from bag_helpers import IMAGE, TS, image_message, read_bag, write_bag
from ros_helpers import make_frames, write_checkpoint, write_params
from pix2voxpp_ros.cli import bag as bag_cli
from pix2voxpp_ros.core.views import NS_PER_S
from pix2voxpp_ros.ros.bag_files import add_chunk_crcs
from pix2voxpp_ros.ros.bag_io import BagError, BagReader, BagWriter, zstd

pytestmark = pytest.mark.timeout(300)

CAMERAS = ['/cam0/image_raw', '/cam1/image_raw', '/cam2/image_raw']
T0 = 1_700_000_000 * NS_PER_S
TICK_NS = 300_000_000
GLITCH_NS = 2_145_000_000 * NS_PER_S  # a stamp in 2038


class Setup(NamedTuple):
    weights: Path
    params: Path


@pytest.fixture(scope='module')
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    import torch
    tmp = tmp_path_factory.mktemp('hostile')
    weights = write_checkpoint(tmp / 'f.pth')
    params = write_params(tmp / 'node.yaml', {
        'weights': str(weights), 'camera_topics': CAMERAS, 'sync_slop_s': 0.1,
        'max_frame_age_s': 2.0, 'max_rate_hz': 0.0, 'threshold': -1.0, 'device': 'cpu',
        'num_threads': 1, 'backend': 'torch'})
    threads = torch.get_num_threads()
    yield Setup(weights, params)
    torch.set_num_threads(threads)


def run_tool(setup: Setup, bag: Path, out: Path, *extra: str,
             capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = bag_cli.main([str(bag), '--params', str(setup.params), '--out', str(out), '--quiet',
                         *extra])
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.out + captured.err
    return code, captured.err


def refusal(stderr: str) -> str:
    """Return the one line the tool refused with, the 'frames on' progress line aside."""
    lines = [line for line in stderr.splitlines()
             if line.startswith('pix2voxpp-bag: ') and 'frames on' not in line]
    assert len(lines) == 1, stderr
    return lines[0]


def recording(sets: int, *, glitch_set: int = -1, height: int = 48,
              width: int = 64) -> list[tuple[str, int, Any]]:
    """Build ``sets`` complete sets of three cameras, 0.3 s apart.

    Camera 1 of ``glitch_set`` is stamped in 2038 (and received on time).
    """
    frames = make_frames(3, seed=1, height=height, width=width)
    messages = []
    for k in range(sets):
        stamp = T0 + k * TICK_NS
        for camera in range(3):
            header = GLITCH_NS if (k, camera) == (glitch_set, 1) else stamp
            messages.append((CAMERAS[camera], stamp + 2_000_000 + camera,
                             image_message(frames[camera], header, 'rgb8')))
    return messages


def summary_of(out: Path) -> dict:
    return json.loads((out / 'summary.json').read_text())


def edit_metadata(bag: Path, change: Any) -> None:
    path = bag / 'metadata.yaml'
    document = yaml.safe_load(path.read_text())
    change(document['rosbag2_bagfile_information'])
    path.write_text(yaml.safe_dump(document))


METADATA_CASES = {
    'topic_count_lots': (lambda m: m['topics_with_message_count'][0].update(message_count='lots'),
                         'topics_with_message_count[0].message_count: expected an integer, '
                         "got 'lots'"),
    'bag_count_lots': (lambda m: m.update(message_count='lots'),
                       "message_count: expected an integer, got 'lots'"),
    'file_count_lots': (lambda m: m['files'][0].update(message_count='lots'),
                        'files[0].message_count'),
    'negative_count': (lambda m: m['topics_with_message_count'][1].update(message_count=-3),
                       'topics_with_message_count[1].message_count: -3 is outside'),
    'huge_count': (lambda m: m.update(message_count=2 ** 70), 'message_count: 1180591620717'),
    'version_text': (lambda m: m.update(version='nine'), 'version: expected an integer'),
    'duration_text': (lambda m: m['duration'].update(nanoseconds='long'),
                      'duration.nanoseconds: expected an integer'),
    'topic_name_number': (lambda m: m['topics_with_message_count'][2]['topic_metadata'].update(
        name=7), 'topic_metadata.name: expected a str'),
    'topics_not_a_list': (lambda m: m.update(topics_with_message_count='many'),
                          'topics_with_message_count: expected a list'),
    'no_starting_time': (lambda m: m.pop('starting_time'), 'the key starting_time is missing'),
    'compression_mode_odd': (lambda m: m.update(compression_mode='gzip'),
                             "compression_mode: 'gzip' is none of"),
}


@pytest.mark.parametrize('case', sorted(METADATA_CASES))
def test_a_bad_metadata_value_is_refused_naming_the_file_and_key(
        setup: Setup, case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    change, expected = METADATA_CASES[case]
    bag = write_bag(tmp_path / 'in', recording(2))
    edit_metadata(bag, change)
    code, stderr = run_tool(setup, bag, tmp_path / 'out', capsys=capsys)
    line = refusal(stderr)
    assert code == 1 and f'{bag}: not a readable rosbag2 bag: metadata.yaml: ' in line, line
    assert expected in line, line
    assert not (tmp_path / 'out').exists()


def test_a_metadata_alias_bomb_is_refused_at_once(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = write_bag(tmp_path / 'in', recording(1))
    lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]']
    lines += [f'a{i}: &a{i} [{", ".join([f"*a{i - 1}"] * 9)}]' for i in range(1, 10)]
    text = (bag / 'metadata.yaml').read_text()
    (bag / 'metadata.yaml').write_text('\n'.join(lines) + '\n' + text)  # 9^10 values
    code, stderr = run_tool(setup, bag, tmp_path / 'out', capsys=capsys)
    assert code == 1 and 'metadata.yaml: not readable YAML' in refusal(stderr)
    assert 'aliases' in refusal(stderr) and len(refusal(stderr)) < 400


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return an empty folder that is $TMPDIR for this test (for Python's tempfile)."""
    folder = tmp_path / 'tmpdir'
    folder.mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(folder))
    return folder


def test_a_file_compressed_bag_is_refused_and_nothing_is_expanded(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture, scratch: Path) -> None:
    # zeros compress ~1000:1; the old tool expanded them into $TMPDIR before anything else
    writer = Writer(tmp_path / 'in', version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.FILE, CompressionFormat.ZSTD)
    with writer:
        connection = writer.add_connection(CAMERAS[0], IMAGE, typestore=TS)
        zeros = np.zeros((480, 640, 3), np.uint8)
        for k in range(20):
            writer.write(connection, T0 + k, TS.serialize_cdr(
                image_message(zeros, T0 + k, 'rgb8'), IMAGE))
    assert sum(p.stat().st_size for p in (tmp_path / 'in').iterdir()) < 50_000
    code, stderr = run_tool(setup, tmp_path / 'in', tmp_path / 'out', capsys=capsys)
    line = refusal(stderr)
    assert code == 1 and 'file-compressed bag' in line and str(tmp_path / 'in') in line
    assert list(scratch.iterdir()) == [] and not (tmp_path / 'out').exists()


def message_compressed_bag(path: Path, messages: list[tuple[str, int, bytes]]) -> Path:
    """Write ``messages`` (CDR already zstd-compressed) as a message-compressed bag.

    As ``ros2 bag record --compression-mode message`` stores them.
    """
    write_bag(path, messages)
    edit_metadata(path, lambda m: m.update(compression_mode='MESSAGE', compression_format='zstd'))
    return path


def zeros_compressed(size: int) -> bytes:
    """``size`` zero bytes as one zstd frame, built a MiB at a time."""
    compressor = zstd.ZstdCompressor()
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b''.join(parts) + compressor.flush()


def test_a_message_compressed_bag_is_read_and_a_bomb_message_refused(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = [(topic, stamp, zstd.compress(TS.serialize_cdr(msg, IMAGE)))
            for topic, stamp, msg in recording(2)]
    bag = message_compressed_bag(tmp_path / 'in', good)
    code, stderr = run_tool(setup, bag, tmp_path / 'out', capsys=capsys)
    assert code == 0 and summary_of(tmp_path / 'out')['sets']['reconstructed'] == 2, stderr
    # One message of 600 MB of zeros stored in kilobytes: refused at 512 MiB (memory never
    # holds more than that; rosbags alone would expand all of it).
    bomb = zeros_compressed(600 << 20)
    assert len(bomb) < 100_000
    bag = message_compressed_bag(tmp_path / 'bomb', good[:3] + [(CAMERAS[0], T0 + NS_PER_S,
                                                                 bomb)])
    code, stderr = run_tool(setup, bag, tmp_path / 'out2', capsys=capsys)
    assert code == 1 and 'a compressed message expands beyond 536870912 bytes' in \
        refusal(stderr)
    assert not (tmp_path / 'out2').exists()


def records(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(opcode, content start, content length)`` of an mcap file's records."""
    offset = 8  # after the magic: opcode (1 byte), length (8), content
    while offset + 9 <= len(data) - 8:
        length = int.from_bytes(data[offset + 1:offset + 9], 'little')
        yield data[offset], offset + 9, length
        offset += 9 + length


def test_compressed_chunks_are_read_and_expanded_only_as_far_as_they_declare(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rosbags.rosbag2 import storage_mcap
    good = [(topic, stamp, TS.serialize_cdr(msg, IMAGE)) for topic, stamp, msg in recording(2)]
    writer = Writer(tmp_path / 'in', version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)  # zstd chunks
    with writer:
        connection = {t: writer.add_connection(t, IMAGE, typestore=TS) for t in CAMERAS}
        for topic, stamp, raw in good:
            writer.write(connection[topic], stamp, raw)
    code, stderr = run_tool(setup, tmp_path / 'in', tmp_path / 'out', capsys=capsys)
    assert code == 0 and summary_of(tmp_path / 'out')['sets']['reconstructed'] == 2, stderr
    # A chunk index declaring a terabyte: refused before anything is expanded.
    mcap = tmp_path / 'in' / 'in.mcap'
    data = bytearray(mcap.read_bytes())
    for opcode, start, length in list(records(data)):
        if opcode == 0x08:  # chunk index: its last field is the uncompressed size
            data[start + length - 8:start + length] = (1 << 40).to_bytes(8, 'little')
    mcap.write_bytes(bytes(data))
    code, stderr = run_tool(setup, tmp_path / 'in', tmp_path / 'out2', capsys=capsys)
    assert code == 1 and 'a chunk declares 1099511627776 bytes uncompressed' in refusal(stderr)
    # A chunk declaring 1000 bytes that would expand to 600 MB: expanded to 1000 bytes only.
    assert len(storage_mcap.decompress(zeros_compressed(600 << 20), 'zstd', 1000, 0)) == 1000


def test_one_glitched_stamp_drops_only_that_frame(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The node drops a frame stamped in 2038 as future and keeps its clock; so does the tool:
    # 19 of 20 sets (the glitched set lacks its camera 1 frame), nothing stale.
    bag = write_bag(tmp_path / 'in', recording(20, glitch_set=10))
    code, stderr = run_tool(setup, bag, tmp_path / 'out', capsys=capsys)
    assert code == 0, stderr
    summary = summary_of(tmp_path / 'out')
    assert summary['frames']['dropped'] == {'future': 1}
    assert summary['sets']['reconstructed'] == 19


def test_overwrite_replaces_only_a_bag_the_tool_wrote(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = write_bag(tmp_path / 'in', recording(2))
    before = {p.name: p.read_bytes() for p in bag.iterdir()}
    unrelated = tmp_path / 'photos'
    unrelated.mkdir()
    (unrelated / 'holiday.jpg').write_bytes(b'mine')
    plain = tmp_path / 'notes.txt'
    plain.write_text('mine')
    cases = {bag: 'never replaces the input', tmp_path: 'never replaces the input',
             unrelated: 'not a bag written by pix2voxpp', plain: '(it is a file)'}
    for out, expected in cases.items():
        code, stderr = run_tool(setup, bag, out, '--overwrite', capsys=capsys)
        assert code == 1 and expected in refusal(stderr) and str(out) in refusal(stderr)
    assert {p.name: p.read_bytes() for p in bag.iterdir()} == before
    assert (unrelated / 'holiday.jpg').read_bytes() == b'mine' and plain.read_text() == 'mine'
    # its own output is replaced; the same with a file of the user's added is not
    out = tmp_path / 'out'
    for _ in range(2):
        code, stderr = run_tool(setup, bag, out, '--overwrite', capsys=capsys)
        assert code == 0, stderr
    (out / 'my_notes.txt').write_text('mine')
    code, stderr = run_tool(setup, bag, out, '--overwrite', capsys=capsys)
    assert code == 1 and "files pix2voxpp did not write: ['my_notes.txt']" in refusal(stderr)
    assert (out / 'my_notes.txt').read_text() == 'mine'
    assert len(read_bag(out)['/pix2voxpp/occupancy']) == 2


def test_a_folder_that_appears_during_the_run_is_kept(tmp_path: Path) -> None:
    from std_msgs.msg import String
    path = tmp_path / 'out'
    with pytest.raises(BagError, match='appeared while the bag was written'):
        with BagWriter(path) as bag:
            bag.add_topic('/t', 'std_msgs/msg/String')
            bag.write('/t', String(data='x'), T0)
            path.mkdir()
            (path / 'mine.txt').write_text('mine')  # another program made it meanwhile
    assert os.listdir(tmp_path) == ['out'] and os.listdir(path) == ['mine.txt']


def damage_last_chunk(mcap: Path) -> None:
    """Give the file chunk checksums, then flip a byte inside its last chunk."""
    assert add_chunk_crcs(mcap) >= 3
    data = bytearray(mcap.read_bytes())
    offset, chunks = 8, []  # records after the magic: opcode (1 byte), length (8), content
    while data[offset] != 0x0F:  # up to the data end record
        length = int.from_bytes(data[offset + 1:offset + 9], 'little')
        if data[offset] == 0x06:
            chunks.append((offset, length))
        offset += 9 + length
    start, length = chunks[-1]
    data[start + length // 2] ^= 0xFF
    mcap.write_bytes(bytes(data))


def test_a_run_that_fails_late_leaves_no_side_files(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # 8 sets of 320x240 frames (1 MiB chunks of 1.5 sets); the last chunk is damaged: the tool
    # has written several PLY/NPY files when reading fails. None of them stays; the user's file
    # in --ply-dir does.
    bag = write_bag(tmp_path / 'in', recording(8, height=240, width=320))
    damage_last_chunk(bag / 'in.mcap')
    ply_dir, npy_dir = tmp_path / 'ply', tmp_path / 'results' / 'npy'
    ply_dir.mkdir()
    (ply_dir / 'mine.ply').write_text('mine')
    code, stderr = run_tool(setup, bag, tmp_path / 'out', '--batch', '1', '--ply-dir',
                            str(ply_dir), '--npy-dir', str(npy_dir), capsys=capsys)
    assert code == 1 and 'reading failed' in refusal(stderr), stderr
    assert 'checksum' in refusal(stderr)
    assert sorted(os.listdir(tmp_path)) == ['in', 'ply', 'results']
    assert os.listdir(ply_dir) == ['mine.ply'] and os.listdir(tmp_path / 'results') == []


def dead_pid() -> int:
    child = subprocess.Popen(['true'])
    child.wait()
    return child.pid


def test_folders_a_killed_run_left_are_removed(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bag = write_bag(tmp_path / 'in', recording(2))
    dead = dead_pid()
    left = [tmp_path / f'.out.partial-{dead}', tmp_path / f'.ply.partial-{dead}']
    for folder in left:
        (folder / 'out').mkdir(parents=True)
        (folder / 'out' / 'out.mcap').write_bytes(b'half')
    running = tmp_path / f'.out.partial-{os.getppid()}'  # another run, still going: kept
    running.mkdir()
    code, stderr = run_tool(setup, bag, tmp_path / 'out', '--ply-dir', str(tmp_path / 'ply'),
                            capsys=capsys)
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == sorted(['in', 'out', 'ply', running.name])
    assert len(os.listdir(tmp_path / 'ply')) == 2


def test_a_killed_run_leaves_nothing_the_next_run_does_not_remove(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import signal
    import sys
    import time
    bag = write_bag(tmp_path / 'in', recording(150))
    args = [str(bag), '--params', str(setup.params), '--out', str(tmp_path / 'out'), '--quiet',
            '--batch', '1', '--ply-dir', str(tmp_path / 'ply')]
    child = subprocess.Popen([sys.executable, '-c', 'import sys; from pix2voxpp_ros.cli.bag '
                              'import main; sys.exit(main(sys.argv[1:]))', *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stage = tmp_path / f'.ply.partial-{child.pid}'
    deadline = time.monotonic() + 120.0
    while not (stage.is_dir() and os.listdir(stage)) and time.monotonic() < deadline:
        time.sleep(0.1)  # killed once it has written its first PLY file
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert sorted(os.listdir(tmp_path)) == sorted(['in', f'.out.partial-{child.pid}', stage.name])
    small = write_bag(tmp_path / 'small', recording(1))
    code, stderr = run_tool(setup, small, tmp_path / 'out', '--ply-dir', str(tmp_path / 'ply'),
                            capsys=capsys)
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ['in', 'out', 'ply', 'small']


def test_a_recording_without_one_decodable_frame_is_an_error(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken = [(topic, stamp, b'\x00\x01\x00\x00\x07') for topic, stamp, _ in recording(2)]
    bag = write_bag(tmp_path / 'in', broken)
    code, stderr = run_tool(setup, bag, tmp_path / 'out', capsys=capsys)
    assert code == 1
    assert 'none of its 6 camera frames could be used (6 undecodable)' in stderr.splitlines()[-1]
    assert not (tmp_path / 'out').exists()


def test_the_project_bags_carry_chunk_checksums(tmp_path: Path) -> None:
    from std_msgs.msg import String
    with BagWriter(tmp_path / 'out') as bag:
        bag.add_topic('/t', 'std_msgs/msg/String')
        for k in range(3):
            bag.write('/t', String(data=f'value {k} ' + 'x' * 100), T0 + k)
    mcap = tmp_path / 'out' / 'out.mcap'
    data = bytearray(mcap.read_bytes())
    data[data.find(b'value 1') + 6] ^= 0x01  # '1' -> '0': still a valid message
    mcap.write_bytes(bytes(data))
    with BagReader(tmp_path / 'out') as reader:
        with pytest.raises(BagError, match='checksum'):
            list(reader.messages(['/t']))


# --- random damage to a small valid bag (fixed seed) -------------------------------------------

def _mutate_metadata(bag: Path, rng: np.random.Generator) -> str:
    path = bag / 'metadata.yaml'
    document = yaml.safe_load(path.read_text())
    table, key = document, 'rosbag2_bagfile_information'
    while isinstance(table[key], (dict, list)) and table[key] and rng.random() < 0.8:
        table = table[key]
        key = list(table)[rng.integers(len(table))] if isinstance(table, dict) \
            else int(rng.integers(len(table)))
    values = ['lots', -1, 2 ** 70, None, [], {}, 1.5, '', True, 'zstd', 'file', 10 ** 6,
              'a' * 5000]
    if isinstance(table, dict) and rng.random() < 0.2:
        del table[key]
        change = f'{key} removed'
    else:
        table[key] = values[rng.integers(len(values))]
        change = f'{key} = {str(table[key])[:20]!r}'
    path.write_text(yaml.safe_dump(document))
    return change


def _mutate_storage(bag: Path, rng: np.random.Generator) -> str:
    data_file = next(p for p in bag.iterdir() if p.suffix in ('.mcap', '.db3'))
    data = bytearray(data_file.read_bytes())
    kind = rng.integers(3)
    if kind == 0:
        size = int(rng.integers(len(data)))
        data_file.write_bytes(bytes(data[:size]))
        return f'{data_file.name} truncated to {size}'
    if kind == 1:
        offsets = rng.integers(len(data), size=int(rng.integers(1, 9)))
        for offset in offsets:
            data[offset] ^= int(rng.integers(1, 256))
        data_file.write_bytes(bytes(data))
        return f'{data_file.name} bytes flipped at {sorted(offsets.tolist())}'
    start = int(rng.integers(len(data)))
    length = int(rng.integers(1, 200))
    data[start:start + length] = rng.integers(0, 256, len(data[start:start + length]),
                                              dtype=np.uint8).tobytes()
    data_file.write_bytes(bytes(data))
    return f'{data_file.name} {length} random bytes at {start}'


@pytest.mark.first_tier  # 200 damaged bags, about a minute
@pytest.mark.timeout(600)
def test_random_damage_gives_a_clear_refusal_or_a_result(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture, scratch: Path) -> None:
    import shutil
    import time
    valid = {storage: write_bag(tmp_path / f'valid_{storage}', recording(1), storage=storage)
             for storage in ('mcap', 'sqlite3')}
    rng = np.random.default_rng(24)
    work = tmp_path / 'work'
    deadline = time.monotonic() + 240.0
    done, outcomes = 0, {0: 0, 1: 0}
    for done in range(200):
        if time.monotonic() > deadline:
            break
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        storage = ('mcap', 'sqlite3')[done % 2]
        bag = shutil.copytree(valid[storage], work / 'in')
        change = (_mutate_metadata if rng.random() < 0.4 else _mutate_storage)(bag, rng)
        code = bag_cli.main([str(bag), '--params', str(setup.params), '--out',
                             str(work / 'out'), '--quiet'])
        err = capsys.readouterr().err
        assert 'Traceback' not in err and code in (0, 1), (change, err)
        outcomes[code] += 1
        expected = ['in', 'out'] if code == 0 else ['in']
        assert sorted(os.listdir(work)) == expected, (change, err)
        assert list(scratch.iterdir()) == [], change
        if code:
            assert len(refusal(err)) < 600, (change, err)
    assert done >= 50 and outcomes[1] > 0 and outcomes[0] > 0, outcomes
