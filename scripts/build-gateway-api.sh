#!/usr/bin/env bash
# Writes the Gateway API CRDs that deploy installs when a cluster lacks them, from the release
# itself: the Go module sigs.k8s.io/gateway-api at GATEWAY_API_VERSION (src/manifests/constants.ts)
# through the Go module proxy, which checks it against the checksum database. The standard
# channel's CRDs (config/crd/standard/) of the kinds the mesh reads or leaves for others to use
# (GatewayClass, Gateway, HTTPRoute, GRPCRoute, ReferenceGrant) become one JSON file the code
# imports:
#   src/manifests/gateway-api/crds.generated.json   (git ignores it; never edit it)
# holding {"generator", "version", "channel", "crds": [...]}, the CRDs in apply order, exactly as
# the release has them.
#
# Results are cached per version and recipe in
#   ${NGINX_MESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nginx-meshctl}/gateway-api/<version>-r<recipe>/
# and the file is only rewritten when it is not the one for this version and recipe, so a second
# run is a no-op that needs neither Go nor the network.
#
# Usage: scripts/build-gateway-api.sh [--force]
#   --force   fetch and convert again even if the file and the cache are current
# Environment:
#   NGINX_MESH_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/nginx-meshctl)
#   GO                 go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE, GOPROXY, GONOSUMDB… are honoured
set -euo pipefail
cd "$(dirname "$0")/.."

# Bump when the conversion changes in a way that should invalidate old files and caches.
RECIPE_REVISION="1"
MODULE="sigs.k8s.io/gateway-api"
CHANNEL="standard"
KINDS=(gatewayclasses gateways httproutes grpcroutes referencegrants)
OUTPUT="src/manifests/gateway-api/crds.generated.json"

log() { printf '[build-gateway-api] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=lib/go-tool-cache.sh
source "$(dirname "$0")/lib/go-tool-cache.sh"
tool_cache_arguments "$0" "$@"

VERSION="$(sed -n "s/^export const GATEWAY_API_VERSION = '\(v[0-9.]*\)';$/\1/p" src/manifests/constants.ts)"
[[ "$VERSION" =~ ^v1\.[0-9]+\.[0-9]+$ ]] ||
  die "cannot read GATEWAY_API_VERSION from src/manifests/constants.ts (got '$VERSION')"
GENERATOR="scripts/build-gateway-api.sh r$RECIPE_REVISION"
NODE="node_modules/.bin/node"
[[ -x "$NODE" ]] || die "run npm ci first: the conversion runs on the pinned Node with the yaml package"

# The file is current when it was written by this recipe for this version.
current() {
  local start
  [[ "$FORCE" == 0 && -f "$OUTPUT" ]] || return 1
  start="$(head -c 200 "$OUTPUT")"
  [[ "$start" == "{\"generator\":\"$GENERATOR\",\"version\":\"$VERSION\","* ]]
}
if current; then
  log "up to date: Gateway API $VERSION ($CHANNEL channel) in $OUTPUT"
  exit 0
fi

tool_cache_init gateway-api "${VERSION}-r${RECIPE_REVISION}"
CACHED="$FINAL_DIR/crds.json"
cached() { [[ "$FORCE" == 0 && -f "$STAMP" && -f "$CACHED" ]] && grep -qx "version=$VERSION" "$STAMP"; }

if ! cached; then
  tool_cache_begin
  if ! cached; then
    log "fetching $MODULE@$VERSION with $("$GO" version)"
    mkdir -p "$WORK_DIR/module"
    (cd "$WORK_DIR/module" && "$GO" mod init nginx-meshctl.invalid/gateway-api >/dev/null 2>&1)
    json="$(cd "$WORK_DIR/module" && "$GO" mod download -json "$MODULE@$VERSION")" ||
      die "go mod download $MODULE@$VERSION failed"
    source_dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -d "$source_dir/config/crd/$CHANNEL" ]] ||
      die "$MODULE@$VERSION has no config/crd/$CHANNEL directory"
    files=()
    for kind in "${KINDS[@]}"; do
      file="$source_dir/config/crd/$CHANNEL/gateway.networking.k8s.io_$kind.yaml"
      [[ -f "$file" ]] || die "$MODULE@$VERSION lacks $file"
      files+=("$file")
    done
    "$NODE" -e '
      const { readFileSync, writeFileSync } = require("node:fs");
      const { parseAllDocuments } = require("yaml");
      const [output, version, channel, ...files] = process.argv.slice(1);
      const crds = files.flatMap((file) =>
        parseAllDocuments(readFileSync(file, "utf8"))
          .map((document) => {
            if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0].message}`);
            return document.toJS();
          })
          .filter((object) => object !== null),
      );
      for (const crd of crds) {
        const annotations = crd.metadata?.annotations ?? {};
        if (crd.kind !== "CustomResourceDefinition") throw new Error(`not a CRD: ${crd.kind}`);
        if (annotations["gateway.networking.k8s.io/bundle-version"] !== version)
          throw new Error(`${crd.metadata.name} is not of ${version}`);
        if (annotations["gateway.networking.k8s.io/channel"] !== channel)
          throw new Error(`${crd.metadata.name} is not of the ${channel} channel`);
      }
      writeFileSync(output, JSON.stringify(crds));
    ' "$WORK_DIR/crds.json" "$VERSION" "$CHANNEL" "${files[@]}"
    tool_cache_publish >/dev/null <<STAMP
version=$VERSION
channel=$CHANNEL
recipe_revision=$RECIPE_REVISION
kinds=${KINDS[*]}
fetched_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sha256=$(sha256sum "$WORK_DIR/crds.json" | cut -d' ' -f1)
STAMP
  fi
fi

# The header fields first, so that `current` reads them from the file's start.
mkdir -p "$(dirname "$OUTPUT")"
{
  printf '{"generator":"%s","version":"%s","channel":"%s","crds":' "$GENERATOR" "$VERSION" "$CHANNEL"
  cat "$CACHED"
  printf '}\n'
} >"$OUTPUT.tmp"
mv "$OUTPUT.tmp" "$OUTPUT"
log "wrote Gateway API $VERSION ($CHANNEL channel: ${KINDS[*]}) to $OUTPUT"
