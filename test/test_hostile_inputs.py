"""Hostile images and parameters (issue 24 #1, #2, #11-#14), without a running node.

A 629-byte JPEG declaring 30000x30000 pixels, raw Image headers declaring as much, ROIs that make
a padded crop of gigabytes, YAML alias bombs, parameters of 1e300 seconds or 5000 threads: each
must end in one clear refusal or a counted drop, at once and without memory growth. Fuzz tests
(fixed seeds, bounded counts) throw random mutations at the same surfaces: a refusal of the
documented kind or an accepted value, never another exception. ``test_node_hostile`` sends the
same images to the real node over DDS.
"""

from __future__ import annotations

import json
import math
import resource
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from bag_helpers import TS, write_bag
from ros_helpers import make_frames, write_checkpoint, write_params
from pix2voxpp_ros.cli import bag as bag_cli
from pix2voxpp_ros.cli import reconstruct as reconstruct_cli
from pix2voxpp_ros.core.drops import DropReason, bad_image_drop, encoding_drop
from pix2voxpp_ros.core.image_header import declared_size
from pix2voxpp_ros.core.limits import DEFAULT_MAX_IMAGE_PIXELS, short_repr
from pix2voxpp_ros.core.node_config import PARAMETERS, config_from_values, find_problems
from pix2voxpp_ros.core.offline import OfflineAssembler
from pix2voxpp_ros.core.params_file import ParamsFileError, read_params_file
from pix2voxpp_ros.core.preprocess import (ImageInputError, ImageTooLargeError, MaskError,
                                           decode_image, preprocess_frame)
from pix2voxpp_ros.core.views import NS_PER_S, ViewBuffer
from pix2voxpp_ros.ros.conversions import (ImageConversionError, array_to_compressed,
                                           array_to_image, compressed_to_array, image_to_array,
                                           mask_to_array)
from pix2voxpp_ros.ros.diagnostics import MAX_LOG_CHARS, MAX_THROTTLE_KEYS, ThrottledLog

pytestmark = pytest.mark.timeout(300)

FUZZ_CASES = 200


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bomb_jpeg(width: int = 30000, height: int = 30000) -> bytes:
    """Return a small JPEG whose frame header is patched to declare ``width`` × ``height``."""
    ok, data = cv2.imencode('.jpg', np.full((8, 8, 3), 128, np.uint8))
    data = bytearray(data.tobytes())
    sof = data.index(b'\xff\xc0')
    data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
    return bytes(data)


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """Return a small PNG whose IHDR is patched to declare ``width`` × ``height``."""
    ok, data = cv2.imencode('.png', np.zeros((8, 8), np.uint8))
    data = bytearray(data.tobytes())
    data[16:24] = width.to_bytes(4, 'big') + height.to_bytes(4, 'big')
    return bytes(data)


# ---------------------------------------------------------------- #1 decompression bombs

@pytest.mark.parametrize('make', [bomb_jpeg, bomb_png])
def test_a_small_file_declaring_30000x30000_is_refused_before_decoding(make: Any) -> None:
    data = make()
    assert len(data) < 1000
    before, start = _peak_rss_mb(), time.perf_counter()
    with pytest.raises(ImageTooLargeError, match='30000×30000.*max_image_pixels 50000000'):
        decode_image(data)
    assert time.perf_counter() - start < 5  # a bound, not a speed: the old code decoded 15 s
    assert _peak_rss_mb() - before < 100  # ... and grew by 5 GB


def test_the_compressed_bomb_is_a_too_large_drop() -> None:
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage(format='jpeg')
    msg.data = bomb_jpeg()
    with pytest.raises(ImageConversionError) as caught:
        compressed_to_array(msg)
    drop = bad_image_drop(0, caught.value)
    assert drop.reason is DropReason.TOO_LARGE
    assert 'oversized' in drop.message('/cam0/compressed') and '30000' in drop.detail


def test_raw_images_and_masks_declaring_more_than_max_image_pixels_are_refused() -> None:
    from sensor_msgs.msg import Image
    huge = Image(height=30000, width=30000, encoding='mono8', step=30000)
    huge.data = b'\x00' * 100  # what it declares is checked before the data length
    with pytest.raises(ImageConversionError) as caught:
        image_to_array(huge)
    assert bad_image_drop(0, caught.value).reason is DropReason.TOO_LARGE
    with pytest.raises(MaskError, match='max_image_pixels'):
        mask_to_array(huge)
    frame = array_to_image(np.zeros((100, 120), np.uint8), encoding='mono8')
    with pytest.raises(ImageConversionError, match='12000 pixels, more than max_image_pixels '
                       '11999'):
        image_to_array(frame, max_pixels=11999)
    assert image_to_array(frame, max_pixels=12000).shape == (100, 120)


