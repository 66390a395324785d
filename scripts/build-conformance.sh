#!/usr/bin/env bash
# Build the upstream Gateway API conformance suite and the echo servers its manifests run, for
# `npm run conformance` (scripts/conformance/conformance.ts), from Go modules alone (the Go module
# proxy is the only source needed; nothing comes from an image registry):
#   conformance.test   the suite as a test binary: `go test -c` of the package
#                      sigs.k8s.io/gateway-api/conformance (its TestConformance, driven by the
#                      flags of conformance/utils/flags) at GATEWAY_API_VERSION, the release whose
#                      CRDs deploy installs (src/manifests/constants.ts)
#   echo-basic         conformance/echo-basic of the same module: the image
#                      registry.k8s.io/gateway-api/echo-basic the suite's base manifests name
#   echo-server        Istio's echo server and client (istio.io/istio/pkg/test/echo/cmd/server and
#   echo-client        …/client), what upstream's image registry.k8s.io/gateway-api/echo-advanced
#                      is made of (it is Istio's "app" image); the mesh manifests run the server and
#                      the suite sends its requests with `client` inside those pods
# images/test/echo-basic and images/test/echo-advanced package them (scripts/build-images.sh
# --conformance-dir <bin dir>).
#
# Two scratch Go modules (…/<key>/src/, never in the repo), one per upstream, so that neither
# changes the versions the other selects: the first requires the suite's module and the main
# module sigs.k8s.io/gateway-api at the same release (the suite's go.mod names the main module
# by a placeholder version and a replace directive that only applies inside upstream's tree);
# the second requires istio.io/istio at ISTIO_ECHO_VERSION. Each copies its upstream's go
# directive. Everything is built with CGO_ENABLED=0, so the binaries are static and run on any
# base image.
#
# A cold build takes about 4 minutes on 2 cores with the modules already downloaded: Istio's
# echo programs about 2m15s, the suite about 1.5 min; with warm Go caches a rebuild (--force)
# takes seconds.
#
# Results are cached per version and recipe (scripts/lib/go-tool-cache.sh) in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/conformance/<version>-r<recipe>/bin/
# A second run is a no-op.
#
# Output: progress on stderr; on success the bin directory is the last (only) line of stdout,
# e.g.  BIN=$(scripts/build-conformance.sh | tail -1)
#
# Usage: scripts/build-conformance.sh [--force]
#   --force   rebuild even if a complete cached build exists
# Environment:
#   ISTIO_ECHO_VERSION  istio.io/istio module version of the echo programs (default below)
#   NGINX_MESH_CACHE    cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                  go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOCACHE, GOPROXY are honoured (persistent Go caches make rebuilds fast)
set -euo pipefail
cd "$(dirname "$0")/.."

# The Istio commit upstream's echo-advanced image is close to; any later one serves the suite.
DEFAULT_ISTIO_ECHO_VERSION="v0.0.0-20260827124520-eed52ebb66ad"
# Bump when the build recipe changes in a way that should invalidate old caches.
RECIPE_REVISION="1"
ISTIO_ECHO_VERSION="${ISTIO_ECHO_VERSION:-$DEFAULT_ISTIO_ECHO_VERSION}"
GATEWAY_MODULE="sigs.k8s.io/gateway-api"
SUITE_MODULE="$GATEWAY_MODULE/conformance"
ISTIO_MODULE="istio.io/istio"
ISTIO_ECHO="$ISTIO_MODULE/pkg/test/echo/cmd"

