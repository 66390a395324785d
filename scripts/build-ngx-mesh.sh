#!/usr/bin/env bash
# Build the sidecar's nginx module (images/sidecar/ngx_mesh/) as a dynamic module for the nginx
# that Debian installed, from the nginx-dev package's build tree (headers, configure, conf_flags;
# no nginx sources are compiled, only the module).
#
# Debian's conf_flags leave out the stream module, which Debian builds separately
# (libnginx-mod-stream), so configure gets the stream flags of Debian's own build
# (`nginx -V`); without them the stream half of the module would not compile, and with different
# ones its structures could differ from the stream module it is loaded next to. After the build,
# the module's ABI signature must equal that of Debian's ngx_stream_module.so, and the installed
# nginx must load it (`nginx -t` of a config that uses every variable), or the build fails.
#
# Output: images/sidecar/ngx_mesh/build/ngx_mesh_module.so (one object holding
# ngx_http_mesh_module and ngx_stream_mesh_module; load it after ngx_stream_module.so).
# Progress on stderr; on success the module's absolute path is the last (only) line of stdout:
#   SO=$(scripts/build-ngx-mesh.sh | tail -1)
# The module and its stamp are renamed into place last, so a killed build never looks complete.
# When the stamp matches the inputs (module sources, this script, the nginx binary and nginx-dev
# version), nothing is rebuilt and the script returns at once.
#
# Usage: scripts/build-ngx-mesh.sh [--force]
#   --force   rebuild even if the module is up to date
# Environment:
#   NGINX            the nginx binary the module is for (default: nginx on PATH, else /usr/sbin/nginx)
#   NGINX_DEV_SRC    nginx-dev's build tree (default: /usr/share/nginx/src)
#   NGX_MESH_OUT     output directory (default: images/sidecar/ngx_mesh/build)
# Needs the Debian packages nginx, libnginx-mod-stream, nginx-dev, gcc and make.
set -euo pipefail

# Bump when the build recipe changes in a way that should invalidate old builds.
RECIPE_REVISION="1"

