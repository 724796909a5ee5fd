# Shorthands for the README's commands; each works without make too (see README.md).
VENV ?= .venv

.PHONY: demo test lint bench

demo:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[example]' && $(VENV)/bin/python examples/digits/run_demo.py

test:
	(command -v chromium || ! command -v apt-get || [ "$$(id -u)" != 0 ] || (apt-get update -q && apt-get install -y -q chromium chromium-driver)) && python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]' && $(VENV)/bin/python -m pytest

lint:
	$(VENV)/bin/ruff check registry engine client tests
	$(VENV)/bin/ruff format --check registry engine client tests
	$(VENV)/bin/mypy registry engine client
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_lint.py -k mypy_with_real_types

bench:
	$(VENV)/bin/python benchmarks/bench_registry.py
	$(VENV)/bin/python benchmarks/bench_cli.py
	$(VENV)/bin/python benchmarks/bench_engine.py
	$(VENV)/bin/python benchmarks/bench_sweep.py
	$(VENV)/bin/python benchmarks/bench_environments.py
