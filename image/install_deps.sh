#!/usr/bin/env bash
# Debian tools `make image` and `make image-test` use (idempotent; nothing happens when all are there):
#   mmdebstrap  builds the root filesystem from Debian packages
#   podman      runs the built image in image-test (with runc: crun refuses hybrid cgroup hosts)
# Needs root (or sudo) only when something is missing. KNSCALE_SKIP_APT_UPDATE=1 skips apt-get update.
set -euo pipefail
missing=()
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "image/install_deps.sh: already installed: mmdebstrap podman runc"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "image/install_deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
[ "${KNSCALE_SKIP_APT_UPDATE:-0}" = "1" ] || $SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" uidmap
