#!/usr/bin/env bash
# Build the e2e control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# kwok, kn) from Go modules, and extract the Knative Serving and KEDA CRDs from their module zips,
# once per version set, into a cache directory outside the repository.
#
#   bash tests/e2e/build.sh              build what is missing; print the cache directory last
#   bash tests/e2e/build.sh --print-dir  print the cache directory for the current versions; build nothing
#   bash tests/e2e/build.sh --regen      regenerate tests/e2e/k8sbin/go.mod + go.sum from versions.env
#
# Environment: KNSCALE_E2E_CACHE (default ~/.cache/knscale-e2e), GOCACHE/GOMODCACHE as usual.
# Every input that changes a binary (versions.env, the wrapper go.mod/go.sum, the Go version, RECIPE below)
# is hashed into the cache key, so a version bump builds into a fresh directory and a rerun is a cache hit.
set -euo pipefail

# Bump when a build flag below changes, so existing caches are not reused for a different recipe.
RECIPE=1

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODDIR=$HERE/k8sbin
set -a
# shellcheck source=versions.env
. "$HERE/versions.env"
set +a

# Never fetch a toolchain; static binaries like the upstream release builds; no VCS stamping (the
# wrapper lives inside knscale's git tree, whose state says nothing about these binaries).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
NICE=(nice -n 10)  # the machines' two cores are shared: builds yield to interactive work

# The binaries this harness provides, as name=package. Order = build order (kube-apiserver first: it
# compiles most of the shared Kubernetes packages, the others then mostly link).
TOOLS=(
  "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl=k8s.io/kubernetes/cmd/kubectl"
  "etcd=go.etcd.io/etcd/server/v3"
  "kwok=sigs.k8s.io/kwok/cmd/kwok"
  "kn=knative.dev/client/cmd/kn"
  # Ours (tests/e2e/k8sbin/cmd/statmarshal): a queue-proxy Stat marshalled by Knative Serving's Go code.
  "stat-marshal=knscale.test/e2e/k8sbin/cmd/statmarshal"
)
# Knative Serving and KEDA, each in a wrapper module of its own (tests/e2e/knative, tests/e2e/keda):
# they are built against other k8s.io versions than Kubernetes v1.36 (Knative: v0.35.x; KEDA pins
# v0.35.5 and controller-runtime v0.23.3 through its own replace block, which only a main module can
# apply, so build.sh copies that block into tests/e2e/keda/go.mod). Entries: binary=module-dir:package.
EXTRA_TOOLS=(
  "knative-controller=knative:knative.dev/serving/cmd/controller"
  "knative-webhook=knative:knative.dev/serving/cmd/webhook"
  "knative-autoscaler-hpa=knative:knative.dev/serving/cmd/autoscaler-hpa"
  "keda-operator=keda:github.com/kedacore/keda/v2/cmd/operator"
  "keda-webhooks=keda:github.com/kedacore/keda/v2/cmd/webhooks"
  "keda-adapter=keda:github.com/kedacore/keda/v2/cmd/adapter"
)

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

command -v go >/dev/null || die "go is not on PATH (Go 1.26 or newer is needed)"
GOVERSION=$(go env GOVERSION)

# Where `go mod download` put a module (runs outside any module so no go.mod/go.sum is touched; the
# checksum database still verifies every zip). Prints the JSON object.
moddownload() { (cd / && GOFLAGS= "${NICE[@]}" go mod download -json "$1"); }
jsonfield() { python3 -c 'import json,sys; d=json.load(sys.stdin); e=d.get("Error"); sys.exit("go mod download: "+e) if e else print(d[sys.argv[1]])' "$1"; }

# --- the wrapper module -------------------------------------------------------------------------------
# The staging modules (k8s.io/api, client-go, ...) are required at v0.0.0 by k8s.io/kubernetes and only
# resolved by its own ./staging replace lines, which do not apply to a consumer. The consumer must pin
# each one to v0.N.P. The list is read from the real go.mod of the chosen k8s.io/kubernetes, never typed.
staging_modules() {
  local gomod
  gomod=$(moddownload "k8s.io/kubernetes@$K8S_VERSION" | jsonfield GoMod)
  sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod" | sort
}

