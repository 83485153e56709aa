# The README names these targets. `make demo` and `make test` set everything up first.
.PHONY: setup setup-test demo serve test lint models bench clean

setup:
	scripts/setup.sh run

setup-test:
	scripts/setup.sh test

demo: setup
	.venv/bin/agent-assist demo

serve: setup
	.venv/bin/agent-assist serve

models: setup

lint:
	.venv/bin/ruff check agent_assist tests scripts
	.venv/bin/mypy

test: setup-test lint
	.venv/bin/python -m pytest -q

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
