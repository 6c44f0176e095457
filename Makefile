# Set-up, tests, demo and benchmarks. Everything installs into .venv from this repo's own files.
# torch==2.13.0 is installed first so that the package's open torch range installs nothing more.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo demo-fmnist bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (a minute or two, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/routing-rl run --agent fixed-random --env synthetic-groups --epochs 5 --logdir runs/demo --overwrite
	@echo "next: source $(VENV)/bin/activate  (puts routing-rl and tensorboard on PATH), then routing-rl list"

demo-fmnist: install
	$(BIN)/routing-rl run --agent fixed-random --env fmnist-mtl --epochs 3 --logdir runs/demo-fmnist --overwrite

bench: install
	$(BIN)/python benchmarks/routed_vs_shared.py --batch-size 128 --rounds 5

clean:
	rm -rf $(VENV) runs .pytest_cache
