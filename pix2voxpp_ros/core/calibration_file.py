"""Calibration files: one image's intrinsics and camera pose in a fixed frame, YAML or JSON.

``pix2voxpp-reconstruct --calibration FILE`` takes one such file per image to place the
reconstruction in the robot's world, as the node does with ``camera_info`` and TF. A file is a
mapping; the intrinsics may be copied from a ``camera_calibration`` YAML file as it is::

    fixed_frame: world                    # the frame the pose is given in (z up)
    K: [fx, 0, cx, 0, fy, cy, 0, 0, 1]    # or [[...], [...], [...]]; or camera_matrix:
                                          #   {rows: 3, cols: 3, data: [...]}; or fx fy cx cy
    width: 640                            # or image_width: the image's size in pixels
    height: 480                           # or image_height
    position: [x, y, z]                   # the optical frame (x right, y down, z forward)
    orientation: [qx, qy, qz, qw]         #   in fixed_frame; both also as {x: .., y: .., ...}
    # or instead: camera_to_fixed: 4x4 rows (or 16 numbers), p_fixed = T @ p_camera

Also accepted and not used: ``camera_name``, ``frame_id``, ``distortion_model``,
``rectification_matrix``, ``projection_matrix``; ``distortion_coefficients`` (or ``D``) only
when all zero, since placement assumes a pinhole (rectified) image. Any other key is refused,
so a misspelt one never goes unnoticed.

Files are hostile-proof: at most :data:`MAX_CALIBRATION_FILE_BYTES`, read unexecuted (YAML
without aliases, see :mod:`.params_file`), every number finite, K checked as ``camera_info`` is
(:class:`.calibration.Intrinsics`), the quaternion or matrix a rigid rotation. A refusal is a
:class:`CalibrationFileError` naming the file and the key. Pure Python and numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import yaml

from .calibration import CalibrationError, Intrinsics
from .errors import Pix2VoxError
from .geometry import PoseError, matrix_to_quaternion, pose_matrix
from .limits import MAX_FRAME_ID_CHARS, MAX_IMAGE_PIXELS_LIMIT, short_repr, shorten
from .params_file import load_yaml

#: A calibration file holds a dozen numbers (a ``camera_calibration`` YAML is about 600 bytes).
MAX_CALIBRATION_FILE_BYTES = 64 * 1024
CALIBRATION_SUFFIXES = ('.yaml', '.yml', '.json')
#: Keys read from a file; :data:`IGNORED_KEYS` are allowed and not used.
INTRINSICS_KEYS = ('K', 'camera_matrix', 'fx', 'fy', 'cx', 'cy')
SIZE_KEYS = ('width', 'image_width', 'height', 'image_height')
POSE_KEYS = ('position', 'orientation', 'camera_to_fixed')
DISTORTION_KEYS = ('distortion_coefficients', 'D')
IGNORED_KEYS = ('camera_name', 'frame_id', 'distortion_model', 'rectification_matrix',
                'projection_matrix')
KNOWN_KEYS = ('fixed_frame', *INTRINSICS_KEYS, *SIZE_KEYS, *POSE_KEYS, *DISTORTION_KEYS,
              *IGNORED_KEYS)
#: Longest numeric string taken as a number (PyYAML reads ``1e3`` as the string '1e3').
_MAX_NUMBER_CHARS = 64
#: Deepest bracket nesting read: a file needs 2 (``[[..], ..]``); PyYAML spends seconds on a
#: few thousand open brackets before it gives up (0.6 s for 1,000), so they are counted first.
MAX_NESTING = 8
#: How far a ``camera_to_fixed`` rotation may be from orthonormal (rounded values in files).
_ROTATION_TOLERANCE = 1e-3


class CalibrationFileError(Pix2VoxError, ValueError):
    """A calibration file cannot be read, or a key of it is missing or unusable."""


@dataclass(frozen=True)
class CameraCalibration:
    """One image's calibration as its file gives it.

    :ivar intrinsics: K and the image size it is for.
    :ivar camera_to_fixed: ``(4, 4)`` rigid pose of the camera's optical frame in the fixed frame.
    :ivar fixed_frame: the name of that frame.
    """

    intrinsics: Intrinsics
    camera_to_fixed: np.ndarray
    fixed_frame: str


class _Refusal(Pix2VoxError, ValueError):
    """A key's problem, before the file's name is put in front."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f'{key}: {why}')


def _number(value: Any, key: str) -> float:
    if isinstance(value, str) and len(value) <= _MAX_NUMBER_CHARS:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refusal(key, f'expected a number, got {short_repr(value)}')
    try:
        number = float(value)
    except OverflowError:
        raise _Refusal(key, 'number out of range') from None
    if not np.isfinite(number):
        raise _Refusal(key, f'expected a finite number, got {number}')
    return number


