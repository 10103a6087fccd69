# Quick start: `make demo` (score a generated sample corpus) and `make test` (the whole suite).
# Both bootstrap .venv on first use with the pinned CPU torch; CUDA users install vidscore[gpu] instead.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-decode bench-e2e gpu-wheels clean

$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c .ci/constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m vidscore.jobs.demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench-decode: $(STAMP)
	$(BIN)/python bench/decode.py

bench-e2e: $(STAMP)
	$(BIN)/python bench/e2e.py

# PyAV for the GPU machine (Python 3.12, no PyAV in its image): carried in .whl/ by bench/gpu_device.sh's call.
gpu-wheels: $(STAMP)
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl "av==$$($(BIN)/python -c 'import av; print(av.__version__)')"

clean:
	rm -rf $(VENV) demo_out .pytest_cache
