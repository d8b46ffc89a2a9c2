"""``pix2voxpp-reconstruct``: images of one object in, occupancy grid file and a picture out.

With ``--calibration`` (one YAML/JSON file per image: intrinsics and camera pose in a fixed
frame, :mod:`..core.calibration_file`) and masks, the reconstruction is placed in that frame by
the core's placement (:func:`..core.calibration.place_view_set`, as the node does): the ``.ply``
is then in metres in the fixed frame and ``OUT.placement.json`` says where the grid stands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from ..core.calibration import (PlacedGrid, PlacementFailedError, PlacementSettings,
                                place_view_set)
from ..core.calibration_file import CalibrationFileError, CameraCalibration, read_calibration_file
from ..core.errors import Pix2VoxError
from ..core.geometry import matrix_to_quaternion
from ..core.image_header import declared_size, png_chunk_problem
from ..core.inference import Reconstructor
from ..core.limits import (DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT, MAX_OBJECT_SIZE_M,
                           MAX_VIEWS)
from ..core.preprocess import RENDERING_SIZE, ImageInputError, check_pixels, preprocess_rendering
from ..core.staging import partial_name, remove_stale_partials
from ..core.views import Frame, ViewSet
from ..core.visualize import render_grid_views
from ..core.voxels import grid_to_points, grid_to_ros_axes, write_binvox, write_ply
from .options import add_inference_options

OUTPUT_SUFFIXES = ('.ply', '.binvox', '.npy')


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='pix2voxpp-reconstruct',
        description='Reconstruct the 32³ occupancy of one object from one or more images of it.')
    parser.add_argument('images', nargs='+', type=Path, metavar='IMAGE',
                        help='views of the same object (PNG/JPEG; 137×137 RGBA renderings are '
                             'preprocessed as ShapeNet renderings, other images as camera frames)')
    parser.add_argument('--weights', required=True, type=Path,
                        help="checkpoint: the authors' release file or a project file")
    parser.add_argument('--out', required=True, type=Path,
                        help='output grid: .npy (probabilities), .binvox (thresholded) or .ply '
                             '(occupied voxel centres in metres); axes as --axes says')
    parser.add_argument('--axes', choices=('ros', 'shapenet'), default='ros',
                        help="axes of every output file: 'ros' (default; x forward, y left, "
                             "z up, as the node's ~/grid and clouds) or 'shapenet' (the "
                             "network's own canonical frame, y up, as ShapeNetVox32)")
    parser.add_argument('--mask', action='append', type=Path, metavar='MASK', dest='masks',
                        help='object mask of an image (PNG, one channel, nonzero on the object, '
                             "the image's size): give it once per image, in the images' order. "
                             'Each view is then cut around its mask and everything outside the '
                             'mask becomes background, as the node does with mask_topics')
    parser.add_argument('--png', type=Path, help='also write a picture of the occupied voxels')
    parser.add_argument('--threshold', type=float,
                        help="occupancy threshold (default: the weights' recommended one)")
    parser.add_argument('--object-size-m', type=float,
                        help='edge of the grid in metres, for .ply output (default 1.0; with '
                             '--calibration the placement measures it)')
    parser.add_argument('--calibration', action='append', type=Path, metavar='FILE',
                        dest='calibrations',
                        help='calibration of an image (YAML or JSON: K, the image size, the '
                             "camera optical frame's pose in fixed_frame; see the README): "
                             "give it once per image, in the images' order, with a --mask per "
                             'image. The reconstruction is then placed in fixed_frame: the .ply '
                             'in metres there, its pose in OUT.placement.json')
    parser.add_argument('--min-placement-iou', type=float,
                        default=PlacementSettings().min_placement_iou, metavar='IOU',
                        help='with --calibration: refuse a placement whose silhouettes match '
                             'the masks with a lower mean IoU (exit 1; default %(default)s)')
    parser.add_argument('--carve', action='store_true',
                        help='with --calibration: empty the voxels a view sees outside its '
                             'mask (off by default, as in the node: see the README)')
    parser.add_argument('--max-image-pixels', type=int, default=DEFAULT_MAX_IMAGE_PIXELS,
                        metavar='N', help='refuse images and masks declaring more pixels, '
                        'before decoding them (default %(default)s: six 4K frames)')
    add_inference_options(parser, device='auto', backend='auto', precision='fp32')
    # Intermixed: "a.png --mask a_mask.png b.png --mask b_mask.png" reads naturally.
    return parser.parse_intermixed_args(argv)


def _imread(path: Path, max_pixels: int) -> np.ndarray | None:
    """Read a PNG or JPEG file as ``cv2.imread`` does, its declared size checked first.

    :returns: the image, or None when it is no PNG or JPEG (whose size could not be checked)
        or does not decode.
    :raises ImageInputError: more than ``max_pixels`` pixels declared.
    """
    data = path.read_bytes()
    size = declared_size(data)
    if size is None or png_chunk_problem(data):
        return None
    check_pixels(*size, max_pixels=max_pixels, what=str(path))
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


def _read_mask(path: Path, max_pixels: int) -> np.ndarray:
    """Read one mask file: ``(H, W)`` uint8, nonzero on the object."""
    mask = _imread(path, max_pixels)
    if mask is None:
        raise ImageInputError(f'{path}: cannot read mask file (PNG or JPEG)')
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2:
        raise ImageInputError(f'{path}: a mask must have one channel, got {mask.shape[2]}')
    if mask.dtype != np.uint8:  # 16-bit PNG: anything nonzero is the object
        mask = (mask > 0).astype(np.uint8)
    return mask


def _read_view(path: Path, reconstructor: Reconstructor, mask_path: Path | None = None, *,
               max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one image file (and its mask, if any) and preprocess it for the network.

    :returns: the network's input view and the mask (None without one).
    """
    image = _imread(path, max_pixels)
    if image is None:
        raise ImageInputError(f'{path}: cannot read image file (PNG or JPEG)')
    is_rendering = image.ndim == 3 and image.shape[2] == 4 and image.shape[:2] == (
        RENDERING_SIZE,) * 2
    if is_rendering and mask_path is None:
        return preprocess_rendering(image, metadata=reconstructor.metadata), None
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    channels = 1 if image.ndim == 2 else image.shape[2]
    encoding = {1: 'mono8', 3: 'bgr8', 4: 'bgra8'}.get(channels)  # OpenCV reads colour as BGR
    if encoding is None:
        raise ImageInputError(f'{path}: unsupported image with {channels} channels')
    mask = None if mask_path is None else _read_mask(mask_path, max_pixels)
    try:
        # With a mask, the crop's margin is the one that frames objects as the renderings do.
        return reconstructor.preprocess(image, encoding=encoding, mask=mask,
                                        roi_margin=-1.0 if mask is not None else 0.0), mask
    except ImageInputError as exc:
        where = path if mask_path is None else f'{path} with mask {mask_path}'
        raise ImageInputError(f'{where}: {exc}') from exc