def _numbers(value: Any, key: str, count: Optional[int],
             names: Sequence[str] = ()) -> np.ndarray:
    """``count`` finite numbers (None: any count).

    Given as a list, a list of equal rows, ``{rows, cols, data}`` or a mapping of ``names``.
    """
    if isinstance(value, dict) and 'data' in value:  # camera_calibration_parsers' matrices
        extra = sorted(str(k) for k in value if k not in ('rows', 'cols', 'data'))
        if extra:
            raise _Refusal(key, f'unknown entries {short_repr(extra)} (rows, cols, data)')
        value = value['data']
    elif isinstance(value, dict) and names:
        if sorted(map(str, value)) != sorted(names):
            raise _Refusal(key, f'expected the entries {", ".join(names)}, got '
                                f'{short_repr(sorted(map(str, value)))}')
        value = [value[name] for name in names]
    if not isinstance(value, list):
        raise _Refusal(key, f'expected a list of numbers, got {short_repr(value)}')
    if value and all(isinstance(row, list) for row in value):
        if len({len(row) for row in value}) != 1:
            raise _Refusal(key, 'rows of different lengths')
        value = [item for row in value for item in row]
    if count is not None and len(value) != count:
        raise _Refusal(key, f'expected {count} numbers, got {len(value)}')
    return np.array([_number(item, key) for item in value], dtype=np.float64)


def _one_of(document: dict, keys: Sequence[str], what: str) -> Optional[str]:
    """Return the one key of ``keys`` the document has (None: none); refuse two."""
    present = [key for key in keys if key in document]
    if len(present) > 1:
        raise _Refusal(' and '.join(present), f'give {what} once')
    return present[0] if present else None


def _intrinsics(document: dict) -> Intrinsics:
    key = _one_of(document, ('K', 'camera_matrix'), 'K')
    named = [name for name in ('fx', 'fy', 'cx', 'cy') if name in document]
    if key and named:
        raise _Refusal(f'{key} and {named[0]}', 'give K or fx fy cx cy, not both')
    if key:
        k = _numbers(document[key], key, 9)
    elif named:
        missing = [name for name in ('fx', 'fy', 'cx', 'cy') if name not in document]
        if missing:
            raise _Refusal(missing[0], 'missing (fx, fy, cx and cy go together)')
        fx, fy, cx, cy = (_number(document[name], name) for name in ('fx', 'fy', 'cx', 'cy'))
        k = np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
        key = 'fx'
    else:
        raise _Refusal('K', 'missing (K, camera_matrix or fx fy cx cy: the intrinsics)')
    size = []
    for names in (('width', 'image_width'), ('height', 'image_height')):
        name = _one_of(document, names, names[0])
        if name is None:
            raise _Refusal(names[0], f'missing (or {names[1]}): the image size K is for')
        value = document[name]
        if isinstance(value, bool) or not isinstance(value, int) or \
                not 1 <= value <= MAX_IMAGE_PIXELS_LIMIT:
            raise _Refusal(name, f'expected a positive whole number of pixels, got '
                                 f'{short_repr(value)}')
        size.append(value)
    if size[0] * size[1] > MAX_IMAGE_PIXELS_LIMIT:
        raise _Refusal('width', f'{size[0]}x{size[1]} is more than {MAX_IMAGE_PIXELS_LIMIT} '
                                'pixels')
    try:
        return Intrinsics.from_camera_info(k, size[0], size[1])
    except CalibrationError as exc:
        raise _Refusal(key, str(exc)) from None


def _rigid(matrix: np.ndarray, key: str) -> np.ndarray:
    """Check a ``(4, 4)`` rigid pose and return it with its rotation made exactly orthonormal."""
    rotation = matrix[:3, :3]
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0)):
        raise _Refusal(key, f'the last row must be 0 0 0 1, got {matrix[3].tolist()}')
    error = float(np.abs(rotation @ rotation.T - np.eye(3)).max())
    if error > _ROTATION_TOLERANCE or np.linalg.det(rotation) <= 0:
        raise _Refusal(key, 'the upper-left 3x3 is no rotation (not orthonormal with '
                            'determinant +1)')
    return pose_matrix(matrix[:3, 3], matrix_to_quaternion(rotation))


