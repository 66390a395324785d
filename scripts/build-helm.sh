#!/usr/bin/env bash
# Build the helm client the chart tests run (helm lint, template, install, upgrade,
# uninstall), from the Go module helm.sh/helm/v4 (the Go module proxy is the only source
# needed). `helm version` reports the release: the version variable is set at link time,
# as helm's own Makefile does.
#
# Results are cached per version and recipe (scripts/lib/go-tool-cache.sh) in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/helm/<version>-r<recipe>/bin/helm
# A second run is a no-op.
#
# Output: progress on stderr; on success the bin directory is the last (only) line of
# stdout, e.g.  BIN=$(scripts/build-helm.sh | tail -1)
#
# Usage: scripts/build-helm.sh [--force]
# Environment:
#   HELM_VERSION       version to build (default below; with or without leading "v")
#   NGINX_MESH_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                 go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOCACHE, GOPROXY are honoured
set -euo pipefail

DEFAULT_HELM_VERSION="4.3.2"
RECIPE_REVISION="1"
HELM_VERSION="${HELM_VERSION:-$DEFAULT_HELM_VERSION}"
HELM_VERSION="${HELM_VERSION#v}"
HELM_MODULE="helm.sh/helm/v4"

log() { printf '[build-helm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/go-tool-cache.sh
source "$(dirname "$0")/lib/go-tool-cache.sh"

tool_cache_arguments "$0" "$@"
[[ "$HELM_VERSION" =~ ^4\.[0-9]+\.[0-9]+$ ]] || die "HELM_VERSION must look like 4.3.2 (got '$HELM_VERSION')"

tool_cache_init helm "${HELM_VERSION}-r${RECIPE_REVISION}"
cached() { [[ "$FORCE" == 0 ]] && tool_cache_valid helm "recipe_revision=$RECIPE_REVISION" "helm_version=v$HELM_VERSION"; }
report_cached() {
  log "cached: helm v$HELM_VERSION (its build took $(sed -n 's/^build_seconds=//p' "$STAMP")s)"
  printf '%s\n' "$BIN_DIR"
}
if cached; then report_cached; exit 0; fi
tool_cache_begin
if cached; then report_cached; exit 0; fi

log "building helm v$HELM_VERSION with $("$GO" version)"
# `go install module/cmd@version` builds with exactly the versions helm's own go.mod selects.
GOBIN="$WORK_DIR/bin" run_go install -p 2 \
  -ldflags "-s -w -X $HELM_MODULE/internal/version.version=v$HELM_VERSION -X $HELM_MODULE/internal/version.gitTreeState=clean" \
  "$HELM_MODULE/cmd/helm@v$HELM_VERSION"

out="$("$WORK_DIR/bin/helm" version --template '{{.Version}}' 2>&1)"
[[ "$out" == "v$HELM_VERSION" ]] || die "helm version reports '$out', expected v$HELM_VERSION"
log "helm runs and reports $out"

BUILD_SECONDS="$(tool_cache_seconds)"
tool_cache_publish <<STAMP
helm_version=v$HELM_VERSION
recipe_revision=$RECIPE_REVISION
go_version=$("$GO" env GOVERSION)
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
build_seconds=$BUILD_SECONDS
sha256=$(sha256sum "$WORK_DIR/bin/helm" | cut -d' ' -f1)
STAMP
log "build took ${BUILD_SECONDS}s"
