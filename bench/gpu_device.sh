#!/usr/bin/env bash
# The GPU benchmark as one device call: installs the wheels carried in .whl/ (PyAV: the GPU machine's image
# has torch, transformers, pyarrow, pillow and sentencepiece but no PyAV), then runs bench/gpu.py on every
# model within its budget, keeping the log in $OUT. `make gpu-wheels` fills .whl/ beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
python3 bench/gpu.py --work /tmp/vidscore-bench "$@" 2>&1 | tee "${OUT:-/tmp}/gpu.log"
