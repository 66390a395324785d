#!/usr/bin/env bash
# Build the Jaeger v2 all-in-one binary (an OpenTelemetry Collector distribution: OTLP
# receivers, storage and the query service in one process) that the tests and the demo run
# as their trace backend, from the Go module github.com/jaegertracing/jaeger (the Go module
# proxy is the only source needed). The main package is upstream's cmd/jaeger, unchanged.
#
# Upstream's go.mod has a replace directive, which `go install module/cmd@version` refuses,
# so the build goes through a scratch Go module (…/<key>/src/, never in the repo) that
# requires the release and copies upstream's go directive, godebug settings and replace
# directives; the build checks that every module upstream's go.mod requires is selected at
# the same version, i.e. the binary is built from the dependencies upstream's own build
# uses. `jaeger version` reports the module version (set at link time, as upstream's
# Makefile does with the release tag).
#
# A cold build takes about 15 minutes on 2 cores: measured 12m17s compiling (737 s in the
# stamp; 540 s of CPU, 2.2 GB peak memory; empty Go build cache, the machine shared with
# other work) after about 3 minutes downloading some 1.3 GB of modules into an empty module
# cache. Most of it is the OpenTelemetry Collector and the storage clients (Cassandra,
# Elasticsearch, ClickHouse, Kafka, Badger) the binary links. With warm Go caches a rebuild
# (--force) takes about 25 s and gives the same binary, byte for byte (about 81 MB).
# Jaeger's UI is not part of the Go module (it is built with npm), so the query service
# serves a placeholder page there; the query API is complete.
#
# Results are cached per version and recipe (scripts/lib/go-tool-cache.sh) in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/jaeger/<version>-r<recipe>/bin/jaeger
# A second run is a no-op.
#
# Output: progress on stderr; on success the bin directory is the last (only) line of
# stdout, e.g.  BIN=$(scripts/build-jaeger.sh | tail -1)
#
# Usage: scripts/build-jaeger.sh [--force]
#   --force   rebuild even if a complete cached build exists
# Environment:
#   JAEGER_VERSION     module version to build (default below; with or without leading "v")
#   NGINX_MESH_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                 go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOCACHE, GOPROXY are honoured (persistent Go caches make rebuilds fast)
set -euo pipefail

DEFAULT_JAEGER_VERSION="1.75.0"
# Bump when the build recipe changes in a way that should invalidate old caches.
RECIPE_REVISION="1"
JAEGER_VERSION="${JAEGER_VERSION:-$DEFAULT_JAEGER_VERSION}"
JAEGER_VERSION="${JAEGER_VERSION#v}"
JAEGER_MODULE="github.com/jaegertracing/jaeger"
JAEGER_MAIN="$JAEGER_MODULE/cmd/jaeger"

