# Every target sets up .venv (the project, its test extras and the parsl extra) when it
# is missing or pyproject.toml changed, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test demo lint bench eval clean

# pip -qq: errors only (a failed build or resolve still prints in full); with one -q the
# build backend's notices still came through.
$(STAMP): pyproject.toml features/_typed_c.c features/_parse_c.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[test,parsl]'
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

demo: $(STAMP)
	$(BIN)/academy-tui demo

lint: $(STAMP)
	$(BIN)/ruff check features steering tui prompts tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/bench_core.py
	$(BIN)/python bench/bench_tui.py
	$(BIN)/python bench/bench_steer.py
	$(BIN)/python bench/bench_procs.py
	$(BIN)/python bench/bench_cli.py

eval: $(STAMP)
	$(BIN)/python bench/eval_anomaly.py
	$(BIN)/python bench/eval_ask.py
	$(BIN)/python bench/eval_ask_runs.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache features/_typed_c.*.so features/_parse_c.*.so
