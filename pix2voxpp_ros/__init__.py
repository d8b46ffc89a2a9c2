"""pix2voxpp_ros: multi-view Pix2Vox++ 3D reconstruction for ROS 2.

``pix2voxpp_ros.core`` is pure PyTorch/numpy (network, checkpoints, preprocessing, voxels, view
buffering, synthetic objects) and imports no ROS; ``pix2voxpp_ros.ros`` holds the thin ROS 2 layer.
"""

__version__ = '0.1.0'
