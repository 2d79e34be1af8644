# `make demo`: set everything up and run the embedded demo.  `make test`: set everything up and run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo-out

VLLM_VENV ?= .vllm-venv

.PHONY: setup demo test test-fast test-vllm clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/vstar demo --out $(DEMO_OUT) --resume

# two pytest-xdist workers: much of a test's time is spent waiting on processes and Ray, not computing
# (tests/conftest.py says how files are handed out)
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

test: setup
	$(BIN)/python -m pytest -q $(XDIST)

test-fast: setup
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

# the vLLM engine on CPU: vLLM's CPU build needs its own torch, so it gets an environment of its own (~80 s, ~3.5 GB)
$(VLLM_VENV)/bin/vllm-ok:
	bash tests/vllm_cpu/setup.sh $(VLLM_VENV)
	touch $@

test-vllm: setup $(VLLM_VENV)/bin/vllm-ok
	VSTAR_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(BIN)/python -m pytest -q -m vllm

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
