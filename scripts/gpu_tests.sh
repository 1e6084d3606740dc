#!/usr/bin/env bash
# The GPU tests (tests/gpu), on a machine with a CUDA GPU and, for the TensorRT tests, TensorRT >= 10
# (`pip install 'beam-tensorrt[gpu,test,export]'`). Installs nothing itself; tests whose framework or
# GPU is missing are skipped with the reason. SST-2 for the pipeline test: SST2_DIR (default
# ../shared/data/sst2). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/provider${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m pytest -q -rs -p no:cacheprovider tests/gpu "$@"
