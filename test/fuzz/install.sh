#!/usr/bin/env bash
# Installs Schemathesis, the API fuzzer of test/api/fuzz.test.ts, pinned, into .local/fuzz:
# the fuzzer and the libraries that decide which requests it generates (Hypothesis) and how it
# validates answers, so a seed gives the same requests on every machine.
# Prints the absolute path of the `st` executable.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
HYPOTHESIS_VERSION=6.170.15
JSONSCHEMA_RS_VERSION=0.60.3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix="$root/.local/fuzz"
bash "$root/scripts/install-pypi-tools.sh" "$prefix" \
  "schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION" \
  "jsonschema_rs==$JSONSCHEMA_RS_VERSION"

if [ ! -x "$prefix/venv/bin/st" ]; then
  echo "test/fuzz/install.sh: expected an executable at $prefix/venv/bin/st; delete $prefix and run again" >&2
  exit 1
fi
echo "schemathesis=$prefix/venv/bin/st"