@pytest.mark.parametrize('size', [(1, 1), (640, 480), (4000, 3000), (65500, 2)])
def test_declared_size_reads_what_encoders_write(size: tuple[int, int]) -> None:
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    for ext, params in (('.jpg', []), ('.jpg', [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                        ('.png', [])):
        ok, data = cv2.imencode(ext, image, params)
        assert declared_size(data.tobytes()) == (width, height)
    assert declared_size(b'GIF89a') is None and declared_size(b'\xff\xd8\xff\xda') is None


def test_a_roi_crop_of_gigabytes_beyond_the_image_is_refused() -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    start = time.perf_counter()
    with pytest.raises(ImageInputError, match='max_image_pixels'):
        preprocess_frame(image, encoding='rgb8', roi=(0, 0, 32768, 32768), roi_margin=0.75)
    assert time.perf_counter() - start < 5  # a bound against unbounded work, not a speed
    assert preprocess_frame(image, encoding='rgb8', roi=(0, 0, 200, 200)).shape == (3, 224, 224)


def test_reconstruct_refuses_a_bomb_file_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = write_checkpoint(tmp_path / 'f.pth')
    bomb = tmp_path / 'bomb.jpg'
    bomb.write_bytes(bomb_jpeg())
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), make_frames(1)[0])
    out = tmp_path / 'grid.npy'
    before = _peak_rss_mb()
    code = reconstruct_cli.main([str(good), str(bomb), '--weights', str(weights), '--out',
                                 str(out), '--device', 'cpu', '--backend', 'torch'])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert err.count('\n') == 1 and 'bomb.jpg declares 30000×30000' in err, err
    assert _peak_rss_mb() - before < 500
    code = reconstruct_cli.main([str(good), '--weights', str(weights), '--out', str(out),
                                 '--device', 'cpu', '--backend', 'torch',
                                 '--max-image-pixels', '100'])
    assert code == 1 and 'max_image_pixels 100' in capsys.readouterr().err


