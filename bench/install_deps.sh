#!/bin/sh
# Debian packages the benchmarks need. Idempotent: installs only what is missing, and runs
# `apt-get update` at most once per invocation (only when something must be installed).
set -eu

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v taskset >/dev/null 2>&1 || missing="$missing util-linux"

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "bench/install_deps.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi

echo "bench/install_deps.sh: installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
