# Every command a newcomer needs. Nothing is assumed beyond python3.11, pip and make:
# `install` builds .venv, installs the package with its extras and generates the gRPC stubs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard proto/lightningstor/v1/*.proto)
STUBS  := lightningstor/v1/.generated
DATA   ?= ./var/lightningstor
PYTEST_ARGS ?=

.PHONY: install run test lint proto bench soak clean

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
	$(BIN)/lightningstor serve --data-dir $(DATA)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.large_object
	$(BIN)/python -m bench.listing
	$(BIN)/python -m bench.multipart

# The long crash-torture mode: 500 SIGKILL rounds (make test runs 20).
soak: install
	$(BIN)/python -m tests.torture --rounds 500

clean:
	rm -rf $(VENV) build dist *.egg-info lightningstor/v1/*_pb2*.py* $(STUBS)