log() { printf '[build-ngx-mesh] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

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

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_DIR="$REPO/images/sidecar/ngx_mesh"
OUT_DIR="${NGX_MESH_OUT:-$MODULE_DIR/build}"
SO_NAME="ngx_mesh_module.so"
SO="$OUT_DIR/$SO_NAME"
STAMP="$OUT_DIR/ngx_mesh_module.stamp"
NGINX_DEV_SRC="${NGINX_DEV_SRC:-/usr/share/nginx/src}"
# Every source the config file lists: a new .c or .h file counts without editing this line.
MODULE_SOURCES=("$MODULE_DIR/config" "$MODULE_DIR"/*.c "$MODULE_DIR"/*.h)

# Warnings are errors for our module; the rest mirrors Debian's hardening flags (`nginx -V`).
CC_OPT="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 -Wall -Wextra -Werror"
LD_OPT="-Wl,-z,relro -Wl,-z,now -fPIC"

NGINX="$(command -v "${NGINX:-nginx}" || true)"
if [[ -z "$NGINX" && -x /usr/sbin/nginx ]]; then NGINX=/usr/sbin/nginx; fi
INSTALL_HINT="install the Debian packages: apt-get install nginx libnginx-mod-stream nginx-dev gcc make"
[[ -n "$NGINX" ]] || die "no nginx binary found; $INSTALL_HINT"
[[ -f "$NGINX_DEV_SRC/conf_flags" && -x "$NGINX_DEV_SRC/configure" ]] ||
  die "no nginx-dev build tree at $NGINX_DEV_SRC; $INSTALL_HINT"
for tool in gcc make sha256sum strings flock; do
  command -v "$tool" >/dev/null || die "$tool is required; $INSTALL_HINT binutils util-linux"
done

NGINX_V="$("$NGINX" -V 2>&1)" || die "$NGINX -V failed: $NGINX_V"
MODULES_PATH="$(sed -n 's/.*--modules-path=\([^ ]*\).*/\1/p' <<<"$NGINX_V")"
STREAM_SO="${MODULES_PATH:-/usr/lib/nginx/modules}/ngx_stream_module.so"
[[ -f "$STREAM_SO" ]] || die "no stream module at $STREAM_SO; $INSTALL_HINT"

# Debian's stream options: every --with-stream… flag of the installed binary. The module is only
# loadable next to Debian's stream module if the stream core itself is dynamic there too.
read -r -a STREAM_FLAGS <<<"$(grep -o -- '--with-stream[a-z_]*\(=dynamic\)\{0,1\}' <<<"$NGINX_V" |
  grep -v -- '_module=dynamic$' | tr '\n' ' ')"
printf '%s\n' "${STREAM_FLAGS[@]}" | grep -qx -- '--with-stream=dynamic' ||
  die "$NGINX was not built with --with-stream=dynamic; expected Debian's nginx ($NGINX_V)"

# Everything the build depends on; a different key means a rebuild.
inputs_key() {
  {
    echo "recipe_revision=$RECIPE_REVISION"
    sha256sum "${MODULE_SOURCES[@]}" "${BASH_SOURCE[0]}" | cut -d' ' -f1
    sha256sum "$NGINX" "$STREAM_SO" "$NGINX_DEV_SRC/conf_flags" | cut -d' ' -f1
    echo "$CC_OPT" "$LD_OPT"
  } | sha256sum | cut -d' ' -f1
}
KEY="$(inputs_key)"

is_up_to_date() {
  [[ -f "$SO" && -f "$STAMP" ]] && grep -qx "key=$KEY" "$STAMP"
}

if [[ "$FORCE" == 0 ]] && is_up_to_date; then
  log "up to date: $SO"
  printf '%s\n' "$SO"
  exit 0
fi

mkdir -p "$OUT_DIR"
# Serialise concurrent runs (two test files, say), then re-check.
exec 9>"$OUT_DIR/.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it…"
  flock 9
fi
if [[ "$FORCE" == 0 ]] && is_up_to_date; then
  log "up to date: $SO"
  printf '%s\n' "$SO"
  exit 0
fi

START_SECONDS=$SECONDS
rm -rf "$OUT_DIR"/.work.* # leftovers of a killed build (we hold the lock)
WORK_DIR="$(mktemp -d "$OUT_DIR/.work.XXXXXX")"
cleanup() {
  if [[ -n "${WORK_DIR:-}" && -d "$WORK_DIR" ]]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# configure writes into its tree, so it runs in a copy of nginx-dev's.
cp -a "$NGINX_DEV_SRC/." "$WORK_DIR/nginx"
cd "$WORK_DIR/nginx"
NGX_CONF_FLAGS=()
# shellcheck disable=SC1091 # nginx-dev's file, defines the NGX_CONF_FLAGS array
. ./conf_flags
((${#NGX_CONF_FLAGS[@]} > 0)) || die "$NGINX_DEV_SRC/conf_flags defines no NGX_CONF_FLAGS"

log "configuring against $(head -1 <<<"$NGINX_V") with ${STREAM_FLAGS[*]}"
if ! ./configure "${NGX_CONF_FLAGS[@]}" "${STREAM_FLAGS[@]}" \
  --with-cc-opt="$CC_OPT" --with-ld-opt="$LD_OPT" \
  --add-dynamic-module="$MODULE_DIR" >"$WORK_DIR/configure.log" 2>&1; then
  tail -n 30 "$WORK_DIR/configure.log" >&2
  die "configure failed (output above)"
fi

# Only the module's own targets: nginx-dev has no nginx sources, so `make modules` cannot work.
log "compiling the module"
make -f objs/Makefile objs/ngx_http_mesh_module.so >&2 ||
  die "compiling the module failed (output above)"
BUILT="$WORK_DIR/nginx/objs/ngx_http_mesh_module.so"

# The ABI signature nginx checks when it loads a module; it must match Debian's own modules.
signature() {
  strings "$1" | grep -E '^[0-9]+,[0-9]+,[0-9]+,[01]{20,}$' | sed -n 1p
}
WANT_SIG="$(signature "$STREAM_SO")"
GOT_SIG="$(signature "$BUILT")"
[[ -n "$WANT_SIG" && "$GOT_SIG" == "$WANT_SIG" ]] ||
  die "module signature '$GOT_SIG' differs from $STREAM_SO's '$WANT_SIG'"

# Load test: the installed nginx loads the module and knows every variable and directive, in
# http and stream.
mkdir -p "$WORK_DIR/check"
# shellcheck disable=SC2016 # nginx variables, for nginx to expand
VARS='$mesh_original_dst $mesh_original_dst_addr $mesh_original_dst_port $mesh_peer_spiffe_id'
# shellcheck disable=SC2016
TRACE_VARS='$mesh_trace_id $mesh_span_id $mesh_parent_span_id $mesh_trace_sampled $mesh_traceparent'
cat >"$WORK_DIR/check/nginx.conf" <<EOF
load_module $STREAM_SO;
load_module $BUILT;
pid $WORK_DIR/check/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $WORK_DIR/check/body;
    proxy_temp_path $WORK_DIR/check/proxy;
    fastcgi_temp_path $WORK_DIR/check/fastcgi;
    uwsgi_temp_path $WORK_DIR/check/uwsgi;
    scgi_temp_path $WORK_DIR/check/scgi;
    mesh_stats_zone check_http 64k;
    mesh_trace_zone check_trace 64k;
    mesh_trace_ratio 0.5;
    server {
        listen 127.0.0.1:1;
        mesh_stats check_http "\$status" if=\$mesh_original_dst;
        mesh_trace_span check_trace server "\$status";
        location / { return 200 "$VARS $TRACE_VARS"; }
        location = /stats { mesh_stats_dump check_http check_stream; }
        location = /traces { mesh_trace_dump check_trace; }
    }
}
stream {
    mesh_stats_zone check_stream 64k;
    server { listen 127.0.0.1:1; mesh_stats check_stream "\$status"; return "$VARS"; }
}
EOF
if ! CHECK_OUT="$("$NGINX" -t -q -p "$WORK_DIR/check" -c "$WORK_DIR/check/nginx.conf" 2>&1)"; then
  printf '%s\n' "$CHECK_OUT" >&2
  die "$NGINX does not load the module (output above)"
fi

# Publish: module first, stamp last, each by rename.
cp "$BUILT" "$OUT_DIR/.$SO_NAME.tmp"
mv -f "$OUT_DIR/.$SO_NAME.tmp" "$SO"
{
  echo "key=$KEY"
  echo "nginx=$(head -1 <<<"$NGINX_V")"
  echo "nginx_dev=$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || echo unknown)"
  echo "signature=$GOT_SIG"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "build_seconds=$((SECONDS - START_SECONDS))"
  echo "sha256=$(sha256sum "$SO" | cut -d' ' -f1)"
} >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"

log "built $SO in $((SECONDS - START_SECONDS))s (signature $GOT_SIG)"
printf '%s\n' "$SO"
