"""Offline training, evaluation and export of Pix2Vox++ weights (uses pix2voxpp_ros.core only)."""