def _unwritable(path: Path) -> str | None:
    """Say why ``path`` cannot be written as a file (creating its folders), or None."""
    if path.is_dir():
        return 'is a directory'
    if path.exists():
        return None if os.access(path, os.W_OK) else 'is read-only'
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folders below it are created
    if not folder.is_dir():
        return f'{folder} is not a folder'
    if not os.access(folder, os.W_OK | os.X_OK):
        return f'folder {folder} is not writable'
    return None


def _placement_path(out: Path) -> Path:
    """Where the placement of ``--out`` is written: ``OUT.placement.json`` beside it."""
    return out.with_name(f'{out.stem}.placement.json')


def _output_refusal(args: argparse.Namespace) -> str | None:
    """Check the output options before the network runs; the refusal, or None."""
    size = args.object_size_m
    if size is not None and not (math.isfinite(size) and 0 < size <= MAX_OBJECT_SIZE_M):
        return (f'--object-size-m {size}: must be above 0 and at most '
                f'{MAX_OBJECT_SIZE_M:g} (metres)')
    if args.png and not cv2.haveImageWriter(str(args.png)):
        return f'--png {args.png}: OpenCV cannot write pictures with this suffix (use .png)'
    outputs = [('--out', args.out), ('--png', args.png)]
    if args.calibrations:
        outputs.append(('--out', _placement_path(args.out)))
    for option, path in outputs:
        reason = path and _unwritable(path)
        if reason:
            return f'{option} {path}: {reason}'
    return None


