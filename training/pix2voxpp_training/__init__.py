"""Offline training, evaluation and export of Pix2Vox++ weights; imports pix2voxpp_ros.core only."""
