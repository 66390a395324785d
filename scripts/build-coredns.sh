#!/usr/bin/env bash
# Build the CoreDNS binary the integration-test cluster runs as its cluster DNS, from
# the Go module github.com/coredns/coredns (the Go module proxy is the only source needed).
#
# Only the plugins the cluster's Corefile uses (test/cluster/harness/node.ts) are compiled
# in: errors, health, ready and kubernetes, plus metadata and transfer, which the
# kubernetes plugin imports (so they register themselves either way), and forward, log and
# whoami, which the Gateway API conformance suite's own CoreDNS backend configures (with debug
# and dnstap, which forward imports). Upstream's full
# build also compiles the AWS, Azure and Google Cloud SDKs for route53, azure and
# clouddns, which takes several times longer. The main package is generated: it imports
# coremain, core/dnsserver and those plugins, and sets dnsserver.Directives to upstream's
# order (core/dnsserver/zdirectives.go) filtered to them. `coredns -version` still
# reports the release (coremain.CoreVersion is a constant of the module).
#
# Results are cached per version and recipe in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/coredns/<version>-r<recipe>/bin/coredns
# A cached build is only used when its stamp file exists; the stamp is written
# last, in a temporary directory that is then renamed into place, so a killed
# build never looks complete. A second run is a no-op.
#
# Go is used here only to compile this third-party binary. The generated scratch
# Go module lives in the cache directory (…/<key>/src/), never in the repo.
#
# Output: progress on stderr; on success the bin directory is the last (only)
# line of stdout, e.g.  BIN=$(scripts/build-coredns.sh | tail -1)
#
# Usage: scripts/build-coredns.sh [--force]
#   --force   rebuild even if a complete cached build exists
# Environment:
#   COREDNS_VERSION             version to build (with or without leading "v")
#   NGINX_MESH_CACHE            cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                          go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOCACHE, GOPROXY are honoured (persistent Go caches make rebuilds fast)
set -euo pipefail

# ---- defaults -----------------------------------------------------------------
DEFAULT_COREDNS_VERSION="1.14.7"
# Bump when the build recipe (including PLUGINS) changes in a way that should
# invalidate old caches.
RECIPE_REVISION="2"
# Directive names as in upstream's plugin.cfg, in any order.
PLUGINS=(errors health ready kubernetes metadata transfer forward log whoami debug dnstap)

COREDNS_VERSION="${COREDNS_VERSION:-$DEFAULT_COREDNS_VERSION}"
COREDNS_VERSION="${COREDNS_VERSION#v}"
COREDNS_MODULE="github.com/coredns/coredns"

