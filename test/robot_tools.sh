#!/usr/bin/env bash
# Run a command (the test suite) with the robot's own ROS tools when the offline kit is there.
#
#   test/robot_tools.sh VENV TIER COMMAND...      e.g. test/robot_tools.sh .venv kilted pytest ...
#
# A robot has tf2_ros, launch, launch_ros, ros2cli and sensor_msgs_py from apt; the PyPI wheels of
# this machine have none of them. With ../shared/ros-kit beside the repository (or ROSKIT=DIR) this
# script installs them from the kit's sources into build/ros-kit-TIER (about 1.5 min the first
# time, 1 s after), builds this package with colcon into build/ament-TIER so that `ros2 launch
# pix2voxpp_ros ...` finds its launch files and executables, and runs COMMAND in that environment
# with PIX2VOXPP_ROBOT_TOOLS=required: a test that needs the tools then fails instead of skipping.
# Without the kit COMMAND runs as it is and those tests skip, saying how to get the tools.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 tier=$2
shift 2
kit=${ROSKIT:-../shared/ros-kit}
if [ ! -x "$kit/install.sh" ]; then
    echo "robot tools: no kit at $kit; the tests of tf2_ros, ros2 launch, ros2cli and" \
         "sensor_msgs_py skip (on a robot they run with the apt packages)"
    exec "$@"
fi
prefix=$PWD/build/ros-kit-$tier
bash "$kit/install.sh" "$venv/bin/python" "$prefix"
# shellcheck disable=SC1091
source "$prefix/env.sh"

# The package in an ament index of its own, as `colcon build` installs it on a robot. Only
# AMENT_PREFIX_PATH points there: Python keeps importing the venv's editable install (the working
# tree), and the installed executables run the venv's interpreter.
workspace=$PWD/build/ament-$tier
mkdir -p "$workspace/src"
ln -sfn "$PWD" "$workspace/src/pix2voxpp_ros"
colcon=$(cd "$venv/bin" && pwd)/colcon
started=$SECONDS
if ! (cd "$workspace" && "$colcon" build --merge-install --base-paths src \
        > colcon.log 2>&1); then
    tail -n 40 "$workspace/colcon.log"
    echo "robot tools: colcon build of pix2voxpp_ros failed (log: $workspace/colcon.log)" >&2
    exit 1
fi
echo "robot tools: pix2voxpp_ros built into $workspace/install ($((SECONDS - started)) s)"
export AMENT_PREFIX_PATH="$workspace/install${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PIX2VOXPP_ROBOT_TOOLS=required
exec "$@"