# Exit 0 when go.mod pins exactly what versions.env and the real Kubernetes go.mod ask for.
module_in_sync() {
  [[ -f $MODDIR/go.mod && -f $MODDIR/go.sum ]] || return 1
  local staging
  staging=$(staging_modules)
  MODJSON=$(cd "$MODDIR" && go mod edit -json) STAGING=$staging python3 - <<'PY'
import json, os, sys
mod = json.loads(os.environ["MODJSON"])
staging = os.environ["STAGING"].split()
stg = os.environ["K8S_STAGING_VERSION"]
want_req = {
    "k8s.io/kubernetes": os.environ["K8S_VERSION"],
    "go.etcd.io/etcd/server/v3": os.environ["ETCD_VERSION"],
    "sigs.k8s.io/kwok": os.environ["KWOK_VERSION"],
    "knative.dev/client": os.environ["KN_VERSION"],
}
have_req = {r["Path"]: r["Version"] for r in mod.get("Require") or []}
have_rep = {r["Old"]["Path"]: r["New"].get("Version") for r in mod.get("Replace") or []}
problems = [f"require {p} {v} (go.mod has {have_req.get(p)})" for p, v in want_req.items() if have_req.get(p) != v]
problems += [f"replace {m} => {m} {stg} (go.mod has {have_rep.get(m)})" for m in staging if have_rep.get(m) != stg]
problems += [f"stale replace {m}" for m in have_rep if m not in staging]
for p in problems:
    print(f"build.sh: go.mod out of sync: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

regen_module() {
  local staging goline godebug gomod m t
  gomod=$(moddownload "k8s.io/kubernetes@$K8S_VERSION" | jsonfield GoMod)
  staging=$(staging_modules)
  goline=$(sed -n 's/^go \(.*\)$/\1/p' "$gomod")
  godebug=$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod")
  log "regenerating $MODDIR/go.mod: $(wc -w <<<"$staging") staging modules from k8s.io/kubernetes@$K8S_VERSION (go $goline)"
  mkdir -p "$MODDIR"
  {
    echo "// Code generated by tests/e2e/build.sh --regen from tests/e2e/versions.env and the go.mod of"
    echo "// k8s.io/kubernetes@$K8S_VERSION. DO NOT EDIT: change versions.env and rerun build.sh."
    echo "module knscale.test/e2e/k8sbin"
    echo
    echo "go $goline"
    [[ -n $godebug ]] && { echo; echo "godebug $godebug"; }
    echo
    echo "tool ("
    for t in "${TOOLS[@]}"; do echo "	${t#*=}"; done
    echo ")"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo "	sigs.k8s.io/kwok $KWOK_VERSION"
    echo "	knative.dev/client $KN_VERSION"
    echo ")"
    echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m $K8S_STAGING_VERSION"; done
    echo ")"
  } >"$MODDIR/go.mod"
  rm -f "$MODDIR/go.sum"
  # knative.dev/client v0.42.0 requires a knative.dev/client-pkg pseudo-version that the checksum
  # database does not answer for (404); its hash is taken from the proxy once and then pinned by go.sum.
  (cd "$MODDIR" && GOFLAGS=-mod=mod GONOSUMDB=knative.dev/client-pkg "${NICE[@]}" go mod tidy)
  module_in_sync || die "go mod tidy moved a pinned version (see above): pick versions that agree"
  log "regenerated go.mod and go.sum: commit tests/e2e/k8sbin/go.mod and go.sum"
}

# --- the Knative and KEDA wrapper modules -----------------------------------------------------------
# extra_main_module DIR: the one module (and version) the wrapper in tests/e2e/DIR exists to build.
extra_main_module() {
  case $1 in
    knative) echo "knative.dev/serving $KNATIVE_SERVING_VERSION" ;;
    keda) echo "github.com/kedacore/keda/v2 $KEDA_VERSION" ;;
    *) die "unknown wrapper module $1" ;;
  esac
}

# The replace block the wrapper must carry: KEDA's own (read from its go.mod in the module zip);
# Knative Serving has none. Printed as go.mod lines.
extra_replaces() {
  local gomod
  [[ $1 == keda ]] || return 0
  gomod=$(moddownload "github.com/kedacore/keda/v2@$KEDA_VERSION" | jsonfield GoMod)
  sed -n '/^replace (/,/^)/p' "$gomod" | sed -e '1d' -e '$d' -e '/^[[:space:]]*\/\//d' -e '/^[[:space:]]*$/d'
}

