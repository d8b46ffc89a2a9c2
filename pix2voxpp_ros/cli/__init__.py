"""Command-line tools of the ROS-free core (reconstruct, synth)."""
