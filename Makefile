# Every command a newcomer needs. Nothing is assumed beyond python3.11, pip and make:
# `install` builds .venv, installs the package with its extras and generates the gRPC stubs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard proto/lightningstor/v1/*.proto)
STUBS  := lightningstor/v1/.generated
DATA   ?= ./var/lightningstor
# The three listeners of `make run` (make run S3_LISTEN=127.0.0.1:9100 when 9000 is taken).
S3_LISTEN      ?= 127.0.0.1:9000
GRPC_LISTEN    ?= 127.0.0.1:50051
METRICS_LISTEN ?= 127.0.0.1:9101
# Test files run in parallel, one per core (pytest-xdist); PYTEST_ARGS= runs them in one.
PYTEST_ARGS ?= -n auto --dist loadfile
BENCH_ARGS ?=
# The S3 conformance kit (ceph/s3-tests, pinned, with selections and a runner); see
# tests/conformance/run.py for where to get it when it is not here.
CONFORMANCE ?= ../shared/conformance
SELECT ?= core

.PHONY: install run test lint proto bench soak clean conformance conformance-ratchet

install: $(STAMP) $(STUBS)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@

# Stubs are generated from proto/, never edited; they are git-ignored and rebuilt on change.
$(STUBS): $(PROTOS) $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto \
		--python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch $@

proto: $(STAMP)
	rm -f $(STUBS)
	$(MAKE) $(STUBS)

run: install
	$(BIN)/lightningstor serve --data-dir $(DATA) --s3-listen $(S3_LISTEN) \
		--grpc-listen $(GRPC_LISTEN) --metrics-listen '$(METRICS_LISTEN)'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ceph/s3-tests against a throwaway daemon: SELECT=core (default), extended or all; a JUnit
# report lands in var/conformance/junit.xml.
conformance: install
	$(BIN)/python -m tests.conformance.run --suite $(CONFORMANCE) --select $(SELECT)

# What CI gates on: every test listed in tests/conformance/passing.txt must pass (core and
# extended in one run); tests that newly pass are named, and UPDATE=1 adds them to the list.
conformance-ratchet: install
	$(BIN)/python -m tests.conformance.run --suite $(CONFORMANCE) --select core \
		--select extended --ratchet tests/conformance/passing.txt $(if $(UPDATE),--update)

# Every workload of the performance issue, one table, JSON in bench/results/latest.json.
# Needs wrk (Debian: apt-get install wrk); the bench extra brings moto and py-spy.
bench: install $(VENV)/.bench
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m bench $(BENCH_ARGS)

$(VENV)/.bench: pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev,bench]'
	touch $@

# The long modes: 500 SIGKILL rounds of crash torture (make test runs 20), and thousands of
# mutated signed requests for the signature-binding property (make test runs 250).
soak: install
	$(BIN)/python -m tests.torture --rounds 500
	LIGHTNINGSTOR_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/s3/test_signature_property.py

clean:
	rm -rf $(VENV) build dist *.egg-info lightningstor/v1/*_pb2*.py* $(STUBS)
