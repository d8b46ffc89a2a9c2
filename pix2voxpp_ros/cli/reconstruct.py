"""``pix2voxpp-reconstruct``: images of one object in, occupancy grid file and a picture out."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import Pix2VoxError
from ..core.image_header import declared_size, png_chunk_problem
from ..core.inference import Reconstructor
from ..core.limits import (DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_LIMIT, MAX_OBJECT_SIZE_M,
                           MAX_VIEWS)
from ..core.preprocess import RENDERING_SIZE, ImageInputError, check_pixels, preprocess_rendering
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
    parser.add_argument('--object-size-m', type=float, default=1.0,
                        help='edge of the grid in metres, for .ply output (default 1.0)')
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
               max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Read one image file (and its mask, if any) and preprocess it for the network."""
    image = _imread(path, max_pixels)
    if image is None:
        raise ImageInputError(f'{path}: cannot read image file (PNG or JPEG)')
    is_rendering = image.ndim == 3 and image.shape[2] == 4 and image.shape[:2] == (
        RENDERING_SIZE,) * 2
    if is_rendering and mask_path is None:
        return preprocess_rendering(image, metadata=reconstructor.metadata)
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
                                        roi_margin=-1.0 if mask is not None else 0.0)
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


def _output_refusal(args: argparse.Namespace) -> str | None:
    """Check the output options before the network runs; the refusal, or None."""
    if not (math.isfinite(args.object_size_m) and 0 < args.object_size_m <= MAX_OBJECT_SIZE_M):
        return (f'--object-size-m {args.object_size_m}: must be above 0 and at most '
                f'{MAX_OBJECT_SIZE_M:g} (metres)')
    if args.png and not cv2.haveImageWriter(str(args.png)):
        return f'--png {args.png}: OpenCV cannot write pictures with this suffix (use .png)'
    for option, path in (('--out', args.out), ('--png', args.png)):
        reason = path and _unwritable(path)
        if reason:
            return f'{option} {path}: {reason}'
    return None


def _write_outputs(args: argparse.Namespace, grid: np.ndarray, threshold: float) -> None:
    """Write ``--out`` (and ``--png``) for a ``(32, 32, 32)`` grid in ShapeNet axes.

    :raises OSError: a file cannot be written.
    """
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ros_axes = args.axes == 'ros'
    written = grid_to_ros_axes(grid) if ros_axes else grid  # (32, 32, 32) in --axes
    if args.out.suffix == '.npy':
        np.save(args.out, written)
    elif args.out.suffix == '.binvox':
        write_binvox(args.out, written >= threshold)
    else:
        points, probabilities = grid_to_points(grid, threshold=threshold,
                                               object_size_m=args.object_size_m,
                                               ros_axes=ros_axes)
        write_ply(args.out, points, probabilities)
    if args.png:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        title = f'{args.weights.name}: {len(args.images)} view(s), threshold {threshold:g}'
        picture = render_grid_views(grid, threshold=threshold, title=title)
        if not cv2.imwrite(str(args.png), picture):
            raise OSError(f'--png {args.png}: OpenCV could not write the picture')


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _parse_args(argv)
    if args.out.suffix not in OUTPUT_SUFFIXES:
        print(f'pix2voxpp-reconstruct: --out {args.out}: suffix must be one of '
              f'{", ".join(OUTPUT_SUFFIXES)}', file=sys.stderr)
        return 2
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        print(f'pix2voxpp-reconstruct: --threshold {args.threshold}: must be in (0, 1)',
              file=sys.stderr)
        return 2
    masks = args.masks or []
    if len(args.images) > MAX_VIEWS:
        print(f'pix2voxpp-reconstruct: {len(args.images)} images: at most {MAX_VIEWS} (the '
              'network was trained with up to 20 views)', file=sys.stderr)
        return 2
    if not 0 < args.max_image_pixels <= MAX_IMAGE_PIXELS_LIMIT:
        print(f'pix2voxpp-reconstruct: --max-image-pixels {args.max_image_pixels}: must be in '
              f"1 .. {MAX_IMAGE_PIXELS_LIMIT} (OpenCV's own limit)", file=sys.stderr)
        return 2
    if masks and len(masks) != len(args.images):
        print(f'pix2voxpp-reconstruct: {len(masks)} --mask for {len(args.images)} images: give '
              'one mask per image, in the same order', file=sys.stderr)
        return 2
    refusal = _output_refusal(args)
    if refusal:
        print(f'pix2voxpp-reconstruct: {refusal}', file=sys.stderr)
        return 2
    for path in [*args.images, *masks]:
        if not path.is_file():
            kind = 'mask' if path in masks else 'image'
            print(f'pix2voxpp-reconstruct: {path}: no such {kind} file', file=sys.stderr)
            return 2
    try:
        reconstructor = Reconstructor(args.weights, device=args.device,
                                      precision=args.precision, backend=args.backend,
                                      warmup_views=0)
        views = np.stack([_read_view(path, reconstructor, mask, max_pixels=args.max_image_pixels)
                          for path, mask in zip(args.images, masks or [None] * len(args.images))])
        grid = reconstructor.infer(views[None])[0]  # (32, 32, 32)
    except (Pix2VoxError, ValueError) as exc:
        print(f'pix2voxpp-reconstruct: {exc}', file=sys.stderr)
        return 1
    threshold = reconstructor.threshold if args.threshold is None else args.threshold
    try:
        _write_outputs(args, grid, threshold)
    except (OSError, cv2.error) as exc:
        print(f'pix2voxpp-reconstruct: cannot write the output: {exc}', file=sys.stderr)
        return 1
    occupied = int((grid >= threshold).sum())
    print(f'{len(args.images)} view(s) -> {args.out} ({occupied} occupied voxels at threshold '
          f'{threshold:g}, model {reconstructor.last_model_time_s * 1000:.0f} ms)')
    if args.png:
        print(f'picture -> {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
