#!/usr/bin/env bash
# Installs Prometheus and promtool, which the tests run (`promtool test rules` on the alert
# rules, a real Prometheus scraping a stack), from Debian's `prometheus` package when they are
# not on PATH already, idempotently. Prints the absolute paths it settled on.
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    cat >&2 <<MSG
ops/prometheus/install.sh: prometheus and promtool are not on PATH, and only root on Debian or
Ubuntu can install them here (apt-get install prometheus). Install Prometheus 2.x yourself
(https://prometheus.io/download/) and put both binaries on PATH.
MSG
    exit 1
  fi
  # The tests never use the service the package may start (under systemd): they run their own
  # servers on free ports.
  install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
      >/dev/null
  }
  install || { apt-get update -qq && install; }
fi
echo "promtool=$(command -v promtool)"
echo "prometheus=$(command -v prometheus)"
