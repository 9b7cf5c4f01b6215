# Every target installs what it needs first, so a fresh clone needs no other step.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := dev,vectors,embed,wasm,container,tokenizers

.PHONY: install test run pyz bench lint format clean
RUN_ARGS ?=

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The quick start: the user's guest as a local process (Landlock-confined where the kernel
# allows), then the terminal UI attached to it. Without a provider key it stops and says
# which variables to set. Extra start flags: make run RUN_ARGS="--set selection.model=..."
run: $(STAMP)
	@$(PY) -m oxydra runner status 2>/dev/null | grep -qx 'healthy=true' \
		|| $(PY) -m oxydra runner --insecure restart $(RUN_ARGS)
	@$(PY) -m oxydra runner --tui

pyz: $(STAMP)
	$(PY) build_pyz.py

bench: $(STAMP) pyz
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check oxydra tests bench build_pyz.py oxydra.py
	$(VENV)/bin/ruff format --check oxydra tests bench build_pyz.py oxydra.py

format: $(STAMP)
	$(VENV)/bin/ruff format oxydra tests bench build_pyz.py oxydra.py
	$(VENV)/bin/ruff check --fix oxydra tests bench build_pyz.py oxydra.py

clean:
	rm -rf build dist $(VENV) .pytest_cache .ruff_cache
