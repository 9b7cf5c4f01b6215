# Every target installs what it needs first, so a fresh clone needs no other step.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := dev,vectors,embed,wasm,container,tokenizers,otel,otel-grpc,postgres

.PHONY: install test run demo pyz bench lint format clean wasm
RUN_ARGS ?=

# The WASI guest of the file tools (docs/wasm.md). The built .wasm is committed, so only
# someone changing guest.c needs clang, lld and wasi-libc (Debian: apt-get install clang lld
# wasi-libc); tests/security/test_wasm_build.py checks the committed file matches.
WASM_CC ?= clang
WASM_SRC := oxydra/security/wasm/guest.c
WASM_OUT ?= oxydra/security/wasm/guest.wasm
WASM_FLAGS := --target=wasm32-wasi --sysroot=/usr -Os -Wall -Wextra -Werror \
	-Wl,--strip-all -Wl,-z,stack-size=262144

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

# Bytecode caches are written even where PYTHONDONTWRITEBYTECODE is set: without them each
# of the four workers rewrites the asserts of every test module (about 3 s of CPU each) and
# every `python -m oxydra` a test starts compiles what it imports, on every run.
# The package and the tests' helpers are compiled once, on every core, before the workers
# and the hundreds of `python -m oxydra` they start would each compile them (a fresh clone).
# Not `tests/data/`: those are fixtures (a skill's scripts) that must stay as written.
test: $(STAMP)
	$(PY) -m compileall -q -j 0 -x '/test_[^/]*\.py$$|(^|/)tests/data/' oxydra tests >/dev/null
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest

# The quick start: the user's guest as a local process (Landlock-confined where the kernel
# allows), then the terminal UI attached to it. Without a provider key it says which
# variables to set and offers the demo. Extra start flags:
# make run RUN_ARGS="--set selection.model=..."
run: $(STAMP)
	@if ! $(PY) -m oxydra runner status 2>/dev/null | grep -qx 'healthy=true' \
		&& ! $(PY) -m oxydra runner --insecure restart $(RUN_ARGS); then \
		exec $(PY) -m oxydra.testing.demo --offer; \
	fi; \
	exec $(PY) -m oxydra runner --tui

# The same with the bundled fake model (a script, not an LLM): the TUI, a tool call and an
# approval, with no provider at all. Runs as user `demo`; leaving the TUI stops it.
demo: $(STAMP)
	@$(PY) -m oxydra.testing.demo

pyz: $(STAMP)
	$(PY) build_pyz.py

bench: $(STAMP) pyz
	$(PY) -m compileall -q -j 0 oxydra  # a stale .pyc would be compiled again in every run timed
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check oxydra tests bench build_pyz.py setup.py oxydra.py
	$(VENV)/bin/ruff format --check oxydra tests bench build_pyz.py setup.py oxydra.py
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format oxydra tests bench build_pyz.py setup.py oxydra.py
	$(VENV)/bin/ruff check --fix oxydra tests bench build_pyz.py setup.py oxydra.py

wasm:
	$(WASM_CC) $(WASM_FLAGS) -o $(WASM_OUT) $(WASM_SRC)

clean:
	rm -rf build dist $(VENV) .pytest_cache .ruff_cache
