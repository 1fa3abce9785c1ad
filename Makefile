# Quick start: `make demo` (search, train, evaluate, export, benchmark on the bundled data)
# and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/demo
DEMO_VERSION ?= 1

.PHONY: install demo test test-slow bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==26.3

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[cpu,onnx,tfds,test]"

demo: install
	$(BIN)/python bin/search --flagfile=configs/demo.cfg --run_dir=$(RUN_DIR)
	$(BIN)/python bin/train --flagfile=configs/demo_train.cfg \
	    --genotype=$(RUN_DIR)/genotype.json --run_dir=$(RUN_DIR)/train
	$(BIN)/python bin/evaluate --model=$(RUN_DIR)/train/model.keras --dataset=synthetic \
	    --synthetic_classes=6 --out=$(RUN_DIR)/eval/eval.json
	rm -rf $(RUN_DIR)/saved_models/demo/$(DEMO_VERSION)
	$(BIN)/python bin/export --model=$(RUN_DIR)/train/model.keras --name=demo \
	    --version=$(DEMO_VERSION) --out_dir=$(RUN_DIR)/saved_models
	$(BIN)/python bin/benchmark --compare=$(RUN_DIR)/train/model.keras,$(RUN_DIR)/saved_models/demo/$(DEMO_VERSION),$(RUN_DIR)/saved_models/demo/$(DEMO_VERSION)/model_int8.tflite \
	    --sizes=64x128 --runs=50 --warmup=5 --out=$(RUN_DIR)/bench/bench.json \
	    --markdown=$(RUN_DIR)/bench/bench.md

# The default tier in TEST_WORKERS processes (pytest-xdist; a module's tests share one).
TEST_WORKERS ?= 2

test: install
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/search_step.py

clean:
	rm -rf runs build *.egg-info
