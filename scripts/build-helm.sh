#!/usr/bin/env bash
# Build the helm client the chart tests run (helm lint, template, install, upgrade,
# uninstall), from the Go module helm.sh/helm/v4 (the Go module proxy is the only source
# needed). `helm version` reports the release: the version variable is set at link time,
# as helm's own Makefile does.
#
# Results are cached per version and recipe in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/helm/<version>-r<recipe>/bin/helm
# A cached build is only used when its stamp file exists; the stamp is written last, in a
# temporary directory that is then renamed into place, so a killed build never looks
# complete. A second run is a no-op.
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

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done
[[ "$HELM_VERSION" =~ ^4\.[0-9]+\.[0-9]+$ ]] || die "HELM_VERSION must look like 4.3.2 (got '$HELM_VERSION')"

CACHE_ROOT="${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}"
HELM_CACHE="$CACHE_ROOT/helm"
KEY="${HELM_VERSION}-r${RECIPE_REVISION}"
FINAL_DIR="$HELM_CACHE/$KEY"
BIN_DIR="$FINAL_DIR/bin"
STAMP="$FINAL_DIR/stamp"

cache_is_complete() {
  [[ -f "$STAMP" ]] || return 1
  grep -qx "recipe_revision=$RECIPE_REVISION" "$STAMP" || return 1
  grep -qx "helm_version=v$HELM_VERSION" "$STAMP" || return 1
  [[ -x "$BIN_DIR/helm" ]]
}
report_cached() {
  log "cached: helm v$HELM_VERSION (its build took $(sed -n 's/^build_seconds=//p' "$STAMP")s)"
  printf '%s\n' "$BIN_DIR"
}
if [[ "$FORCE" == 0 ]] && cache_is_complete; then
  report_cached
  exit 0
fi

GO="$(command -v "${GO:-go}" || true)"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
[[ -n "$GO" ]] || die "no Go toolchain found (set GO=/path/to/go)"
command -v flock >/dev/null || die "flock (util-linux) is required"

export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false"
export GOWORK=off
export GO111MODULE=on

mkdir -p "$HELM_CACHE"
exec 9>"$HELM_CACHE/.lock-$KEY"
if ! flock -n 9; then
  log "another build of $KEY is running; waiting for it…"
  flock 9
fi
if [[ "$FORCE" == 0 ]] && cache_is_complete; then
  report_cached
  exit 0
fi

START_SECONDS=$SECONDS
rm -rf "$HELM_CACHE/.tmp-$KEY".*
WORK_DIR="$(mktemp -d "$HELM_CACHE/.tmp-$KEY.XXXXXX")"
chmod 0755 "$WORK_DIR"
cleanup() { if [[ -n "${WORK_DIR:-}" && -d "$WORK_DIR" ]]; then rm -rf "$WORK_DIR"; fi; }
trap cleanup EXIT

# go runs as a waited-for background job so that INT/TERM stop it and remove the work dir.
CHILD_PID=""
run_go() {
  "$GO" "$@" >&2 &
  CHILD_PID=$!
  wait "$CHILD_PID"
  CHILD_PID=""
}
on_signal() {
  trap - INT TERM
  if [[ -n "$CHILD_PID" ]]; then
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
  fi
  log "interrupted"
  exit 130
}
trap on_signal INT TERM

log "building helm v$HELM_VERSION with $("$GO" version)"
mkdir -p "$WORK_DIR/bin"
# `go install module/cmd@version` builds with exactly the versions helm's own go.mod selects.
GOBIN="$WORK_DIR/bin" run_go install -p 2 \
  -ldflags "-s -w -X $HELM_MODULE/internal/version.version=v$HELM_VERSION -X $HELM_MODULE/internal/version.gitTreeState=clean" \
  "$HELM_MODULE/cmd/helm@v$HELM_VERSION"

out="$("$WORK_DIR/bin/helm" version --template '{{.Version}}' 2>&1)"
[[ "$out" == "v$HELM_VERSION" ]] || die "helm version reports '$out', expected v$HELM_VERSION"
log "helm runs and reports $out"

BUILD_SECONDS=$((SECONDS - START_SECONDS))
{
  echo "helm_version=v$HELM_VERSION"
  echo "recipe_revision=$RECIPE_REVISION"
  echo "go_version=$("$GO" env GOVERSION)"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$BUILD_SECONDS"
  echo "sha256=$(sha256sum "$WORK_DIR/bin/helm" | cut -d' ' -f1)"
} >"$WORK_DIR/stamp.tmp"
mv "$WORK_DIR/stamp.tmp" "$WORK_DIR/stamp"

cd "$HELM_CACHE"
if [[ -e "$FINAL_DIR" ]]; then rm -rf "$FINAL_DIR"; fi
mv -T "$WORK_DIR" "$FINAL_DIR"
WORK_DIR=""
log "build took ${BUILD_SECONDS}s"
printf '%s\n' "$BIN_DIR"
