# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create or reuse the project virtual environment .venv with the pinned requirements.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Second tier: ROS 2 Jazzy (LTS) wheels with numpy 1.26 and a numpy-1 OpenCV, as on Ubuntu 24.04.
JAZZY := .venv-jazzy
JAZZY_STAMP := $(JAZZY)/.installed
# Everything but lint and the colcon build (tools of the first tier, not of a robot's Python),
# and the tests marked first_tier (the two-minute soak, the memory-capped hostile-node runs, the
# bag fuzz: slow, and nothing in them depends on the distro or numpy), to keep CI short.
JAZZY_TESTS := --ignore=test/test_lint.py --ignore=test/test_colcon_build.py \
	-m 'not first_tier'

.PHONY: venv venv-jazzy demo test test-jazzy lint clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py training/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	echo '*' > $(VENV)/.gitignore
	touch $(VENV)/COLCON_IGNORE  # keep colcon out of the wheels' share/*/package.xml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . -e training
	touch $(STAMP)

venv-jazzy: $(JAZZY_STAMP)

$(JAZZY_STAMP): requirements-jazzy.txt setup.py training/pyproject.toml
	test -x $(JAZZY)/bin/python || $(PYTHON) -m venv $(JAZZY)
	echo '*' > $(JAZZY)/.gitignore
	touch $(JAZZY)/COLCON_IGNORE
	$(JAZZY)/bin/python -m pip install --quiet --upgrade pip
	$(JAZZY)/bin/python -m pip install --quiet -r requirements-jazzy.txt
	$(JAZZY)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . -e training
	touch $(JAZZY_STAMP)

# The plain scene, then a placed one: the tabletop scene with placement calibrated, scored in
# the rig's world frame (camera poses over TF where tf2_ros imports, else the fixed cameras).
demo: venv
	$(VENV)/bin/pix2voxpp-demo --objects 8
	$(VENV)/bin/pix2voxpp-demo --scene tabletop --objects 4 --out out/demo/tabletop

# Two pytest processes: the training tests in a process that has loaded OpenVINO (test/) crash
# (SIGSEGV) in the first training run; each half passes on its own (see README, Development).
# Every run reuses one temporary folder (pytest empties it first): a run writes about 4 GB of
# checkpoints and converted models, and pytest's own /tmp folders keep three runs of each kind,
# which filled a small disk during CI.
PYTEST_TMP = build/pytest-tmp
# Two worker processes (pytest-xdist), one test file each at a time: most tests wait on nodes,
# DDS discovery and child processes rather than on the CPU, and a file's module fixtures (a
# running node, a built model) are set up once. Each worker gets a DDS domain of its own.
PARALLEL = -n 2 --dist loadfile
# test/robot_tools.sh adds the robot's own ROS tools (tf2_ros, ros2 launch, ros2cli,
# sensor_msgs_py) from ../shared/ros-kit when it is there, into build/ros-kit-<distro>, and then
# requires the tests that need them to run; without the kit those tests skip.
test: venv
	mkdir -p $(dir $(PYTEST_TMP))
	test/robot_tools.sh $(VENV) kilted $(PY) -m pytest -q $(PARALLEL) --basetemp=$(PYTEST_TMP) test
	$(PY) -m pytest -q --basetemp=$(PYTEST_TMP) training/tests

test-jazzy: venv-jazzy
	$(JAZZY)/bin/python -c 'import numpy, cv2, rclpy; print("test-jazzy: numpy", numpy.__version__, "OpenCV", cv2.__version__)'
	mkdir -p $(dir $(PYTEST_TMP))
	test/robot_tools.sh $(JAZZY) jazzy $(JAZZY)/bin/python -m pytest -q $(PARALLEL) \
		--basetemp=$(PYTEST_TMP) $(JAZZY_TESTS) test
	$(JAZZY)/bin/python -m pytest -q --basetemp=$(PYTEST_TMP) training/tests

lint: venv
	$(VENV)/bin/flake8 pix2voxpp_ros training test benchmarks

clean:
	rm -rf out build install log