log() { printf '[build-conformance] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
# shellcheck source=lib/go-tool-cache.sh
source "scripts/lib/go-tool-cache.sh"

tool_cache_arguments "$0" "$@"
VERSION="$(sed -n "s/^export const GATEWAY_API_VERSION = '\(v[0-9.]*\)';$/\1/p" src/manifests/constants.ts)"
[[ "$VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] ||
  die "cannot read GATEWAY_API_VERSION from src/manifests/constants.ts (got '$VERSION')"
[[ "$ISTIO_ECHO_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die "ISTIO_ECHO_VERSION must be a Go module version such as $DEFAULT_ISTIO_ECHO_VERSION (got '$ISTIO_ECHO_VERSION')"

tool_cache_init conformance "${VERSION}-r${RECIPE_REVISION}"
STAMP_LINES=("recipe_revision=$RECIPE_REVISION" "gateway_api_version=$VERSION"
  "istio_echo_version=$ISTIO_ECHO_VERSION")
cached() {
  [[ "$FORCE" == 0 ]] && tool_cache_valid conformance.test "${STAMP_LINES[@]}" &&
    [[ -x "$BIN_DIR/echo-basic" && -x "$BIN_DIR/echo-server" && -x "$BIN_DIR/echo-client" ]]
}
report_cached() {
  local secs
  secs="$(sed -n 's/^build_seconds=//p' "$STAMP")"
  log "cached: Gateway API $VERSION conformance suite and echo servers (their build took ${secs:-?}s)"
  printf '%s\n' "$BIN_DIR"
}
if cached; then
  report_cached
  exit 0
fi
tool_cache_begin
if cached; then
  report_cached
  exit 0
fi

log "building the Gateway API $VERSION conformance suite and echo servers with $("$GO" version)"
log "GOMODCACHE=$("$GO" env GOMODCACHE) GOCACHE=$("$GO" env GOCACHE); work dir $WORK_DIR"

# The directory of a module version in the module cache (downloading it if needed).
module_dir() {
  local json dir
  json="$("$GO" mod download -json "$1")" || die "go mod download $1 failed"
  dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$dir/go.mod" ]] || die "could not locate the source of $1"
  printf '%s\n' "$dir"
}

# "go" directive of a go.mod file (e.g. 1.26.0).
gomod_go_version() { awk '$1 == "go" && NF == 2 { print $2; exit }' "$1"; }

# new_module <dir> <name> <upstream go.mod>: an empty module with upstream's language version.
new_module() {
  local goversion
  mkdir -p "$1"
  cd "$1"
  "$GO" mod init "$2" >/dev/null 2>&1 || die "go mod init $2 failed"
  goversion="$(gomod_go_version "$3")"
  if [[ -n "$goversion" ]]; then "$GO" mod edit "-go=$goversion"; fi
}

build_suite() {
  local upstream main_version
  cd "$WORK_DIR"
  upstream="$(module_dir "$SUITE_MODULE@$VERSION")"
  new_module "$WORK_DIR/src/suite" nginx-meshctl.invalid/conformance "$upstream/go.mod"
  log "resolving the suite's dependencies (go get)…"
  # -t: the test binary needs the package's test dependencies (testify) too.
  run_go get -t "$SUITE_MODULE@$VERSION" "$GATEWAY_MODULE@$VERSION" "$SUITE_MODULE/echo-basic@$VERSION"
  main_version="$("$GO" list -m -f '{{.Version}}' "$GATEWAY_MODULE")"
  [[ "$main_version" == "$VERSION" ]] ||
    die "$GATEWAY_MODULE is selected at $main_version, the suite at $VERSION: they must be one release"
  log "compiling conformance.test…"
  run_go test -c -p 2 -ldflags "-s -w" -o "$WORK_DIR/bin/conformance.test" "$SUITE_MODULE"
  log "compiling echo-basic…"
  run_go build -p 2 -ldflags "-s -w" -o "$WORK_DIR/bin/echo-basic" "$SUITE_MODULE/echo-basic"
}

build_istio_echo() {
  local upstream
  cd "$WORK_DIR"
  upstream="$(module_dir "$ISTIO_MODULE@$ISTIO_ECHO_VERSION")"
  grep -q '^replace' "$upstream/go.mod" &&
    die "$ISTIO_MODULE@$ISTIO_ECHO_VERSION has replace directives, which this recipe does not copy"
  new_module "$WORK_DIR/src/istio-echo" nginx-meshctl.invalid/istio-echo "$upstream/go.mod"
  log "resolving Istio's echo dependencies (go get)…"
  run_go get "$ISTIO_ECHO/server@$ISTIO_ECHO_VERSION" "$ISTIO_ECHO/client@$ISTIO_ECHO_VERSION"
  log "compiling Istio's echo server and client…"
  run_go build -p 2 -ldflags "-s -w" -o "$WORK_DIR/bin/echo-server" "$ISTIO_ECHO/server"
  run_go build -p 2 -ldflags "-s -w" -o "$WORK_DIR/bin/echo-client" "$ISTIO_ECHO/client"
}

verify_binaries() {
  local tests
  tests="$("$WORK_DIR/bin/conformance.test" -test.list '.*' 2>&1)" ||
    die "conformance.test -test.list failed: $tests"
  [[ "$tests" == *TestConformance* ]] || die "conformance.test lists no TestConformance: $tests"
  "$WORK_DIR/bin/echo-server" --help >/dev/null 2>&1 || die "echo-server --help failed"
  "$WORK_DIR/bin/echo-client" --help >/dev/null 2>&1 || die "echo-client --help failed"
  [[ -x "$WORK_DIR/bin/echo-basic" ]] || die "echo-basic was not built"
  log "the binaries run; conformance.test has $(printf '%s\n' "$tests" | grep -c '^Test') tests"
}

build_suite
build_istio_echo
verify_binaries

BUILD_SECONDS="$(tool_cache_seconds)"
SUMS="$(cd "$WORK_DIR/bin" && sha256sum conformance.test echo-basic echo-server echo-client |
  awk '{ print "sha256_" $2 "=" $1 }')"
tool_cache_publish >/dev/null <<STAMP
$(printf '%s\n' "${STAMP_LINES[@]}")
go_version=$("$GO" env GOVERSION)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$BUILD_SECONDS
$SUMS
STAMP
log "$(du -sh "$BIN_DIR" | cut -f1)	$BIN_DIR"
log "build took ${BUILD_SECONDS}s (cold if the Go build cache was empty)"
printf '%s\n' "$BIN_DIR"