extra_in_sync() {
  local dir=$HERE/$1 main
  [[ -f $dir/go.mod && -f $dir/go.sum ]] || return 1
  main=$(extra_main_module "$1")
  MODJSON=$(cd "$dir" && go mod edit -json) MAIN=$main REPLACES=$(extra_replaces "$1") WHAT=$1 python3 - <<'PY'
import json, os, sys
mod = json.loads(os.environ["MODJSON"])
path, version = os.environ["MAIN"].split()
want_rep = {}
for line in os.environ["REPLACES"].splitlines():
    old, _, new = line.strip().partition(" => ")
    want_rep[old.strip()] = new.split()[1]
have_req = {r["Path"]: r["Version"] for r in mod.get("Require") or []}
have_rep = {r["Old"]["Path"]: r["New"].get("Version") for r in mod.get("Replace") or []}
problems = [] if have_req.get(path) == version else [f"require {path} {version} (go.mod has {have_req.get(path)})"]
problems += [f"replace {m} => {v} (go.mod has {have_rep.get(m)})" for m, v in want_rep.items() if have_rep.get(m) != v]
problems += [f"stale replace {m}" for m in have_rep if m not in want_rep]
for p in problems:
    print(f"build.sh: tests/e2e/{os.environ['WHAT']}/go.mod out of sync: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

regen_extra() {
  local what=$1 dir=$HERE/$1 main t
  main=$(extra_main_module "$what")
  log "regenerating $dir/go.mod for ${main% *}@${main#* }"
  mkdir -p "$dir"
  {
    echo "// Code generated by tests/e2e/build.sh from tests/e2e/versions.env$([[ $what == keda ]] && echo " and KEDA's go.mod (its replace block)")."
    echo "// DO NOT EDIT: change versions.env and rerun build.sh. Only requirements: no upstream code lives here."
    echo "module knscale.test/e2e/$what"
    echo
    echo "go 1.26"
    echo
    echo "tool ("
    for t in "${EXTRA_TOOLS[@]}"; do t=${t#*=}; [[ ${t%%:*} == "$what" ]] && echo "	${t#*:}"; done
    echo ")"
    echo
    echo "require ${main% *} ${main#* }"
    if [[ $what == keda ]]; then
      echo
      echo "replace ("
      extra_replaces keda
      echo ")"
    fi
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
  (cd "$dir" && GOFLAGS=-mod=mod "${NICE[@]}" go mod tidy)
  extra_in_sync "$what" || die "go mod tidy moved a pinned version in tests/e2e/$what (see above)"
  log "regenerated tests/e2e/$what/go.mod and go.sum: commit both"
}

cache_key() {
  {
    echo "recipe=$RECIPE go=$GOVERSION"
    cat "$HERE/versions.env" "$MODDIR/go.mod" "$MODDIR/go.sum"
    cat "$HERE/knative/go.mod" "$HERE/knative/go.sum" "$HERE/keda/go.mod" "$HERE/keda/go.sum"
  } | sha256sum | cut -c1-16
}

CACHE_ROOT=${KNSCALE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/knscale-e2e}

# --- binaries -----------------------------------------------------------------------------------------
ldflags_for() {
  local minor=${K8S_VERSION#v1.} k8s=() pkg kn=knative.dev/client/pkg/kn/commands/version
  minor=${minor%%.*}
  # What `make release` stamps, so /version and kubectl's skew check see v1.N.P, not v0.0.0-master.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s+=(-X "$pkg.gitVersion=$K8S_VERSION" -X "$pkg.gitMajor=1" -X "$pkg.gitMinor=$minor"
      -X "$pkg.gitTreeState=clean")
  done
  case $1 in
    kube-* | kubectl) echo "-s -w ${k8s[*]}" ;;
    etcd) echo "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION" ;;
    kwok) echo "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} ${k8s[*]}" ;;
    kn) echo "-s -w -X $kn.Version=$KN_VERSION -X $kn.GitRevision=module-$KN_VERSION" ;;
    stat-marshal | knative-*) echo "-s -w" ;;
    keda-*) echo "-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v} -X github.com/kedacore/keda/v2/version.GitCommit=module-$KEDA_VERSION" ;;
    *) die "no ldflags for $1" ;;
  esac
}

