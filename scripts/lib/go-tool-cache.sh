# shellcheck shell=bash
# The cache of third-party programs built from Go modules for the tests (helm, CoreDNS, Jaeger):
# one directory per tool, version and recipe under
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/<tool>/<key>/
# holding bin/ and a stamp. A build happens in a temporary directory under a lock and is renamed
# into place after its stamp is written, so a killed build never looks complete and concurrent
# runs for the same key build once. Go is used only to compile those programs.
#
# A script sources this file, defines log() and die(), then calls, in order:
#   tool_cache_arguments "$0" "$@"   --force (sets FORCE=1) and --help (its header comment)
#   tool_cache_init <tool> <key>      sets TOOL_CACHE, FINAL_DIR, BIN_DIR, STAMP
#   tool_cache_valid <binary> <line>…  0 when the stamp holds every line and bin/<binary> runs
#   tool_cache_begin                  finds Go, takes the lock, makes WORK_DIR (after which the
#                                     script re-checks the cache: another run may have built it)
#   run_go <args>…                    a go command that INT/TERM stop, removing WORK_DIR
#   tool_cache_publish                stamp lines on stdin; prints BIN_DIR

tool_cache_arguments() {
  local script="$1" arg
  shift
  FORCE=0
  for arg in "$@"; do
    case "$arg" in
      --force) FORCE=1 ;;
      -h | --help)
        sed -n '2,/^set -euo/p' "$script" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
        exit 0
        ;;
      *) die "unknown argument: $arg (try --help)" ;;
    esac
  done
}

tool_cache_init() {
  local root="${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}"
  TOOL_CACHE="$root/$1"
  TOOL_KEY="$2"
  FINAL_DIR="$TOOL_CACHE/$TOOL_KEY"
  BIN_DIR="$FINAL_DIR/bin"
  STAMP="$FINAL_DIR/stamp"
}

tool_cache_valid() {
  local binary="$1" line
  shift
  [[ -f "$STAMP" ]] || return 1
  for line in "$@"; do grep -qx -- "$line" "$STAMP" || return 1; done
  [[ -x "$BIN_DIR/$binary" ]]
}

tool_cache_begin() {
  GO="$(command -v "${GO:-go}" || true)"
  if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; fi
  [[ -n "$GO" ]] || die "no Go toolchain found (set GO=/path/to/go)"
  command -v flock >/dev/null || die "flock (util-linux) is required"
  # GOMODCACHE/GOCACHE stay at the user's (persistent) locations, so a rebuild is fast.
  export CGO_ENABLED=0
  export GOFLAGS="-trimpath -buildvcs=false"
  export GOWORK=off
  export GO111MODULE=on

  mkdir -p "$TOOL_CACHE"
  exec 9>"$TOOL_CACHE/.lock-$TOOL_KEY"
  if ! flock -n 9; then
    log "another build of $TOOL_KEY is running; waiting for it…"
    flock 9
  fi
  TOOL_START_SECONDS=$SECONDS
  # Leftovers of an interrupted build of this key (safe to remove: we hold its lock).
  rm -rf "$TOOL_CACHE/.tmp-$TOOL_KEY".*
  WORK_DIR="$(mktemp -d "$TOOL_CACHE/.tmp-$TOOL_KEY.XXXXXX")"
  chmod 0755 "$WORK_DIR"
  mkdir -p "$WORK_DIR/bin"
  trap tool_cache_cleanup EXIT
  trap tool_cache_on_signal INT TERM
}

tool_cache_cleanup() {
  if [[ -n "${WORK_DIR:-}" && -d "$WORK_DIR" ]]; then rm -rf "$WORK_DIR"; fi
}

# go runs as a waited-for background job so that INT/TERM reach the script at once: it then
# stops go and removes the half-built work dir. go gets TERM, not INT: a background job of a
# non-interactive shell starts with INT ignored.
TOOL_CHILD_PID=""
run_go() {
  "$GO" "$@" >&2 &
  TOOL_CHILD_PID=$!
  wait "$TOOL_CHILD_PID"
  TOOL_CHILD_PID=""
}

tool_cache_on_signal() {
  trap - INT TERM
  if [[ -n "$TOOL_CHILD_PID" ]]; then
    kill -TERM "$TOOL_CHILD_PID" 2>/dev/null || true
    wait "$TOOL_CHILD_PID" 2>/dev/null || true
  fi
  log "interrupted"
  exit 130
}

# Seconds since tool_cache_begin.
tool_cache_seconds() { echo $((SECONDS - TOOL_START_SECONDS)); }

tool_cache_publish() {
  cat >"$WORK_DIR/stamp.tmp"
  mv "$WORK_DIR/stamp.tmp" "$WORK_DIR/stamp" # stamp last, then publish atomically
  cd "$TOOL_CACHE"
  if [[ -e "$FINAL_DIR" ]]; then rm -rf "$FINAL_DIR"; fi # stale, incomplete or --force
  mv -T "$WORK_DIR" "$FINAL_DIR"
  WORK_DIR=""
  printf '%s\n' "$BIN_DIR"
}
