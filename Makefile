# The README's two Quick start commands: `make demo` and `make test`.
# Both create .venv with Python 3.11 (or python3) and install the package into it once.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# A faster memory allocator when the machine has one (apt-get install libtcmalloc-minimal4):
# glibc returns big activation buffers to the kernel after every step (see README, Speed).
# Without it every stage tunes glibc to keep them (runtime.configure_cpu), which gains most of it.
FAST_MALLOC := $(firstword $(wildcard /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/*/libjemalloc.so.2))

.PHONY: demo test setup

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# uv where it can be installed, from the places pip's own configuration names; else pip
	# (tools/install.py: 18 s against pip's 67 s for torch's 5.5 GB here; benchmarks/install.py)
	$(PY) tools/install.py -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	LD_PRELOAD=$(FAST_MALLOC) $(PY) -m sat2scape demo

test: $(VENV)/.installed
	$(PY) -m pytest -q