def _check_calibration_sizes(path: Path, calibration: CameraCalibration,
                             files: list[tuple[str, Path]]) -> None:
    """Check that the image and mask headers declare the size the calibration is for.

    Files without a readable header are left to the image reader (exit 1 there).

    :raises CalibrationFileError: a file of another size.
    """
    expected = (calibration.intrinsics.width, calibration.intrinsics.height)
    for kind, file in files:
        size = declared_size(file.read_bytes())
        if size is not None and tuple(size) != expected:
            raise CalibrationFileError(
                f'--calibration {path}: width, height: {expected[0]}x{expected[1]}, but '
                f'{kind} {file} is {size[0]}x{size[1]}')


def _read_calibrations(args: argparse.Namespace) -> list[CameraCalibration]:
    """Read and check ``--calibration`` against the images, masks and options.

    :raises CalibrationFileError: one line naming the file and key, or the option at fault.
    """
    paths, masks = args.calibrations, args.masks or []
    if len(paths) != len(args.images):
        raise CalibrationFileError(f'{len(paths)} --calibration for {len(args.images)} images: '
                                   'give one calibration file per image, in the same order')
    if not masks:
        raise CalibrationFileError('--calibration needs a --mask per image: the placement fits '
                                   "the reconstruction's silhouettes to the masks")
    if len(paths) < 2:
        raise CalibrationFileError('--calibration: placement needs two calibrated views or '
                                   'more, got one image')
    if args.object_size_m is not None:
        raise CalibrationFileError('--object-size-m: not with --calibration, whose placement '
                                   'measures the size')
    if args.axes == 'shapenet' and args.out.suffix == '.ply':
        raise CalibrationFileError('--axes shapenet: with --calibration the .ply is in '
                                   'fixed_frame; the axes apply to .npy and .binvox only')
    if not 0.0 <= args.min_placement_iou <= 1.0:
        raise CalibrationFileError(f'--min-placement-iou {args.min_placement_iou}: must be in '
                                   '[0, 1]')
    calibrations = []
    for path, image, mask in zip(paths, args.images, masks):
        try:
            calibration = read_calibration_file(path)
        except CalibrationFileError as exc:
            raise CalibrationFileError(f'--calibration {exc}') from None
        first = calibrations[0].fixed_frame if calibrations else calibration.fixed_frame
        if calibration.fixed_frame != first:
            raise CalibrationFileError(
                f'--calibration {path}: fixed_frame: {calibration.fixed_frame!r}, but '
                f'{paths[0]} gives {first!r}: every pose must be in one frame')
        _check_calibration_sizes(path, calibration, [('image', image), ('mask', mask)])
        calibrations.append(calibration)
    return calibrations


class _CalibratedPoses:
    """The camera poses of the calibration files: the pose source of the placement."""

    def __init__(self, calibrations: list[CameraCalibration]) -> None:
        self._poses = [calibration.camera_to_fixed for calibration in calibrations]

    def frame_pose(self, frame: Frame, *, timeout_s: float = 0.0) -> np.ndarray:
        """Return the pose of the image's camera, whatever the time."""
        return self._poses[frame.camera]


