# Two entry points that work on a fresh machine: `make demo` and `make test`.
# Each creates its own virtualenv (.venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= $(abspath ../shared/data)
# tiktoken looks for its ranks under the sha1 of their URL; seed that offline.
TIKTOKEN_CACHE_DIR ?= $(abspath .cache/tiktoken)
TIKTOKEN_KEY := 0ea1e91bbb3a60f729a8dc8f777fd2fc07cd8df4
export TIKTOKEN_CACHE_DIR
export PREFECT_HOME ?= $(abspath .prefect)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint clean venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

$(TIKTOKEN_CACHE_DIR)/$(TIKTOKEN_KEY):
	mkdir -p $(TIKTOKEN_CACHE_DIR)
	if [ -f $(SHARED_DATA)/tokenizer/r50k_base.tiktoken ]; then \
	  cp $(SHARED_DATA)/tokenizer/r50k_base.tiktoken $@; fi

demo: $(BIN)/.installed $(TIKTOKEN_CACHE_DIR)/$(TIKTOKEN_KEY)
	$(BIN)/webtext demo --out demo-out

test: $(BIN)/.installed $(TIKTOKEN_CACHE_DIR)/$(TIKTOKEN_KEY)
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check pipeline flows schemas demo tests benchmarks
	$(BIN)/ruff format --check pipeline flows schemas demo tests benchmarks
	$(BIN)/mypy pipeline schemas demo

clean:
	rm -rf demo-out .prefect .cache