def test_the_bag_tool_counts_a_bomb_frame_and_reconstructs_the_others(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    weights = write_checkpoint(tmp_path / 'f.pth')
    params = write_params(tmp_path / 'node.yaml', {
        'weights': str(weights), 'camera_topics': ['/cam'], 'image_transport': 'compressed',
        'views_per_reconstruction': 1, 'min_view_interval_s': 0.0, 'max_rate_hz': 0.0,
        'device': 'cpu', 'backend': 'torch', 'num_threads': 1})
    compressed = TS.types['sensor_msgs/msg/CompressedImage']
    t0 = 1_700_000_000 * NS_PER_S
    messages = []
    for i, data in enumerate([None, bomb_jpeg(), None]):
        stamp = t0 + i * NS_PER_S // 10
        if data is None:
            data = bytes(array_to_compressed(make_frames(1, seed=i)[0], encoding='rgb8').data)
        header = TS.types['std_msgs/msg/Header'](
            stamp=TS.types['builtin_interfaces/msg/Time'](sec=stamp // NS_PER_S,
                                                          nanosec=stamp % NS_PER_S),
            frame_id='camera')
        messages.append(('/cam/compressed', stamp, compressed(
            header=header, format='jpeg', data=np.frombuffer(data, np.uint8))))
    bag = write_bag(tmp_path / 'in', messages,
                    types={'/cam/compressed': 'sensor_msgs/msg/CompressedImage'})
    before = _peak_rss_mb()
    code = bag_cli.main([str(bag), '--params', str(params), '--out', str(tmp_path / 'out'),
                         '--quiet'])
    err = capsys.readouterr().err
    assert code == 0, err
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['frames']['dropped'] == {'too_large': 1}
    assert summary['sets']['reconstructed'] == 2
    assert 'oversized frame' in err and 'Traceback' not in err
    assert _peak_rss_mb() - before < 500  # the old code grew to 6.6 GB


# ---------------------------------------------------------------- fuzz: images

def _mutate(rng: np.random.Generator, data: bytes) -> bytes:
    buf = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:  # flip bytes anywhere
        for at in rng.integers(0, len(buf), rng.integers(1, 8)):
            buf[at] = int(rng.integers(256))
    elif kind == 1:  # a size field anywhere in the first 200 bytes
        at = int(rng.integers(0, min(200, len(buf) - 2)))
        buf[at:at + 2] = b'\xff\xff'
    elif kind == 2:  # truncate
        buf = buf[:int(rng.integers(0, len(buf)))]
    else:  # insert junk
        at = int(rng.integers(0, len(buf)))
        buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return bytes(buf)


@pytest.mark.parametrize('ext', ['.jpg', '.png'])
def test_fuzz_mutated_jpeg_and_png_decode_or_are_refused(ext: str) -> None:
    rng = np.random.default_rng(24)
    ok, data = cv2.imencode(ext, make_frames(1, height=40, width=56)[0])
    start, before = time.perf_counter(), _peak_rss_mb()
    outcomes = {'decoded': 0, 'refused': 0}
    for _ in range(FUZZ_CASES):
        mutated = _mutate(rng, data.tobytes())
        try:
            image, encoding = decode_image(mutated, max_pixels=1_000_000)
        except ImageInputError as exc:
            assert len(str(exc)) < 400
            outcomes['refused'] += 1
            continue
        assert image.dtype == np.uint8 and image.shape[0] * image.shape[1] <= 1_000_000
        outcomes['decoded'] += 1
    assert outcomes['refused'] > 0
    assert time.perf_counter() - start < 30 and _peak_rss_mb() - before < 200


def test_fuzz_raw_image_headers_convert_or_are_refused() -> None:
    from sensor_msgs.msg import Image
    rng = np.random.default_rng(24)
    encodings = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', '16UC1', '', 'x' * 1000]
    big = [0, 1, 2, 3, 47, 48, 64, 65, 192, 30000, 2**31 - 1, 2**32 - 1]
    for _ in range(FUZZ_CASES):
        msg = Image(height=int(rng.choice(big)), width=int(rng.choice(big)),
                    encoding=str(rng.choice(encodings)), step=int(rng.choice(big)))
        msg.data = b'\x01' * int(rng.choice([0, 1, 100, 48 * 192, 48 * 64]))
        try:
            image = image_to_array(msg, backend='own')
        except ImageConversionError as exc:
            assert len(str(exc)) < 400
            continue
        assert image.size == msg.height * msg.width * (image.shape[2] if image.ndim == 3 else 1)


def test_fuzz_masks_are_used_or_refused_as_masks() -> None:
    from sensor_msgs.msg import Image
    rng = np.random.default_rng(24)
    image = make_frames(1, height=48, width=64)[0]
    sizes = [0, 1, 47, 48, 64, 65, 30000, 2**32 - 1]
    for _ in range(FUZZ_CASES):
        height, width = int(rng.choice(sizes)), int(rng.choice(sizes))
        if rng.random() < 0.5:
            height, width = 48, 64  # the image's size: the mask may be good
        msg = Image(height=height, width=width, step=width if rng.random() < 0.8 else 3,
                    encoding='mono8' if rng.random() < 0.9 else 'rgb8')
        length = height * width if height * width < 10_000 and rng.random() < 0.8 else 17
        msg.data = rng.integers(0, 2, length, dtype=np.uint8).tobytes() if length else b''
        try:
            mask = mask_to_array(msg, backend='own')
            chw = preprocess_frame(image, encoding='rgb8', mask=mask, roi_margin=-1.0)
        except MaskError as exc:
            assert len(str(exc)) < 400
            continue
        assert chw.shape == (3, 224, 224) and np.isfinite(chw).all()


# ---------------------------------------------------------------- #2 log flood

class _Lines:
    """A logger that keeps what it is given (the node's is an rclpy logger)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)

    error = warning


def test_a_flood_of_unique_encodings_logs_one_bounded_line_per_camera() -> None:
    drops = [encoding_drop(0, f'enc{i}-' + 'x' * 100_000) for i in range(2000)]
    assert len({d.log_key for d in drops}) == 1  # the key holds no sender text
    assert all(len(d.message('/cam0')) < 300 for d in drops)
    lines = _Lines()
    log = ThrottledLog(lines)
    for drop in drops:
        log.warn(('/cam0',) + drop.log_key, drop.message('/cam0'))
    assert len(lines.lines) == 1


def test_the_throttle_table_stays_bounded_and_long_lines_are_cut() -> None:
    lines = _Lines()
    log = ThrottledLog(lines, period_s=60.0)
    for i in range(2000):
        log.warn(('key', i), f'message {i} ' + 'y' * 100_000)
    assert log.keys <= MAX_THROTTLE_KEYS + 1
    assert len(lines.lines) <= MAX_THROTTLE_KEYS + 1
    assert max(len(line) for line in lines.lines) < MAX_LOG_CHARS + 100
    expired = ThrottledLog(lines, period_s=0.0)  # expired keys are forgotten, not refused
    for i in range(2000):
        expired.warn(('key', i), 'z')
    assert expired.keys <= MAX_THROTTLE_KEYS + 1


# ---------------------------------------------------------------- #11 YAML alias bomb

ALIAS_BOMB = '\n'.join(['pix2voxpp:', '  ros__parameters:',
                        '    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
                       + [f'    a{i}: &a{i} [' + ','.join([f'*a{i - 1}'] * 9) + ']'
                          for i in range(1, 9)]
                       + ['    camera_topics: [' + ','.join(['*a8'] * 9) + ']']) + '\n'


def test_a_yaml_alias_bomb_params_file_is_refused_in_one_bounded_line(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bomb = tmp_path / 'bomb.yaml'
    bomb.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 700  # expands to 9^10 strings
    with pytest.raises(ParamsFileError, match='alias'):
        read_params_file(bomb, node_name='pix2voxpp')
    start = time.perf_counter()
    code = bag_cli.main([str(tmp_path / 'no.bag'), '--params', str(bomb), '--out',
                         str(tmp_path / 'out'), '--quiet'])
    err = capsys.readouterr().err
    assert code != 0 and time.perf_counter() - start < 30  # the old tool ran 65 s, then OOM
    assert err.count('\n') == 1 and len(err) < 400 and 'alias' in err, err


def test_huge_nested_values_are_shown_short() -> None:
    shared: list = ['lol'] * 9
    for _ in range(9):
        shared = [shared] * 9  # 9^10 strings by reference, as YAML builds aliases
    start = time.perf_counter()
    problems = find_problems({'camera_topics': shared})
    assert time.perf_counter() - start < 10  # a bound: expanding would take minutes
    assert problems and all(len(p) < 400 for p in problems)
    assert len(short_repr('x' * 10**6)) < 400


# ---------------------------------------------------------------- #12-#14 parameter bounds

def _valid(tmp_path: Path) -> dict[str, Any]:
    weights = tmp_path / 'w.pth'
    weights.write_bytes(b'')
    return {**{s.name: s.default for s in PARAMETERS}, 'weights': str(weights)}


@pytest.mark.parametrize('name, value, words', [
    ('max_frame_age_s', 1e300, 'max_frame_age_s must be <= 86400 (longer than a day'),
    ('max_rate_hz', 1e-300, 'max_rate_hz must be 0 (no limit) or >= 1.16e-05 (one a day'),
    ('future_tolerance_s', 1e300, 'future_tolerance_s must be <= 86400'),
    ('camera_rois', [0, 0, 40000, 40000], 'within +-32768 pixels'),
    ('roi_margin', 1e6, 'roi_margin must be <= 10'),
    ('views_per_reconstruction', 300, 'views_per_reconstruction must be <= 32 (the network'),
    ('camera_topics', [f'/cam{i}' for i in range(40)], 'more than 32 (views of one'),
    ('num_threads', 5000, 'num_threads must be <= 256 (no robot computer'),
    ('max_image_pixels', 2**40, 'max_image_pixels must be <= 1073741824'),
])
def test_out_of_bound_parameters_are_refused_with_the_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture, name: str, value: Any,
        words: str) -> None:
    problems = find_problems({**_valid(tmp_path), name: value})
    assert len(problems) == 1 and words in problems[0], problems
    params = write_params(tmp_path / 'node.yaml', {**_valid(tmp_path), name: value})
    code = bag_cli.main([str(tmp_path / 'no.bag'), '--params', str(params), '--out',
                         str(tmp_path / 'out'), '--quiet'])
    err = capsys.readouterr().err
    assert code != 0 and words in err and 'Traceback' not in err and err.count('\n') == 1


def _random_value(rng: np.random.Generator, spec: Any) -> Any:
    pool: list[Any] = [None, True, 0, -1, 1, 2**63, -2**63, 10**400, 1e300, -1e300, 1e-300,
                       math.nan, math.inf, -math.inf, 0.5, '', 'x' * 10_000, 'cpu', [], [1, 2],
                       [0, 0, 40000, 40000], ['a', 'a'], [math.nan], {'a': 1}, b'\x00',
                       [[['deep']]], spec.default]
    return pool[int(rng.integers(len(pool)))]


def test_fuzz_every_parameter_is_refused_clearly_or_accepted(tmp_path: Path) -> None:
    rng = np.random.default_rng(24)
    valid = _valid(tmp_path)
    for _ in range(FUZZ_CASES):
        values = dict(valid)
        for spec in rng.choice(np.array(PARAMETERS, dtype=object), int(rng.integers(1, 4))):
            values[spec.name] = _random_value(rng, spec)
        problems = find_problems(values)
        assert all(isinstance(p, str) and len(p) < 600 for p in problems), problems
        if problems:
            continue
        config = config_from_values(values)  # what an accepted set must be able to run
        ViewBuffer(config.view_buffer_config())
        OfflineAssembler(config.view_buffer_config(), max_rate_hz=config.max_rate_hz)
    assert DEFAULT_MAX_IMAGE_PIXELS > 4 * 3840 * 2160
