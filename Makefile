# The two commands of the README: `make repro` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export TF_ENABLE_ONEDNN_OPTS := 1

.PHONY: install repro test test-cluster readme docs mutation benchmark benchmark-ease benchmark-elsa benchmark-scale tiny-reference

$(INSTALLED): pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

install: $(INSTALLED)

## Run the whole study on the built-in dataset, copy the results table into the README, print it.
## dvc.yaml is written from dvc.template.yaml and params.yaml's grid first (python -m stages.graph).
repro: $(INSTALLED)
	$(BIN)/python -m stages.graph
	dvc repro
	@$(BIN)/python scripts/readme_results.py
	@cat metrics/results.md

## Check the tree (ruff's formatting and lint, mypy on audiorec/), then run the test suite (includes real `dvc repro` runs on the tiny dataset).
## The tests on a local Ray cluster are `make test-cluster`: CI runs both.
test: $(INSTALLED)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25 -m "not cluster"

## The pipeline on a local Ray cluster (tests/test_cluster.py's Ray tests), alone: about 3 minutes.
## Beside the rest of the suite a Ray node could take longer to register than Ray waits (30 s).
test-cluster: $(INSTALLED)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=5 -m cluster

## Copy metrics/results.md into the README between its results markers (after `make repro`; commit both).
readme:
	python3 scripts/readme_results.py

## Build the documentation site (docs/, mkdocs.yml) into site/; --strict fails on a broken link or a page missing from the nav.
## (NO_MKDOCS_2_WARNING hides Material for MkDocs' end-of-life banner: supported until May 2027, Zensical is its successor.)
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Mutation score of the core library (mutmut, fast unit tests only; long, not in CI; docs/testing.md).
## MODULES=audiorec/metrics.py narrows it; TESTS= the test files to run; JOBS= mutants at once; BEFORE=<rev> scores that revision's tests.
MODULES ?=
TESTS ?=
JOBS ?= 2
mutation: $(INSTALLED)
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/pip install -q "mutmut==3.8.1"
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/mutation.py --max-children $(JOBS) $(if $(MODULES),--modules $(MODULES)) $(if $(TESTS),--tests $(TESTS)) $(if $(BEFORE),--tests-from $(BEFORE))

## Refresh the tiny run's reference metrics that CI checks (commit the result with the change that moved them).
tiny-reference: $(INSTALLED)
	$(BIN)/python scripts/tiny_reference.py

## Per-stage wall time of a from-scratch run; musicnn fast path vs the library; Shallow training throughput; BERT4Rec's softmax loss at Music4All's catalogue; batched vs single extraction.
benchmark: $(INSTALLED)
	$(BIN)/python benchmarks/repro_time.py
	$(BIN)/python benchmarks/musicnn_speed.py
	$(BIN)/python benchmarks/shallow_throughput.py
	$(BIN)/python benchmarks/softmax_loss.py
	$(BIN)/python benchmarks/shallow_scoring.py
	$(BIN)/python benchmarks/extract_speed.py --tracks 96

## EASE peak memory and time: in-place Cholesky vs numpy.linalg.inv at 10,000 tracks, then 24,214 and Music4All's 56,512 (~14 GiB, 15+ min).
benchmark-ease: $(INSTALLED)
	$(BIN)/python benchmarks/ease_memory.py

## ELSA fitted at Music4All scale (56,512 tracks, ~17k users, ~5M pairs): fit time and peak memory vs EASE's requirement (about an hour on 2 cores).
benchmark-elsa: $(INSTALLED)
	$(BIN)/python benchmarks/elsa_scale.py

## Every stage on a synthetic log of Music4All-Onion's shape: wall time and peak memory next to floors (docs/scale.md).
SCALE_ARGS ?= --scale 1 --widths 200 4800
benchmark-scale: $(INSTALLED)
	$(BIN)/python benchmarks/music4all_scale.py $(SCALE_ARGS)
