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
	.venv/bin/ruff check agent_assist tests scripts bench
	.venv/bin/mypy

# Speed and accuracy of recognition -> BENCHMARKS.md (~12 min on 2 cores; not part of test).
# BENCH_ARGS="--device cuda --compute-type float16 --batch-size 8" on a GPU machine.
bench: setup
	.venv/bin/python -m bench $(BENCH_ARGS)

test: setup-test lint
	.venv/bin/python -m pytest -q

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
