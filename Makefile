# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create or reuse the project virtual environment .venv with the pinned requirements.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py training/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	echo '*' > $(VENV)/.gitignore
	touch $(VENV)/COLCON_IGNORE  # keep colcon out of the wheels' share/*/package.xml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . -e training
	touch $(STAMP)

demo: venv
	$(VENV)/bin/pix2voxpp-demo --objects 8

test: venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/flake8 pix2voxpp_ros training test benchmarks

clean:
	rm -rf out build install log
