"""The ROS-free core: network, checkpoints, preprocessing, inference, voxels, views, synthetic.

Nothing under this package may import rclpy, ROS message packages or cv_bridge; a test checks it.
"""