def _pose(document: dict) -> np.ndarray:
    if 'camera_to_fixed' in document:
        both = [key for key in ('position', 'orientation') if key in document]
        if both:
            raise _Refusal(f'camera_to_fixed and {both[0]}', 'give the pose once')
        return _rigid(_numbers(document['camera_to_fixed'], 'camera_to_fixed', 16)
                      .reshape(4, 4), 'camera_to_fixed')
    for key in ('position', 'orientation'):
        if key not in document:
            raise _Refusal(key, 'missing (position and orientation, or camera_to_fixed: the '
                                "camera's optical frame in fixed_frame)")
    position = _numbers(document['position'], 'position', 3, ('x', 'y', 'z'))
    orientation = _numbers(document['orientation'], 'orientation', 4, ('x', 'y', 'z', 'w'))
    try:
        return pose_matrix(position.tolist(), orientation.tolist())
    except PoseError as exc:
        raise _Refusal('orientation', str(exc)) from None


def _check_distortion(document: dict) -> None:
    key = _one_of(document, DISTORTION_KEYS, 'the distortion')
    if key is None:
        return
    if np.any(_numbers(document[key], key, None) != 0):
        raise _Refusal(key, 'placement takes rectified (undistorted) images: give the '
                            "rectified image's K (projection_matrix's left 3x3) and no "
                            'distortion')


def _nesting(text: str) -> int:
    """Return the deepest nesting of brackets in ``text``, quotes and comments not told apart."""
    depth = deepest = 0
    for char in text:
        if char in '[{':
            depth += 1
            deepest = max(deepest, depth)
        elif char in ']}':
            depth -= 1
    return deepest


def parse_calibration(document: Any) -> CameraCalibration:
    """Check a calibration file's parsed contents and build its :class:`CameraCalibration`.

    :raises CalibrationFileError: the key at fault and why (no file name).
    """
    try:
        if not isinstance(document, dict):
            raise _Refusal('(top level)', f'expected a mapping of keys, got '
                                          f'{type(document).__name__}')
        unknown = [key for key in document if key not in KNOWN_KEYS]
        if unknown:
            raise _Refusal(shorten(str(unknown[0]), 80), f'unknown key (known: '
                           f'{", ".join(KNOWN_KEYS)})')
        frame = document.get('fixed_frame')
        if frame is None:
            raise _Refusal('fixed_frame', 'missing (the frame the pose is given in, e.g. world)')
        if not isinstance(frame, str) or not frame.strip() or len(frame) > MAX_FRAME_ID_CHARS:
            raise _Refusal('fixed_frame', f'expected a frame name of 1 to {MAX_FRAME_ID_CHARS} '
                                          f'characters, got {short_repr(frame)}')
        _check_distortion(document)
        return CameraCalibration(_intrinsics(document), _pose(document), frame)
    except _Refusal as exc:
        raise CalibrationFileError(str(exc)) from None


def read_calibration_file(path: Union[str, Path]) -> CameraCalibration:
    """Read and check one calibration file (``.yaml``, ``.yml`` or ``.json``).

    :raises CalibrationFileError: one line naming the file and the key at fault: unreadable,
        over :data:`MAX_CALIBRATION_FILE_BYTES`, not valid YAML/JSON, a YAML alias, or a key
        missing, unknown or unusable.
    """
    path = Path(path)
    if path.suffix.lower() not in CALIBRATION_SUFFIXES:
        raise CalibrationFileError(f'{path}: a calibration file ends in '
                                   f'{", ".join(CALIBRATION_SUFFIXES)}')
    try:
        if not path.is_file():
            raise CalibrationFileError(f'{path}: no such calibration file')
        size = path.stat().st_size
        if size > MAX_CALIBRATION_FILE_BYTES:
            raise CalibrationFileError(f'{path}: {size} bytes, more than '
                                       f'{MAX_CALIBRATION_FILE_BYTES} (a calibration file is '
                                       'under 1 KB): not read')
        with path.open('rb') as stream:  # bounded even if the file grows meanwhile
            data = stream.read(MAX_CALIBRATION_FILE_BYTES + 1)
        if len(data) > MAX_CALIBRATION_FILE_BYTES:
            raise CalibrationFileError(f'{path}: more than {MAX_CALIBRATION_FILE_BYTES} bytes')
        text = data.decode('utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'
        raise CalibrationFileError(f'{path}: cannot read calibration file ({why})') from None
    if _nesting(text) > MAX_NESTING:
        raise CalibrationFileError(f'{path}: brackets nested more than {MAX_NESTING} deep')
    try:
        document = json.loads(text) if path.suffix.lower() == '.json' else load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        kind = 'JSON' if path.suffix.lower() == '.json' else 'YAML'
        raise CalibrationFileError(f'{path}: not valid {kind}: '
                                   f'{shorten(" ".join(str(exc).split()))}') from None
    except RecursionError:
        raise CalibrationFileError(f'{path}: nested too deeply') from None
    try:
        return parse_calibration(document)
    except CalibrationFileError as exc:
        raise CalibrationFileError(f'{path}: {exc}') from None
