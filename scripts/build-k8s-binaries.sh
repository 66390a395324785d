#!/usr/bin/env bash
# Build the real Kubernetes control-plane binaries used by the integration-test
# cluster, from Go modules (the Go module proxy is the only source needed):
#
#   kube-apiserver, kube-controller-manager, kube-scheduler,
#   kubelet, kube-proxy, kubectl                      <- k8s.io/kubernetes
#   etcd                                              <- go.etcd.io/etcd/server/v3
#
# CoreDNS is built separately, by scripts/build-coredns.sh.
#
# Results are cached per version in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/k8s/<k8s>-etcd<etcd>/bin/
# A cached build is only used when its stamp file exists; the stamp is written
# last, in a temporary directory that is then renamed into place, so a killed
# build never looks complete. A second run is a no-op.
#
# Go is used here only to compile these third-party binaries. The generated
# scratch Go modules live in the cache directory (…/<key>/src/), never in the repo.
#
# Output: progress on stderr; on success the bin directory is the last (only)
# line of stdout, e.g.  BIN=$(scripts/build-k8s-binaries.sh | tail -1)
#
# Usage: scripts/build-k8s-binaries.sh [--force]
#   --force   rebuild even if a complete cached build exists
# Environment:
#   K8S_VERSION, ETCD_VERSION   versions to build (with or without leading "v")
#   NGINX_MESH_CACHE            cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                          go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOCACHE, GOPROXY are honoured (persistent Go caches make rebuilds fast)
set -euo pipefail

# ---- defaults -----------------------------------------------------------------
DEFAULT_K8S_VERSION="1.35.4"
DEFAULT_ETCD_VERSION="3.6.16"
# Bump when the build recipe changes in a way that should invalidate old caches.
RECIPE_REVISION="2"

K8S_VERSION="${K8S_VERSION:-$DEFAULT_K8S_VERSION}"
ETCD_VERSION="${ETCD_VERSION:-$DEFAULT_ETCD_VERSION}"
K8S_VERSION="${K8S_VERSION#v}"
ETCD_VERSION="${ETCD_VERSION#v}"

K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
ETCD_BINARIES=(etcd)
BUILD_TAGS="selinux,notest,grpcnotrace" # what Kubernetes' hack/lib/golang.sh uses

log() { printf '[build-k8s-binaries] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/go-tool-cache.sh
source "$(dirname "$0")/lib/go-tool-cache.sh"

tool_cache_arguments "$0" "$@"

[[ "$K8S_VERSION" =~ ^1\.([0-9]+)\.([0-9]+)$ ]] ||
  die "K8S_VERSION must look like 1.35.4 (got '$K8S_VERSION')"
K8S_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="0.${K8S_VERSION#1.}" # Kubernetes v1.X.Y <=> staging modules v0.X.Y
[[ "$ETCD_VERSION" =~ ^3\.[0-9]+\.[0-9]+$ ]] ||
  die "ETCD_VERSION must look like 3.6.16 (got '$ETCD_VERSION')"

tool_cache_init k8s "${K8S_VERSION}-etcd${ETCD_VERSION}"
# A cached build counts only if its stamp is complete and every binary is there.
cached() {
  [[ "$FORCE" == 0 ]] && tool_cache_valid kubectl "recipe_revision=$RECIPE_REVISION" || return 1
  local b
  for b in "${K8S_BINARIES[@]}" "${ETCD_BINARIES[@]}"; do
    [[ -x "$BIN_DIR/$b" ]] || return 1
  done
}
report_cached() {
  local secs
  secs="$(sed -n 's/^build_seconds=//p' "$STAMP")"
  log "cached: Kubernetes v$K8S_VERSION + etcd v$ETCD_VERSION (its build took ${secs:-?}s)"
  printf '%s\n' "$BIN_DIR"
}
if cached; then report_cached; exit 0; fi
# Serialise concurrent runs for the same versions, then re-check the cache.
tool_cache_begin
if cached; then report_cached; exit 0; fi

log "building Kubernetes v$K8S_VERSION (staging v$STAGING_VERSION) and etcd v$ETCD_VERSION"
log "with $("$GO" version); GOMODCACHE=$("$GO" env GOMODCACHE) GOCACHE=$("$GO" env GOCACHE)"
log "work dir $WORK_DIR"
mkdir -p "$WORK_DIR/src/kubernetes" "$WORK_DIR/src/etcd"

# Path of the go.mod file the proxy serves for module@version (downloads it).
module_gomod() {
  local json path
  json="$("$GO" mod download -json "$1")" || die "go mod download $1 failed"
  path="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$path" ]] || die "could not locate go.mod of $1"
  printf '%s\n' "$path"
}

# "go" directive of a go.mod file (e.g. 1.25.0).
gomod_go_version() { awk '$1 == "go" && NF == 2 { print $2; exit }' "$1"; }

# "godebug" settings of a go.mod file, one key=value per line (single-line and block forms).
gomod_godebugs() {
  awk '
    $1 == "godebug" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")"         { inblock = 0; next }
    inblock && NF > 0 && $1 !~ /^\/\// { print $1 }
    $1 == "godebug" && $2 != "(" { print $2 }
  ' "$1"
}

# Staging modules of kubernetes' go.mod: every k8s.io module replaced with a
# ./staging/ directory, plus every k8s.io module required at the fake v0.0.0.
staging_modules() {
  awk '
    $1 ~ /^k8s\.io\// && $2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }
    $1 ~ /^k8s\.io\// && $2 == "v0.0.0"                      { print $1 }
  ' "$1" | sort -u
}