def _place(grid: np.ndarray, threshold: float, calibrations: list[CameraCalibration],
           masks: list[np.ndarray], args: argparse.Namespace) -> PlacedGrid:
    """Place the reconstruction as the node does, each image a camera of the view set.

    :raises PlacementFailedError: fewer than two usable views, or a fit below the threshold.
    """
    # The placement reads each frame's K, camera and mask; the mask stands in for the image.
    frames = tuple(Frame(camera=index, stamp_ns=0, image=mask, encoding='mono8', mask=mask,
                         intrinsics=calibration.intrinsics.matrix)
                   for index, (calibration, mask) in enumerate(zip(calibrations, masks)))
    settings = PlacementSettings(min_placement_iou=args.min_placement_iou, carve=args.carve)
    return place_view_set(grid, ViewSet(frames), threshold=threshold,
                          poses=_CalibratedPoses(calibrations), settings=settings)


def _placement_record(placed: PlacedGrid, fixed_frame: str, args: argparse.Namespace,
                      threshold: float) -> dict:
    """Return the contents of ``OUT.placement.json``."""
    pose = placed.pose
    return {
        'fixed_frame': fixed_frame,
        'position_m': list(pose.position),
        'orientation_xyzw': list(matrix_to_quaternion(pose.rotation())),
        'heading_deg': math.degrees(pose.heading_rad),
        'size_m': pose.size_m,
        'voxel_size_m': pose.size_m / placed.grid.shape[0],
        'silhouette_iou': placed.silhouette_iou,
        'grid_to_fixed': pose.grid_to_fixed().tolist(),
        'views': len(args.images),
        'out': str(args.out),
        'threshold': threshold,
        'carved': bool(args.carve),
    }


