#!/usr/bin/env bash
# Build the helm CLI (helm.sh/helm/v4/cmd/helm) from the Go module proxy, once per pinned version, into a
# cache directory outside the repository. The version is pinned by tools/helm/go.mod; every module's hash
# by tools/helm/go.sum (checked against the Go checksum database when it was written).
#
#   bash tools/helm/build.sh           build if missing; print the path of the helm binary last
#   bash tools/helm/build.sh --print   print the path the binary has for the current pins; build nothing
#   bash tools/helm/build.sh --regen   rewrite go.sum after a version bump in go.mod (commit both)
#
# Environment: KNSCALE_HELM_CACHE (default ~/.cache/knscale-helm), GOCACHE/GOMODCACHE as usual.
set -euo pipefail

RECIPE=1  # bump when a build flag below changes
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Never fetch a toolchain; a static binary; -mod=readonly: go.sum is the pin, a build never rewrites it.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
log() { printf 'tools/helm/build.sh: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "ERROR: go is not on PATH (Go 1.26 or newer)"; exit 1; }
VERSION=$(cd "$HERE" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
KEY=$({ echo "recipe=$RECIPE go=$(go env GOVERSION)"; cat "$HERE/go.mod" "$HERE/go.sum"; } | sha256sum | cut -c1-16)
CACHE_ROOT=${KNSCALE_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knscale-helm}
DIR=$CACHE_ROOT/helm-$VERSION-$KEY

case "${1:-}" in
  --print) echo "$DIR/helm"; exit 0 ;;
  --regen) (cd "$HERE" && GOFLAGS=-mod=mod nice -n 10 go mod tidy); log "rewrote go.mod/go.sum: commit both"; exit 0 ;;
  "") ;;
  *) log "ERROR: unknown argument $1"; exit 2 ;;
esac

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
flock 9  # a second build waits for the first instead of racing it
if [[ -x $DIR/helm ]]; then
  log "warm: $DIR/helm"
  echo "$DIR/helm"
  exit 0
fi
mkdir -p "$DIR"
T0=$(date +%s)
log "cold: building helm $VERSION into $DIR (nice 10; a few minutes on two busy cores)"
# What helm's own Makefile stamps for a release build, so `helm version` reports the pinned tag.
(cd "$HERE" && nice -n 10 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$VERSION -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$DIR/helm.tmp" helm.sh/helm/v4/cmd/helm)
mv "$DIR/helm.tmp" "$DIR/helm"
echo "helm $VERSION built in $(( $(date +%s) - T0 )) s with $(go env GOVERSION), $(date -u +%FT%TZ)" >"$DIR/BUILD-INFO"
log "cold: done in $(( $(date +%s) - T0 )) s"
echo "$DIR/helm"
