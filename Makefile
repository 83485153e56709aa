# The README names these targets. `make demo` and `make test` set everything up first.
.PHONY: setup setup-test demo serve test lint models bench bench-cluster soak clean eval train-signal-head

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

# Scale-out: finals per second, what worker_batch costs, then dense calls at real pace
# served at p95 <= 1.5 s, in-process vs 1 and 2 workers of one thread (and 1 pinned to
# its own core) over a private Redis -> bench/scale_out.md
# (~25 min on 2 cores; needs redis-server, `make setup-test`).
bench-cluster: setup
	.venv/bin/python -m bench.scale_out $(BENCH_CLUSTER_ARGS)

# A working floor against a real server process (30 min; not part of test): 8 calls
# looping at real pace, a wall, a reconnecting console, a source that drops and resumes;
# checks events sent = stored = received and prints memory, task and file figures.
# SOAK_ARGS="--minutes 2" for a short proof, "--mode audio" through recognition.
soak: setup-test
	.venv/bin/python -m bench.soak $(SOAK_ARGS)

test: setup-test lint
	.venv/bin/python -m pytest -q

# Signal detection: per-signal precision/recall/F1, false alarms and p95 latency on the
# third-party set (../shared/eval), the written ja/en sets and their ASR versions (eval/).
# Needs the encoder installed (`make models`).
eval:
	.venv/bin/python -m agent_assist.nlp.evaluation --write eval/RESULTS.md

# Retrain the small classifier head (models/signal_head.onnx) from data/intents/: the
# generated copies of the hand-written phrases are rewritten first (fixed seed, so they
# only change when the seeds do) and near-copies of evaluation rows are listed.
train-signal-head:
	.venv/bin/python scripts/make_phrase_variants.py
	.venv/bin/python scripts/check_phrase_leaks.py
	.venv/bin/python scripts/train_signal_head.py

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
