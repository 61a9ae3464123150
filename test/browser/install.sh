#!/usr/bin/env bash
# Installs Chromium, which the browser tests (test/browser) drive through playwright-core, from
# Debian's `chromium` package when it is not on PATH already, idempotently: Playwright's own
# browser downloads are not reachable from CI. fonts-liberation gives pages and their
# screenshots the metric-compatible Arial and Times a browser expects. Prints the path it
# settled on.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    cat >&2 <<MSG
test/browser/install.sh: chromium is not on PATH, and only root on Debian or Ubuntu can install
it here (apt-get install chromium). Install Chromium yourself and put it on PATH as chromium.
MSG
    exit 1
  fi
  install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
      fonts-liberation >/dev/null
  }
  install || { apt-get update -qq && install; }
fi
echo "chromium=$(command -v chromium)"