def _write_outputs(args: argparse.Namespace, grid: np.ndarray, threshold: float,
                   placed: PlacedGrid | None = None, fixed_frame: str = '') -> None:
    """Write ``--out`` (and ``--png``, and the placement) for a ``(32, 32, 32)`` grid.

    Every file is written under a staged name first and moved into place when all are
    written, so a failure leaves none of them half-written; what a killed run left beside
    them is removed first.

    :param grid: probabilities in ShapeNet axes.
    :param placed: the placement (``--calibration``): the ``.ply`` is then in ``fixed_frame``.
    :raises OSError: a file cannot be written.
    """
    written: list[tuple[Path, Path]] = []

    def stage(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        # The suffix kept: np.save would append one, OpenCV picks the format by it.
        written.append((partial_name(path, keep_suffix=True), path))
        return written[-1][0]

    if placed is not None:
        grid = placed.grid  # carved with --carve
    ros_axes = args.axes == 'ros'
    try:
        grid_file = grid_to_ros_axes(grid) if ros_axes else grid  # (32, 32, 32) in --axes
        if args.out.suffix == '.npy':
            np.save(stage(args.out), grid_file)
        elif args.out.suffix == '.binvox':
            write_binvox(stage(args.out), grid_file >= threshold)
        elif placed is not None:  # metres in fixed_frame
            points, probabilities = grid_to_points(grid, threshold=threshold)
            write_ply(stage(args.out), placed.pose.to_fixed(points), probabilities)
        else:
            points, probabilities = grid_to_points(
                grid, threshold=threshold, object_size_m=args.object_size_m or 1.0,
                ros_axes=ros_axes)
            write_ply(stage(args.out), points, probabilities)
        if placed is not None:
            record = _placement_record(placed, fixed_frame, args, threshold)
            stage(_placement_path(args.out)).write_text(json.dumps(record, indent=2) + '\n')
        if args.png:
            title = f'{args.weights.name}: {len(args.images)} view(s), threshold {threshold:g}'
            if placed is not None:
                title += f', {placed.pose.size_m:.3g} m'
            picture = render_grid_views(grid, threshold=threshold, title=title)
            if not cv2.imwrite(str(stage(args.png)), picture):
                raise OSError(f'--png {args.png}: OpenCV could not write the picture')
        for staged, path in written:
            os.replace(staged, path)
    finally:
        for staged, _ in written:
            staged.unlink(missing_ok=True)


def _describe(placed: PlacedGrid, fixed_frame: str) -> str:
    """One line: where the reconstruction stands."""
    pose = placed.pose
    return (f'placed in {fixed_frame}: position ({", ".join(f"{v:.3f}" for v in pose.position)})'
            f' m, heading {math.degrees(pose.heading_rad):.1f} deg, size {pose.size_m:.3f} m, '
            f'silhouette IoU {placed.silhouette_iou:.2f}')


def _usage_refusal(args: argparse.Namespace) -> str | None:
    """Check the options and files before the network runs; the refusal, or None."""
    masks = args.masks or []
    if args.out.suffix not in OUTPUT_SUFFIXES:
        return f'--out {args.out}: suffix must be one of {", ".join(OUTPUT_SUFFIXES)}'
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        return f'--threshold {args.threshold}: must be in (0, 1)'
    if len(args.images) > MAX_VIEWS:
        return (f'{len(args.images)} images: at most {MAX_VIEWS} (the network was trained '
                'with up to 20 views)')
    if not 0 < args.max_image_pixels <= MAX_IMAGE_PIXELS_LIMIT:
        return (f'--max-image-pixels {args.max_image_pixels}: must be in '
                f"1 .. {MAX_IMAGE_PIXELS_LIMIT} (OpenCV's own limit)")
    if masks and len(masks) != len(args.images):
        return (f'{len(masks)} --mask for {len(args.images)} images: give one mask per image, '
                'in the same order')
    refusal = _output_refusal(args)
    if refusal:
        return refusal
    for path in [*args.images, *masks]:
        if not path.is_file():
            return f'{path}: no such {"mask" if path in masks else "image"} file'
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    refusal = _usage_refusal(args)
    calibrations: list[CameraCalibration] = []
    if refusal is None and args.calibrations:
        try:
            calibrations = _read_calibrations(args)
        except CalibrationFileError as exc:
            refusal = str(exc)
    if refusal:
        print(f'pix2voxpp-reconstruct: {refusal}', file=sys.stderr)
        return 2
    masks = args.masks or [None] * len(args.images)
    try:
        reconstructor = Reconstructor(args.weights, device=args.device,
                                      precision=args.precision, backend=args.backend,
                                      warmup_views=0)
        read = [_read_view(path, reconstructor, mask, max_pixels=args.max_image_pixels)
                for path, mask in zip(args.images, masks)]
        grid = reconstructor.infer(np.stack([view for view, _ in read])[None])[0]  # (32, 32, 32)
    except (Pix2VoxError, ValueError) as exc:
        print(f'pix2voxpp-reconstruct: {exc}', file=sys.stderr)
        return 1
    threshold = reconstructor.threshold if args.threshold is None else args.threshold
    placed = None
    fixed_frame = calibrations[0].fixed_frame if calibrations else ''
    if calibrations:
        try:
            placed = _place(grid, threshold, calibrations, [mask for _, mask in read], args)
        except PlacementFailedError as exc:
            print(f'pix2voxpp-reconstruct: cannot place the reconstruction in {fixed_frame}: '
                  f'{exc}; nothing written (without --calibration the tool writes the unplaced '
                  'shape)', file=sys.stderr)
            return 1
    try:
        _write_outputs(args, grid, threshold, placed, fixed_frame)
    except (OSError, cv2.error) as exc:
        print(f'pix2voxpp-reconstruct: cannot write the output: {exc}', file=sys.stderr)
        return 1
    occupied = int(((grid if placed is None else placed.grid) >= threshold).sum())
    print(f'{len(args.images)} view(s) -> {args.out} ({occupied} occupied voxels at threshold '
          f'{threshold:g}, model {reconstructor.last_model_time_s * 1000:.0f} ms)')
    if placed is not None:
        print(_describe(placed, fixed_frame))
        print(f'placement -> {_placement_path(args.out)}')
    if args.png:
        print(f'picture -> {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