log() { printf '[build-jaeger] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/go-tool-cache.sh
source "$(dirname "$0")/lib/go-tool-cache.sh"

tool_cache_arguments "$0" "$@"
[[ "$JAEGER_VERSION" =~ ^1\.[0-9]+\.[0-9]+$ ]] ||
  die "JAEGER_VERSION must look like 1.75.0, the Go module's version (got '$JAEGER_VERSION')"

tool_cache_init jaeger "${JAEGER_VERSION}-r${RECIPE_REVISION}"
cached() {
  [[ "$FORCE" == 0 ]] &&
    tool_cache_valid jaeger "recipe_revision=$RECIPE_REVISION" "jaeger_version=v$JAEGER_VERSION"
}
report_cached() {
  local secs
  secs="$(sed -n 's/^build_seconds=//p' "$STAMP")"
  log "cached: Jaeger v$JAEGER_VERSION (its build took ${secs:-?}s)"
  printf '%s\n' "$BIN_DIR"
}
if cached; then report_cached; exit 0; fi
# Serialise concurrent runs for the same version, then re-check the cache.
tool_cache_begin
if cached; then report_cached; exit 0; fi

log "building Jaeger v$JAEGER_VERSION ($JAEGER_MAIN) with $("$GO" version)"
log "GOMODCACHE=$("$GO" env GOMODCACHE) GOCACHE=$("$GO" env GOCACHE); work dir $WORK_DIR"

# "go" directive of a go.mod file (e.g. 1.24.6).
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

# "replace" directives of a go.mod file as `go mod edit -replace` arguments (old[@v]=new[@v]),
# single-line and block forms.
gomod_replaces() {
  awk '
    function emit(s,   n, f, i, arrow, old, new) {
      sub(/\/\/.*/, "", s)
      n = split(s, f, /[ \t]+/)
      arrow = 0
      for (i = 1; i <= n; i++) if (f[i] == "=>") arrow = i
      if (arrow == 0) return
      old = f[1]; if (arrow == 3) old = old "@" f[2]
      new = f[arrow + 1]; if (arrow + 2 <= n && f[arrow + 2] != "") new = new "@" f[arrow + 2]
      print old "=" new
    }
    $1 == "replace" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")"         { inblock = 0; next }
    inblock && NF > 0 && $1 !~ /^\/\// { line = $0; sub(/^[ \t]+/, "", line); emit(line) }
    $1 == "replace" && $2 != "(" { line = $0; sub(/^replace[ \t]+/, "", line); emit(line) }
  ' "$1"
}

# "path version" of every require of a go.mod file (single-line and block forms).
gomod_requires() {
  awk '
    $1 == "require" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")"         { inblock = 0; next }
    inblock && NF >= 2 && $1 !~ /^\/\// { print $1, $2 }
    $1 == "require" && $2 != "(" && NF >= 3 { print $2, $3 }
  ' "$1"
}

build_jaeger() {
  local mod_dir="$WORK_DIR/src/jaeger" json upstream kv goversion path want got
  local -a edits=()
  local -A required=()
  mkdir -p "$mod_dir"
  cd "$mod_dir"
  json="$("$GO" mod download -json "$JAEGER_MODULE@v$JAEGER_VERSION")" ||
    die "go mod download $JAEGER_MODULE@v$JAEGER_VERSION failed"
  upstream="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$upstream/go.mod" && -f "$upstream/cmd/jaeger/main.go" ]] ||
    die "could not locate the source of $JAEGER_MODULE@v$JAEGER_VERSION"

  "$GO" mod init nginx-meshctl.invalid/jaeger >&2
  # Same language version, runtime defaults (godebug) and replacements as upstream's own
  # build, since our scratch module, not jaeger, is the main module.
  goversion="$(gomod_go_version "$upstream/go.mod")"
  if [[ -n "$goversion" ]]; then edits+=("-go=$goversion"); fi
  while IFS= read -r kv; do
    if [[ -n "$kv" ]]; then edits+=("-godebug=$kv"); fi
  done < <(gomod_godebugs "$upstream/go.mod")
  while IFS= read -r kv; do
    if [[ -n "$kv" ]]; then
      edits+=("-replace=$kv")
      log "upstream replace: $kv"
    fi
  done < <(gomod_replaces "$upstream/go.mod")
  if ((${#edits[@]} > 0)); then "$GO" mod edit "${edits[@]}"; fi

  # Resolves and downloads the dependencies of cmd/jaeger only.
  log "resolving Jaeger v$JAEGER_VERSION dependencies (go get)…"
  run_go get "$JAEGER_MAIN@v$JAEGER_VERSION"

  # Every module upstream requires must be selected at upstream's version.
  while read -r path want; do
    required["$path"]="$want"
  done < <(gomod_requires "$upstream/go.mod")
  ((${#required[@]} > 0)) || die "found no requirements in $upstream/go.mod"
  while read -r path got; do
    [[ "$got" == "${required[$path]}" ]] ||
      die "$path is selected at $got, upstream's go.mod requires ${required[$path]}"
  done < <("$GO" list -m -f '{{.Path}} {{.Version}}' "${!required[@]}")
  log "all ${#required[@]} modules upstream's go.mod requires are selected at its versions"

  log "compiling jaeger…"
  run_go build -p 2 \
    -ldflags "-s -w -X $JAEGER_MODULE/internal/version.latestVersion=v$JAEGER_VERSION" \
    -o "$WORK_DIR/bin/jaeger" "$JAEGER_MAIN"
}

verify_binary() {
  local out
  out="$("$WORK_DIR/bin/jaeger" version 2>/dev/null)" || die "jaeger version failed: $out"
  [[ "$out" == *"\"gitVersion\":\"v$JAEGER_VERSION\""* ]] ||
    die "jaeger version reports '$out', expected gitVersion v$JAEGER_VERSION"
  "$WORK_DIR/bin/jaeger" --help >/dev/null 2>&1 || die "jaeger --help failed"
  log "jaeger runs and reports $out"
}

build_jaeger
verify_binary

BUILD_SECONDS="$(tool_cache_seconds)"
tool_cache_publish >/dev/null <<STAMP
jaeger_version=v$JAEGER_VERSION
recipe_revision=$RECIPE_REVISION
go_version=$("$GO" env GOVERSION)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$BUILD_SECONDS
sha256=$(sha256sum "$WORK_DIR/bin/jaeger" | cut -d' ' -f1)
STAMP
log "$(du -h "$BIN_DIR/jaeger" | cut -f1)	$BIN_DIR/jaeger"
log "build took ${BUILD_SECONDS}s (cold if the Go build cache was empty)"
printf '%s\n' "$BIN_DIR"