build_binaries() {
  local t name pkg tlog ts wall size rss usr sys cmd
  [[ -f $TIMES ]] || {
    echo "# build.sh timings: $(nproc) cores, load at start $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
    echo "# GOCACHE=$(go env GOCACHE) GOMODCACHE=$(go env GOMODCACHE)"
    echo "# binary wall_s user_s sys_s max_rss_kib size_bytes"
  } >"$TIMES"
  local dir tags
  for t in "${TOOLS[@]}" "${EXTRA_TOOLS[@]}"; do
    name=${t%%=*} pkg=${t#*=} dir=$MODDIR tags=(-tags selinux,notest)
    # Tags as in Kubernetes' release build (hack/lib/golang.sh): selinux,notest; none for the others.
    if [[ $pkg == *:* ]]; then dir=$HERE/${pkg%%:*} pkg=${pkg#*:} tags=(); fi
    [[ -x $BIN/$name ]] && continue # a build interrupted after some binaries resumes here
    tlog=$CACHE/logs/$name.time
    ts=$(now)
    cmd=("${NICE[@]}" go build -trimpath "${tags[@]}" -ldflags "$(ldflags_for "$name")"
      -o "$BIN/$name.tmp" "$pkg")
    if [[ -x /usr/bin/time ]]; then
      (cd "$dir" && /usr/bin/time -v -o "$tlog" "${cmd[@]}") || die "building $name failed"
      rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tlog")
      usr=$(sed -n 's/.*User time (seconds): //p' "$tlog")
      sys=$(sed -n 's/.*System time (seconds): //p' "$tlog")
    else
      (cd "$dir" && "${cmd[@]}") || die "building $name failed"
      rss=? usr=? sys=?
    fi
    mv "$BIN/$name.tmp" "$BIN/$name"
    BUILT=$((BUILT + 1))
    wall=$(elapsed "$ts")
    size=$(stat -c %s "$BIN/$name")
    echo "$name $wall $usr $sys $rss $size" >>"$TIMES"
    log "built $name in $wall s (user $usr s, sys $sys s, max RSS $rss KiB, $((size / 1048576)) MiB)"
  done
}

# --- CRDs and kwok stages out of module zips ---------------------------------------------------------
provenance() { printf '%s\n' "$*" >>"$CACHE/PROVENANCE.tmp"; }

licence_of() {
  if grep -q 'Apache License' "$1" && grep -q 'Version 2.0' "$1"; then echo Apache-2.0; else echo "see $1"; fi
}

# copy_files MODULE@VERSION DEST SUBDIR FILE...: copy the files and the module's licence, recording both.
copy_files() {
  local modver=$1 dest=$2 sub=$3 json dir sum f
  shift 3
  json=$(moddownload "$modver")
  dir=$(jsonfield Dir <<<"$json")
  sum=$(jsonfield Sum <<<"$json")
  mkdir -p "$CACHE/crds/$dest"
  provenance "[crds/$dest] module $modver, zip $sum (checked against the Go checksum database)"
  for f in "$@"; do
    [[ -f $dir/$sub/$f ]] || die "$modver has no $sub/$f"
    install -m 0644 "$dir/$sub/$f" "$CACHE/crds/$dest/$f"
    provenance "  $sub/$f sha256=$(sha256sum <"$dir/$sub/$f" | cut -c1-64)"
  done
  install -m 0644 "$dir/LICENSE" "$CACHE/crds/$dest/LICENSE"
  provenance "  licence: $(licence_of "$dir/LICENSE") (copied to crds/$dest/LICENSE)"
}

# copy_install MODULE@VERSION DEST PATH...: copy PATHs (relative to the module root, kept as they are)
# to $CACHE/install/DEST/, with the module's licence, recording module, zip hash, path and sha256.
# Nothing is edited here: tests/e2e/knative_cp.py and keda_cp.py parse each file on its own (a plain
# concatenation would merge the last document of one file with the first of the next) and make the
# few local changes (queue-proxy image by digest, webhook Services with loopback-namespace endpoints).
copy_install() {
  local modver=$1 dest=$2 json dir sum f
  shift 2
  json=$(moddownload "$modver")
  dir=$(jsonfield Dir <<<"$json")
  sum=$(jsonfield Sum <<<"$json")
  provenance "[install/$dest] module $modver, zip $sum (checked against the Go checksum database)"
  for f in "$@"; do
    [[ -f $dir/$f ]] || die "$modver has no $f"
    install -D -m 0644 "$dir/$f" "$CACHE/install/$dest/$f"
    provenance "  $f sha256=$(sha256sum <"$dir/$f" | cut -c1-64)"
  done
  install -D -m 0644 "$dir/LICENSE" "$CACHE/install/$dest/LICENSE"
  provenance "  licence: $(licence_of "$dir/LICENSE") (copied to install/$dest/LICENSE)"
}

# The module version serving's own go.mod requires for a knative.dev dependency (networking, caching).
serving_dep() {
  local gomod v
  gomod=$(moddownload "knative.dev/serving@$KNATIVE_SERVING_VERSION" | jsonfield GoMod)
  v=$(sed -n "s#^[[:space:]]*$1 \(v[^ ]*\).*#\1#p" "$gomod" | head -1)
  [[ -n $v ]] || die "knative.dev/serving@$KNATIVE_SERVING_VERSION's go.mod names no $1"
  echo "$v"
}

extract_install() {
  local core=config/core serving=knative.dev/serving@$KNATIVE_SERVING_VERSION f kc=config/crd/bases
  local files=()
  for f in 100-namespace.yaml 200-serviceaccount.yaml 200-roles/clusterrole.yaml \
    200-roles/clusterrole-namespaced.yaml 200-roles/addressable-resolvers-clusterrole.yaml \
    200-roles/podspecable-bindings-clusterrole.yaml 300-knativecertificate.yaml 999-cache.yaml \
    300-resources/configuration.yaml 300-resources/domain-mapping.yaml 300-resources/metric.yaml \
    300-resources/podautoscaler.yaml 300-resources/revision.yaml 300-resources/route.yaml \
    300-resources/service.yaml configmaps/autoscaler.yaml configmaps/certmanager.yaml \
    configmaps/defaults.yaml configmaps/deployment.yaml configmaps/domain.yaml configmaps/features.yaml \
    configmaps/gc.yaml configmaps/leader-election.yaml configmaps/logging.yaml \
    configmaps/observability.yaml configmaps/tracing.yaml webhooks/configmap-validation.yaml \
    webhooks/defaulting.yaml webhooks/resource-validation.yaml webhooks/secret.yaml \
    deployments/webhook.yaml; do
    files+=("$core/$f")
  done
  copy_install "$serving" knative-serving "${files[@]}"
  copy_install "knative.dev/networking@$(serving_dep knative.dev/networking)" knative-networking \
    config/certificate.yaml config/domain-claim.yaml config/ingress.yaml config/serverlessservice.yaml \
    config/config-network.yaml
  copy_install "knative.dev/caching@$(serving_dep knative.dev/caching)" knative-caching config/image.yaml
  copy_install "github.com/kedacore/keda/v2@$KEDA_VERSION" keda \
    $kc/keda.sh_scaledobjects.yaml $kc/keda.sh_scaledjobs.yaml $kc/keda.sh_triggerauthentications.yaml \
    $kc/keda.sh_clustertriggerauthentications.yaml $kc/eventing.keda.sh_cloudeventsources.yaml \
    $kc/eventing.keda.sh_clustercloudeventsources.yaml config/general/namespace.yaml \
    config/service_account/service_account.yaml config/rbac/role.yaml config/rbac/role_binding.yaml \
    config/metrics-server/role.yaml config/metrics-server/role_binding.yaml \
    config/metrics-server/service.yaml config/metrics-server/api_service.yaml config/manager/service.yaml \
    config/webhooks/service.yaml config/webhooks/validation_webhooks.yaml
}

extract_yaml() {
  local t serving_gomod networking kwok_dir f
  rm -rf "$CACHE/crds" "$CACHE/PROVENANCE.tmp"
  {
    echo "# Provenance of the e2e control plane in $CACHE"
    echo "# built by tests/e2e/build.sh (recipe $RECIPE) with $GOVERSION, $(date -u +%FT%TZ)"
    echo "binaries: GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -tags selinux,notest -ldflags '-s -w ...'"
    echo "  in the wrapper module tests/e2e/k8sbin (its go.sum pins every module's hash):"
    for t in "${TOOLS[@]}"; do echo "  bin/${t%%=*} <- ${t#*=}"; done
    echo "versions (tests/e2e/versions.env):"
    sed -n 's/^\([A-Z0-9_]*VERSION\)=/  \1=/p' "$HERE/versions.env"
    echo "licences of the binaries: Kubernetes, etcd, kwok, Knative client are Apache-2.0"
  } >"$CACHE/PROVENANCE.tmp"

  copy_files "knative.dev/serving@$KNATIVE_SERVING_VERSION" knative-serving config/core/300-resources \
    service.yaml configuration.yaml revision.yaml route.yaml podautoscaler.yaml metric.yaml domain-mapping.yaml
  # Knative's release ships the networking CRDs (ServerlessService, Ingress, Certificate, ClusterDomainClaim)
  # beside Serving's; they live in knative.dev/networking, at the version serving's own go.mod requires.
  serving_gomod=$(moddownload "knative.dev/serving@$KNATIVE_SERVING_VERSION" | jsonfield GoMod)
  networking=$(sed -n 's#^[[:space:]]*knative.dev/networking \(v[^ ]*\).*#\1#p' "$serving_gomod" | head -1)
  [[ -n $networking ]] || die "knative.dev/serving@$KNATIVE_SERVING_VERSION's go.mod names no knative.dev/networking"
  copy_files "knative.dev/networking@$networking" knative-networking config \
    serverlessservice.yaml ingress.yaml certificate.yaml domain-claim.yaml
  copy_files "github.com/kedacore/keda/v2@$KEDA_VERSION" keda config/crd/bases keda.sh_scaledobjects.yaml

  # The kwok binary has no built-in behaviour: Stages (what a fake node/pod goes through) are YAML that
  # kwokctl embeds. Take the same "fast" stages from the kwok module: fake nodes turn Ready, pods turn
  # Running+Ready at once and vanish when deleted (no kubelet would finish the deletion otherwise).
  kwok_dir=$(moddownload "sigs.k8s.io/kwok@$KWOK_VERSION" | jsonfield Dir)
  provenance "[kwok-stages.yaml] module sigs.k8s.io/kwok@$KWOK_VERSION, licence $(licence_of "$kwok_dir/LICENSE")"
  for f in node/fast/node-initialize.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml \
    pod/fast/pod-delete.yaml; do
    [[ -f $kwok_dir/kustomize/stage/$f ]] || die "sigs.k8s.io/kwok@$KWOK_VERSION has no kustomize/stage/$f"
    echo "---"
    cat "$kwok_dir/kustomize/stage/$f"
    provenance "  kustomize/stage/$f"
  done >"$CACHE/kwok-stages.yaml"
  rm -rf "$CACHE/install"
  extract_install
  mv "$CACHE/PROVENANCE.tmp" "$CACHE/PROVENANCE"
}

main() {
  case "${1:-}" in
    --print-dir)
      module_in_sync || die "tests/e2e/k8sbin/go.mod does not match versions.env: run bash tests/e2e/build.sh"
      { extra_in_sync knative && extra_in_sync keda; } ||
        die "tests/e2e/{knative,keda}/go.mod do not match versions.env: run bash tests/e2e/build.sh"
      echo "$CACHE_ROOT/k8s-$K8S_VERSION-$(cache_key)"
      return 0
      ;;
    --regen) regen_module; regen_extra knative; regen_extra keda; return 0 ;;
    "") ;;
    *) die "unknown argument $1 (use --print-dir or --regen)" ;;
  esac

  T0=$(now)
  if ! module_in_sync; then
    [[ ${CI:-} == true ]] && log "WARNING: CI is regenerating the wrapper module; commit the result"
    regen_module
  fi
  for what in knative keda; do
    extra_in_sync "$what" || regen_extra "$what"
  done
  CACHE=$CACHE_ROOT/k8s-$K8S_VERSION-$(cache_key)
  BIN=$CACHE/bin
  TIMES=$CACHE/BUILD-TIMES
  mkdir -p "$CACHE_ROOT"

  # One build per cache root at a time: a second `make e2e` waits instead of racing.
  exec 9>"$CACHE_ROOT/.lock"
  flock 9

  if [[ -f $CACHE/.complete ]]; then
    log "warm: cache hit in $(elapsed "$T0") s: $CACHE ($(sed -n 's/^# total cold path: //p' "$TIMES" | tail -1) when built)"
    echo "$CACHE"
    return 0
  fi

  mkdir -p "$BIN" "$CACHE/logs"
  log "cold: building into $CACHE ($GOVERSION, Kubernetes $K8S_VERSION)"
  BUILT=0
  build_binaries
  extract_yaml
  echo "# total cold path: $(elapsed "$T0") s wall ($BUILT of $((${#TOOLS[@]} + ${#EXTRA_TOOLS[@]})) binaries built)" >>"$TIMES"
  date -u +%FT%TZ >"$CACHE/.complete"
  log "cold: done in $(elapsed "$T0") s; per-binary timings in $TIMES"
  echo "$CACHE"
}

main "$@"
