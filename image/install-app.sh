#!/usr/bin/env bash
# The application layer of the knscale image, shared by `make image` (image/build.sh) and the
# Dockerfile so both install exactly the same thing:
#
#   image/install-app.sh PYTHON DEST WHEEL [PIP-OPTION...]
#
# installs WHEEL and requirements/runtime.lock (every hash checked, wheels only) into
# DEST/usr/local/lib/python3.11/dist-packages, byte-compiles it (the root filesystem is read-only at
# run time) and writes the DEST/usr/local/bin/knscale launcher for Debian's /usr/bin/python3.11.
# PIP-OPTIONs pick the source: `--no-index --find-links build/wheelhouse` offline, nothing for PyPI.
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: $0 PYTHON DEST WHEEL [PIP-OPTION...]" >&2; exit 2; }
PY=$1 DEST=$2 WHEEL=$3
shift 3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SITE=$DEST/usr/local/lib/python3.11/dist-packages
REQS=$(mktemp)
trap 'rm -f "$REQS"' EXIT
# The wheel joins the lock with its own hash, so one --require-hashes install covers everything.
{ cat "$ROOT/requirements/runtime.lock"
  echo "knscale @ file://$(realpath "$WHEEL") --hash=sha256:$(sha256sum "$WHEEL" | cut -c1-64)"; } >"$REQS"
"$PY" -m pip install -q --only-binary=:all: --require-hashes --no-compile --no-warn-script-location \
  --disable-pip-version-check --target "$SITE" "$@" -r "$REQS"
rm -rf "$SITE/bin"  # the dependencies' console scripts (uvicorn, ...): unused, and they name the build's python
# unchecked-hash pycs carry no source mtime: the same tree compiles to the same bytes.
"$PY" -m compileall -q -j 2 --invalidation-mode unchecked-hash -d /usr/local/lib/python3.11/dist-packages "$SITE" >/dev/null
mkdir -p "$DEST/usr/local/bin"
# -s: no user site; -P: no script directory on sys.path.
cat >"$DEST/usr/local/bin/knscale" <<'LAUNCHER'
#!/usr/bin/python3.11 -sP
import sys

from knscale.cli import main

sys.exit(main())
LAUNCHER
chmod 0755 "$DEST/usr/local/bin/knscale"
