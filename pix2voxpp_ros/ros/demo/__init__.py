"""``pix2voxpp-demo``: the simulated rig and the reconstruction node end to end, scored.

For machines without ``ros2 launch``: starts ``sim_camera_rig`` and ``pix2voxpp_node`` as separate
processes with the same parameter files as ``launch/demo.launch.py``, listens to what they publish
over DDS, and scores every reconstructed cloud against the rig's ground truth of the same stamp
(IoU of occupied voxels). Writes, under ``--out``: per object a picture of the camera views, the
reconstruction and the ground truth, and ``summary.json``.

``--scene`` picks the rig's scene (``plain``: today's centred objects; ``tabletop``: clutter,
off-centre objects, cameras of different kinds; ``wrist``: one orbiting camera, which the node
takes in its moving-camera mode). In the cluttered scenes the node crops around the rig's true
object masks (a stand-in for a segmentation node) unless ``--no-masks``; ``--compressed`` sends
JPEG images.

The package by job: :mod:`.options` (command line), :mod:`.scene_setup` (scene → parameters),
:mod:`.processes` (the node and rig processes), :mod:`.collector` (the ROS subscriptions feeding
:mod:`pix2voxpp_ros.core.scoring`), :mod:`.report` (pictures, PLY, ``summary.json``),
:mod:`.record` (``--record``) and :mod:`.run` (the main loop).
"""

from .collector import Scorer
from .processes import start_demo_processes, stop_processes
from .run import main
from .scene_setup import DEFAULT_WEIGHTS, DemoSetup, config_dir, demo_setup

__all__ = ['DEFAULT_WEIGHTS', 'DemoSetup', 'Scorer', 'config_dir', 'demo_setup', 'main',
           'start_demo_processes', 'stop_processes']
