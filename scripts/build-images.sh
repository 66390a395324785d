#!/usr/bin/env bash
# Build the mesh's container images from the repository root with Docker or Podman:
# nginx-mesh-controller, nginx-mesh-init and nginx-mesh-sidecar (images/<name>/Dockerfile).
# Tags: <registry>/nginx-mesh-<name>:<tag>, the references `deploy --registry-server R
# --image-tag T` writes into the manifests.
#
# Usage: scripts/build-images.sh [--registry R] [--tag T] [name...]
#   --registry R   default: docker-registry.nginx.com/nsm (deploy's default registry)
#   --tag T        default: the version in package.json (deploy's default image tag)
#   name...        controller, init, sidecar (default: all three)
# Environment:
#   CONTAINER_ENGINE   docker or podman (default: whichever is on PATH, docker first)
# Exits 2 when no engine is installed.
set -euo pipefail

die() {
  echo "build-images: $*" >&2
  exit 1
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY="docker-registry.nginx.com/nsm"
TAG=""
NAMES=()
while (($# > 0)); do
  case "$1" in
    --registry) REGISTRY="${2:?--registry needs a value}" && shift 2 ;;
    --tag) TAG="${2:?--tag needs a value}" && shift 2 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    -*) die "unknown option: $1 (try --help)" ;;
    *) NAMES+=("$1") && shift ;;
  esac
done
((${#NAMES[@]} > 0)) || NAMES=(controller init sidecar)

ENGINE="${CONTAINER_ENGINE:-}"
if [[ -z "$ENGINE" ]]; then
  for candidate in docker podman; do
    if command -v "$candidate" >/dev/null; then ENGINE="$candidate" && break; fi
  done
fi
if [[ -z "$ENGINE" ]] || ! command -v "$ENGINE" >/dev/null; then
  echo "build-images: no container engine found: install docker or podman (or set CONTAINER_ENGINE)" >&2
  exit 2
fi

cd "$REPO"
VERSION="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -1)"
TAG="${TAG:-$VERSION}"
# The build context has no .git, so the commit that `version` reports is passed in.
COMMIT="$(git rev-parse --short=7 HEAD 2>/dev/null || echo local)"

for name in "${NAMES[@]}"; do
  [[ -f "images/$name/Dockerfile" ]] || die "no image $name: expected images/$name/Dockerfile"
  image="$REGISTRY/nginx-mesh-$name:$TAG"
  echo "build-images: $ENGINE build $image" >&2
  "$ENGINE" build -f "images/$name/Dockerfile" -t "$image" \
    --build-arg "VERSION=$VERSION" --build-arg "COMMIT=$COMMIT" . ||
    die "building $image failed (output above)"
done
