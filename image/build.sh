#!/usr/bin/env bash
# `make image`: build knscale's container image with no container registry and no engine.
#
#   1. the root filesystem: mmdebstrap (Debian bookworm, variant essential) with the pinned packages of
#      image/debian-packages.txt, plus the nonroot user 65532; cached by a hash of that list and this
#      recipe, in ~/.cache/knscale-image (KNSCALE_IMAGE_CACHE);
#   2. the application tree: image/install-app.sh (shared with the Dockerfile) installs the knscale
#      wheel and requirements/runtime.lock with --require-hashes from the wheelhouse (build/wheelhouse,
#      `make wheelhouse`) into /usr/local/lib/python3.11/dist-packages, plus a /usr/local/bin/knscale launcher;
#   3. image/oci.py writes the OCI image layout build/image/oci (tag = the project version) and
#      build/image/DIGEST; build/image/packages.lock lists every Debian package in the image.
#
# Needs root (mmdebstrap's root mode) and the project venv (make venv). Prints the digest last.
set -euo pipefail

RECIPE=1  # bump when the mmdebstrap invocation below changes
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build/image
PY=${KNSCALE_IMAGE_PYTHON:-$ROOT/.venv/bin/python}
WHEELHOUSE=$ROOT/build/wheelhouse
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
NICE=(nice -n 10)
log() { printf 'image/build.sh: %s\n' "$*" >&2; }
T0=$(date +%s.%N)
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }

command -v mmdebstrap >/dev/null || { log "ERROR: mmdebstrap is missing (apt-get install mmdebstrap)"; exit 1; }
[[ -x $PY ]] || { log "ERROR: no $PY: run make venv"; exit 1; }
[[ -f $WHEELHOUSE/.complete ]] || { log "ERROR: no wheelhouse: run make wheelhouse"; exit 1; }
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/image/debian-packages.txt")
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
# Every entry dated at the last commit (reproducible for a given checkout).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}

# --- 1. Debian rootfs (cached) ------------------------------------------------------------------------
KEY=$({ echo "recipe=$RECIPE suite=$SUITE mmdebstrap=$(dpkg-query -W -f='${Version}' mmdebstrap)"
  printf '%s\n' "${MIRRORS[@]}" "${PACKAGES[@]}"; } | sha256sum | cut -c1-16)
CACHE=${KNSCALE_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knscale-image}
ROOTFS=$CACHE/rootfs-$KEY.tar
mkdir -p "$CACHE" "$OUT"
exec 9>"$CACHE/.lock"
flock 9
if [[ -f $ROOTFS ]]; then
  log "rootfs: cache hit $ROOTFS"
else
  log "rootfs: mmdebstrap $SUITE with ${PACKAGES[*]} (cold: about a minute or two)"
  T1=$(date +%s.%N)
  # No docs, man pages or locales (licences stay: /usr/share/doc/*/copyright). The nonroot user is
  # 65532, as in the Deployments; the packages list is read from the finished dpkg database.
  "${NICE[@]}" mmdebstrap --variant=essential --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='echo "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin" >>"$1/etc/passwd"' \
    --customize-hook='echo "nonroot:x:65532:" >>"$1/etc/group"' \
    --customize-hook="dpkg-query --admindir=\"\$1/var/lib/dpkg\" -W -f='\${Package}=\${Version}\n' >\"$ROOTFS.packages\"" \
    --customize-hook='rm -f "$1/etc/machine-id" "$1/var/lib/dbus/machine-id"; : >"$1/etc/machine-id"' \
    "$SUITE" "$CACHE/partial-$KEY.tar" "${MIRRORS[@]}" >"$CACHE/mmdebstrap-$KEY.log" 2>&1 ||
    { tail -20 "$CACHE/mmdebstrap-$KEY.log" >&2; log "ERROR: mmdebstrap failed"; exit 1; }
  mv "$CACHE/partial-$KEY.tar" "$ROOTFS"  # the name must end in .tar: mmdebstrap picks its output format from it
  log "rootfs: built in $(since "$T1") s"
fi
sort "$ROOTFS.packages" >"$OUT/packages.lock"

# --- 2. application tree ------------------------------------------------------------------------------
T2=$(date +%s.%N)
APP=$OUT/app
rm -rf "$APP" "$OUT/dist"
"${NICE[@]}" "$PY" -m build --wheel --no-isolation --skip-dependency-check --outdir "$OUT/dist" "$ROOT" >"$OUT/wheel.log" 2>&1 ||
  { tail -20 "$OUT/wheel.log" >&2; exit 1; }
WHEEL=$(ls "$OUT"/dist/knscale-*.whl)
"${NICE[@]}" bash "$ROOT/image/install-app.sh" "$PY" "$APP" "$WHEEL" --no-index --find-links "$WHEELHOUSE"
log "app: knscale $VERSION and $(grep -c '^[a-z]' "$ROOT/requirements/runtime.lock") locked packages in $(since "$T2") s"

# --- 3. OCI layout ------------------------------------------------------------------------------------
T3=$(date +%s.%N)
DIGEST=$("${NICE[@]}" "$PY" "$ROOT/image/oci.py" --base "$ROOTFS" --app "$APP" --out "$OUT/oci" \
  --epoch "$SOURCE_DATE_EPOCH" --ref "$VERSION" --version "$VERSION")
SIZE=$(du -sb "$OUT/oci/blobs" | cut -f1)
log "oci: $OUT/oci:$VERSION in $(since "$T3") s, $((SIZE / 1048576)) MiB compressed"
echo "$(date -u +%FT%TZ) $DIGEST total=$(since "$T0")s size=$SIZE rootfs=$KEY" >>"$OUT/BUILD-TIMES"
log "done in $(since "$T0") s: digest $DIGEST (build/image/DIGEST)"
echo "$DIGEST"