log() { printf '[build-coredns] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/go-tool-cache.sh
source "$(dirname "$0")/lib/go-tool-cache.sh"

tool_cache_arguments "$0" "$@"

[[ "$COREDNS_VERSION" =~ ^1\.[0-9]+\.[0-9]+$ ]] ||
  die "COREDNS_VERSION must look like 1.14.7 (got '$COREDNS_VERSION')"

tool_cache_init coredns "${COREDNS_VERSION}-r${RECIPE_REVISION}"
# A cached build counts only if its stamp is complete and the binary is there.
cached() {
  [[ "$FORCE" == 0 ]] &&
    tool_cache_valid coredns "recipe_revision=$RECIPE_REVISION" "coredns_version=v$COREDNS_VERSION"
}
report_cached() {
  local secs
  secs="$(sed -n 's/^build_seconds=//p' "$STAMP")"
  log "cached: CoreDNS v$COREDNS_VERSION (its build took ${secs:-?}s)"
  printf '%s\n' "$BIN_DIR"
}
if cached; then report_cached; exit 0; fi
# Serialise concurrent runs for the same version, then re-check the cache.
tool_cache_begin
if cached; then report_cached; exit 0; fi

log "building CoreDNS v$COREDNS_VERSION with the plugins: ${PLUGINS[*]}"
log "with $("$GO" version); GOMODCACHE=$("$GO" env GOMODCACHE) GOCACHE=$("$GO" env GOCACHE)"
log "work dir $WORK_DIR"
mkdir -p "$WORK_DIR/src/coredns"

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

# Upstream's directive order: the quoted names in core/dnsserver/zdirectives.go.
upstream_directives() {
  sed -n 's/^[[:space:]]*"\([a-z0-9_]*\)",[[:space:]]*$/\1/p' "$1/core/dnsserver/zdirectives.go"
}

# Import path of a plugin, from upstream's plugin.cfg ("name:path"; a path without a
# slash is a package under plugin/), the file zplugin.go is generated from.
plugin_import_path() {
  local path
  path="$(awk -F: -v name="$2" '$0 !~ /^#/ && $1 == name { print $2; exit }' "$1/plugin.cfg")"
  [[ -n "$path" ]] || die "plugin $2 is not in CoreDNS v$COREDNS_VERSION's plugin.cfg"
  if [[ "$path" == */* ]]; then
    printf '%s\n' "$path"
  else
    printf '%s\n' "$COREDNS_MODULE/plugin/$path"
  fi
}

# ---- coredns --------------------------------------------------------------------
DIRECTIVES=()
build_coredns() {
  local mod_dir="$WORK_DIR/src/coredns" json upstream kv goversion d p
  local -a edits=() imports=() upstream_order=()

  cd "$mod_dir"
  json="$("$GO" mod download -json "$COREDNS_MODULE@v$COREDNS_VERSION")" ||
    die "go mod download $COREDNS_MODULE@v$COREDNS_VERSION failed"
  upstream="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$upstream/go.mod" && -f "$upstream/core/dnsserver/zdirectives.go" ]] ||
    die "could not locate the source of $COREDNS_MODULE@v$COREDNS_VERSION"

  mapfile -t upstream_order < <(upstream_directives "$upstream")
  ((${#upstream_order[@]} > 0)) || die "found no directives in $upstream/core/dnsserver/zdirectives.go"
  for d in "${upstream_order[@]}"; do
    for p in "${PLUGINS[@]}"; do
      if [[ "$d" == "$p" ]]; then DIRECTIVES+=("$d"); fi
    done
  done
  for p in "${PLUGINS[@]}"; do
    [[ " ${DIRECTIVES[*]} " == *" $p "* ]] || die "plugin $p is not among CoreDNS v$COREDNS_VERSION's directives"
    imports+=("$(plugin_import_path "$upstream" "$p")")
  done
  mapfile -t imports < <(printf '%s\n' "${imports[@]}" | sort -u)
  log "directives, in upstream's order: ${DIRECTIVES[*]}"

  "$GO" mod init nginx-meshctl.invalid/coredns >&2
  # Same language version and runtime defaults (godebug) as upstream's own build,
  # since our scratch module, not coredns, is the main module.
  goversion="$(gomod_go_version "$upstream/go.mod")"
  if [[ -n "$goversion" ]]; then edits+=("-go=$goversion"); fi
  while IFS= read -r kv; do
    if [[ -n "$kv" ]]; then edits+=("-godebug=$kv"); fi
  done < <(gomod_godebugs "$upstream/go.mod")
  if ((${#edits[@]} > 0)); then "$GO" mod edit "${edits[@]}"; fi

  {
    echo "// Code generated by scripts/build-coredns.sh for CoreDNS v$COREDNS_VERSION; DO NOT EDIT."
    echo
    echo "// CoreDNS with only the plugins the test cluster uses."
    echo "package main"
    echo
    echo "import ("
    echo "	\"$COREDNS_MODULE/core/dnsserver\""
    echo "	\"$COREDNS_MODULE/coremain\""
    echo
    for p in "${imports[@]}"; do echo "	_ \"$p\""; done
    echo ")"
    echo
    echo "func init() {"
    echo "	// Upstream's order (core/dnsserver/zdirectives.go), only the plugins above."
    echo "	dnsserver.Directives = []string{"
    for d in "${DIRECTIVES[@]}"; do echo "		\"$d\","; done
    echo "	}"
    echo "}"
    echo
    echo "func main() {"
    echo "	coremain.Run()"
    echo "}"
  } >main.go

  # Only these packages' dependencies are resolved and downloaded (not the cloud SDKs
  # of the plugins left out); their versions are the ones upstream's go.mod selects.
  log "resolving CoreDNS v$COREDNS_VERSION dependencies (go get)…"
  run_go get "$COREDNS_MODULE/coremain@v$COREDNS_VERSION" \
    "$COREDNS_MODULE/core/dnsserver@v$COREDNS_VERSION" \
    "${imports[@]/%/@v$COREDNS_VERSION}"

  log "compiling coredns…"
  run_go build -p 2 \
    -ldflags "-s -w -X $COREDNS_MODULE/coremain.GitCommit=go-module-v$COREDNS_VERSION" \
    -o "$WORK_DIR/bin/coredns" .
}

# ---- check that the binary runs, reports the version and has exactly our plugins --
verify_binary() {
  local out got want
  out="$("$WORK_DIR/bin/coredns" -version 2>&1)"
  [[ "$(printf '%s\n' "$out" | head -1)" == "CoreDNS-$COREDNS_VERSION" ]] ||
    die "coredns -version: '$out'"
  out="$("$WORK_DIR/bin/coredns" -plugins 2>&1)"
  # One registered plugin a line (caddy drops the "dns." of the server type).
  got="$(printf '%s\n' "$out" | sed '/^$/d' | sort | paste -sd ' ' -)"
  want="$(printf '%s\n' "${PLUGINS[@]}" | sort | paste -sd ' ' -)"
  [[ "$got" == "$want" ]] || die "coredns -plugins lists '$got', expected '$want'"
  log "coredns runs, reports v$COREDNS_VERSION and has the plugins: $got"
}

build_coredns
verify_binary

BUILD_SECONDS="$(tool_cache_seconds)"
stamp_lines() {
  echo "coredns_version=v$COREDNS_VERSION"
  echo "recipe_revision=$RECIPE_REVISION"
  echo "directives=${DIRECTIVES[*]}"
  echo "go_version=$("$GO" env GOVERSION)"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$BUILD_SECONDS"
  (cd "$WORK_DIR/bin" && sha256sum -- *) | sed 's/^\([0-9a-f]*\)  \(.*\)$/sha256:\2=\1/'
}
tool_cache_publish < <(stamp_lines) >/dev/null

log "$(du -h "$BIN_DIR/coredns" | cut -f1)	$BIN_DIR/coredns"
log "build took ${BUILD_SECONDS}s (cold if the Go build cache was empty)"
printf '%s\n' "$BIN_DIR"
