"""The thin ROS 2 layer: message conversions, parameters and nodes over ``pix2voxpp_ros.core``."""
