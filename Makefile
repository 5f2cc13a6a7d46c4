# SurgTwin: `make run` opens the app on the bundled phantom; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench phantom sysdeps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

# Opens the workstation on the bundled phantom (bone and canal segmented, one screw placed).
# Without a display it renders the window headless into sample_window.png instead.
run: sysdeps $(STAMP)
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
	  $(VENV)/bin/surgtwin gui sample_dicom; \
	else \
	  echo "no display: rendering the window headless to sample_window.png"; \
	  xvfb-run -a -s "-screen 0 1600x1000x24" $(VENV)/bin/surgtwin gui sample_dicom \
	    --screenshot sample_window.png; \
	fi

# Xvfb and Mesa GL for the GUI tests, installed only when missing and only as root.
sysdeps:
	@bash packaging/install-sysdeps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: sysdeps $(STAMP) lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_load.py ../shared/data/ct-abdomen-spine
	$(PY) benchmarks/bench_mesh.py ../shared/data/ct-abdomen-spine
	$(PY) benchmarks/bench_clearance.py
	$(PY) benchmarks/bench_cut.py
	$(PY) benchmarks/bench_gui.py

phantom: $(STAMP)
	$(PY) -m surgtwin.phantom -o sample_dicom

clean:
	rm -rf $(VENV) .pytest_cache build dist
