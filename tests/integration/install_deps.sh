#!/usr/bin/env bash
# Installs the external servers the integration suite runs against (idempotent).
#
#   prometheus  Debian's package (bookworm: 2.42.x) — tests/integration/test_prometheus_collector.py
#               starts it on a free loopback port; the package's own systemd service is not used.
#
# Safe to run repeatedly: does nothing when every binary is already on PATH. Needs root (or sudo)
# only when something is missing. Set KNSCALE_SKIP_APT_UPDATE=1 to skip `apt-get update`.
set -euo pipefail

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_deps: already installed: prometheus ($(prometheus --version 2>&1 | head -n1))"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_deps: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${KNSCALE_SKIP_APT_UPDATE:-0}" != "1" ]; then
    $SUDO apt-get update -q
fi
# --no-install-recommends: the package recommends node-exporter and friends, which we do not run.
# policy-rc.d keeps the package's postinst from starting a system-wide prometheus service
# (on systemd-less CI containers invoke-rc.d would fail or start a stray daemon on :9090).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
prometheus --version 2>&1 | head -n1