# ---- kube-apiserver, kube-controller-manager, kubectl -------------------------------
build_kubernetes() {
  local mod_dir="$WORK_DIR/src/kubernetes" k8s_mod goversion kv
  local -a edits=() pkgs=() modules=() ldflags=()

  cd "$WORK_DIR"
  k8s_mod="$(module_gomod "k8s.io/kubernetes@v$K8S_VERSION")"
  mapfile -t modules < <(staging_modules "$k8s_mod")
  ((${#modules[@]} > 0)) || die "found no staging modules in $k8s_mod"
  log "kubernetes v$K8S_VERSION: ${#modules[@]} staging modules -> v$STAGING_VERSION"

  cd "$mod_dir"
  "$GO" mod init nginx-meshctl.invalid/k8s-binaries >&2
  # Same language version and runtime defaults (godebug) as upstream's own build,
  # since our scratch module, not kubernetes, is the main module.
  goversion="$(gomod_go_version "$k8s_mod")"
  if [[ -n "$goversion" ]]; then edits+=("-go=$goversion"); fi
  while IFS= read -r kv; do
    if [[ -n "$kv" ]]; then edits+=("-godebug=$kv"); fi
  done < <(gomod_godebugs "$k8s_mod")
  # Replaces must exist before the first `go get`, or it fails on k8s.io/...@v0.0.0.
  local m
  for m in "${modules[@]}"; do
    edits+=("-replace=$m=$m@v$STAGING_VERSION")
  done
  "$GO" mod edit "${edits[@]}"

  for m in "${K8S_BINARIES[@]}"; do
    pkgs+=("k8s.io/kubernetes/cmd/$m")
  done
  log "resolving dependencies (go get)…"
  run_go get "${pkgs[@]/%/@v$K8S_VERSION}"

  # Version stamping as in kubernetes' hack/lib/version.sh, so /version and
  # `kubectl version` report the real release. buildDate = release tag time.
  local build_date key val
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${k8s_mod%.mod}.info" 2>/dev/null || true)"
  [[ "$build_date" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || build_date="1970-01-01T00:00:00Z"
  ldflags=(-s -w)
  for kv in "gitVersion=v$K8S_VERSION" "gitMajor=1" "gitMinor=$K8S_MINOR" \
    "gitTreeState=clean" "gitCommit=" "buildDate=$build_date"; do
    key="${kv%%=*}" val="${kv#*=}"
    ldflags+=(-X "k8s.io/component-base/version.$key=$val" -X "k8s.io/client-go/pkg/version.$key=$val")
  done

  log "compiling ${K8S_BINARIES[*]} (this is the slow part)…"
  run_go build -p 2 -tags "$BUILD_TAGS" -ldflags "${ldflags[*]}" -o "$WORK_DIR/bin/" "${pkgs[@]}"
}

# ---- etcd ----------------------------------------------------------------------------
# Separate scratch module, so etcd's dependency choices cannot move the shared
# dependencies (grpc, otel, …) of the Kubernetes build. go.etcd.io/etcd/server/v3
# is itself the etcd main package; its requires carry real versions, so no replaces.
build_etcd() {
  local mod_dir="$WORK_DIR/src/etcd"
  cd "$mod_dir"
  "$GO" mod init nginx-meshctl.invalid/etcd-binaries >&2
  log "resolving etcd v$ETCD_VERSION dependencies (go get)…"
  run_go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  log "compiling etcd…"
  run_go build -p 2 \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=go-module-v$ETCD_VERSION" \
    -o "$WORK_DIR/bin/etcd" go.etcd.io/etcd/server/v3
}

# ---- check that the binaries run and report the expected versions -----------------
verify_binaries() {
  local out
  out="$("$WORK_DIR/bin/kube-apiserver" --version 2>&1)"
  [[ "$out" == "Kubernetes v$K8S_VERSION" ]] || die "kube-apiserver --version: '$out'"
  out="$("$WORK_DIR/bin/kube-controller-manager" --version 2>&1)"
  [[ "$out" == "Kubernetes v$K8S_VERSION" ]] || die "kube-controller-manager --version: '$out'"
  local b
  for b in kube-scheduler kubelet kube-proxy; do
    out="$("$WORK_DIR/bin/$b" --version 2>&1)"
    [[ "$out" == "Kubernetes v$K8S_VERSION" ]] || die "$b --version: '$out'"
  done
  out="$("$WORK_DIR/bin/kubectl" version --client 2>&1)"
  [[ "$out" == *"Client Version: v$K8S_VERSION"* ]] || die "kubectl version --client: '$out'"
  out="$("$WORK_DIR/bin/etcd" --version 2>&1)"
  [[ "$out" == *"etcd Version: $ETCD_VERSION"* ]] || die "etcd --version: '$out'"
  log "all binaries run and report the expected versions"
}

build_kubernetes
build_etcd
verify_binaries

BUILD_SECONDS="$(tool_cache_seconds)"
stamp_lines() {
  echo "k8s_version=v$K8S_VERSION"
  echo "staging_version=v$STAGING_VERSION"
  echo "etcd_version=v$ETCD_VERSION"
  echo "recipe_revision=$RECIPE_REVISION"
  echo "go_version=$("$GO" env GOVERSION)"
  echo "build_tags=$BUILD_TAGS"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$BUILD_SECONDS"
  (cd "$WORK_DIR/bin" && sha256sum -- *) | sed 's/^\([0-9a-f]*\)  \(.*\)$/sha256:\2=\1/'
}
tool_cache_publish < <(stamp_lines) >/dev/null

for b in "${K8S_BINARIES[@]}" "${ETCD_BINARIES[@]}"; do
  log "$(du -h "$BIN_DIR/$b" | cut -f1)	$BIN_DIR/$b"
done
log "build took ${BUILD_SECONDS}s (cold if the Go build cache was empty)"
printf '%s\n' "$BIN_DIR"
