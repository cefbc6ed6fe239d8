# realityloop: `make demo` bakes a project and runs its pipeline; `make test` tests the template.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo
DEMO_SLUG := reality-loop-project
LOCK := {{cookiecutter.project_slug}}/requirements.lock
export DVC_NO_ANALYTICS := 1

.PHONY: help demo test test-fast test-plain lint bench bench-smoke bench-tools venv clean lock

# Each target's line ends with `## what it does`; `make help` lists them.
help: ## this list of targets
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV)/.installed ## .venv/ with the pinned tools (uv; INSTALLER=pip for pip)

# uv (from PyPI, pinned) installs the pinned set in seconds where pip takes about two
# minutes; `make INSTALLER=pip ...` installs with pip instead.
INSTALLER ?= uv
UV_VERSION := $(shell sed -n 's/^uv==//p' $(LOCK))

$(VENV)/.installed: requirements.txt $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),pip)
	$(BIN)/python -m pip install --quiet -r requirements.txt
else
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
endif
	touch $@

demo: venv ## bake a project with the default answers into demo/ and run its pipeline
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/cookiecutter --no-input $(CURDIR) -o $(DEMO_DIR)
	cd $(DEMO_DIR)/$(DEMO_SLUG) && ../../$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	cd $(DEMO_DIR)/$(DEMO_SLUG) && PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	@echo
	@echo "Project: $(CURDIR)/$(DEMO_DIR)/$(DEMO_SLUG)"
	@$(BIN)/python scripts/headline.py $(DEMO_DIR)/$(DEMO_SLUG)
	@echo "All metrics (per class, per group, recent): cd $(DEMO_DIR)/$(DEMO_SLUG) && dvc metrics show"
	@echo "Next: cd $(DEMO_DIR)/$(DEMO_SLUG) && source $(CURDIR)/$(BIN)/activate && dvc exp run -S model=random_forest && python -m $(subst -,_,$(DEMO_SLUG)) compare"

# The full suite: every test, slow ones included.
test: venv ## the template's whole test suite, slow tier included
	$(BIN)/python -m pytest -n 2 --dist loadscope --durations=15 tests

# Only the fast tier (no pipeline runs in baked projects).
test-fast: venv ## the fast tier only (no pipeline runs in baked projects)
	$(BIN)/python -m pytest -n 2 --dist loadscope -m "not slow" tests

# The pipeline and fault tests again with every stage a plain process: make test runs
# them with the bakes' stage preloader on (the default); CI runs both.
test-plain: venv ## the pipeline and fault tests with REALITYLOOP_PRELOAD=0
	REALITYLOOP_PRELOAD=0 $(BIN)/python -m pytest -n 2 --dist loadscope tests/test_pipeline.py tests/test_faults.py

lint: venv ## ruff check and format check of local_extensions.py, hooks, tests, benchmarks, scripts
	$(BIN)/ruff check local_extensions.py hooks tests benchmarks scripts
	$(BIN)/ruff format --check local_extensions.py hooks tests benchmarks scripts

clean: ## remove demo/ and .pytest_cache
	rm -rf $(DEMO_DIR) .pytest_cache

# After editing the baked pyproject.toml: its uv.lock again (the rest stays where it was;
# UPGRADE=1 moves every package to its newest version) and requirements.lock exported
# from it. Needs PyPI. tests/test_lock.py fails while they are out of sync.
lock: venv ## uv.lock and requirements.lock of the baked project again (UPGRADE=1: newest)
	$(BIN)/python scripts/lock.py $(if $(UPGRADE),--upgrade)

# Wall times of the everyday commands, server latency and throughput (prints figures; not a test).
# everyday.py first: on the built-in data, dvc repro -f, an experiment and the no-op against
# the one-process floor, stage preloader on and off (median of 3, per stage too);
# scale.py: one table of bake, built-in DVC vs one-process floor, and synthetic sizes;
# shapes.py: each table shape (long, wide, categorical, text, rare) end to end at 1e6 rows
# against the 5 min / 3 GB budgets. All three exit 1 when a run failed or timed out, after their
# table; the `-` lets the other benchmarks run anyway.
# imports.py: each stage's import seconds (-X importtime) beside its wall time;
# dask_engine.py: the data stages on both engines at 1e7 rows; ssh_remote.py: dvc push/pull
# of 1 GiB to an SSH remote on loopback; serving_load.py last: it loads the server with wrk.
bench: venv bench-tools ## wall times, memory, remote and server throughput (figures, not tests)
	-$(BIN)/python benchmarks/everyday.py
	-$(BIN)/python benchmarks/scale.py
	-$(BIN)/python benchmarks/shapes.py
	$(BIN)/python benchmarks/pipeline.py --task classification
	$(BIN)/python benchmarks/pipeline.py --task regression
	$(BIN)/python benchmarks/imports.py --task classification
	$(BIN)/python benchmarks/serving.py --task classification
	$(BIN)/python benchmarks/walkthrough.py --task classification
	$(BIN)/python benchmarks/dask_engine.py
	$(BIN)/python benchmarks/ssh_remote.py
	$(BIN)/python benchmarks/serving_load.py --task classification

# Every benchmark once with tiny settings (scripts/bench_smoke.py holds them): fails when one
# exits non-zero or prints no figures. .ci/run runs it after `make test`.
bench-smoke: venv bench-tools ## every benchmark once with tiny settings (fails if one breaks)
	$(BIN)/python scripts/bench_smoke.py

# Debian's openssh-server (ssh_remote.py) and wrk (serving_load.py): installed when run as
# root; otherwise one line says how, and the benchmarks that need them say they did not run.
bench-tools: ## openssh-server and wrk for the benchmarks (apt-get when root)
	@need=""; [ -x /usr/sbin/sshd ] || need="openssh-server"; \
	command -v wrk >/dev/null || need="$$need wrk"; \
	if [ -n "$$need" ]; then if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$need; \
	else echo "missing:$$need: sudo apt-get install$$need, then make again" >&2; fi; fi
