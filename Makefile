# Everything installs into a local virtual environment; nothing is needed beforehand but
# python3 (3.10+) with venv. constraints.txt pins torch to the CPU wheel on this machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The main job: codes -> train -> export -> predict on the bundled Cora graph.
demo: $(STAMP)
	$(BIN)/hashembed demo --out runs/demo

## The test suite (CPU; Triton kernels under TRITON_INTERPRET=1).
test: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
