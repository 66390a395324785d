#!/usr/bin/env bash
# Build the project's container images from the repository root, with nothing pulled:
#   controller, init, sidecar   the mesh: <registry>/nginx-mesh-<name>:<tag>, the references
#                               `deploy --registry-server R --image-tag T` writes
#   nats                        <registry>/nats:2.9, Debian's nats-server 2.9
#   echo-server, client         the tests' apps: <registry>/nginx-mesh-test-<name>:<tag>
#   pause                       registry.k8s.io/pause:3.10.1, a node's sandbox image
#   coredns                     <registry>/coredns:<its version>, the test cluster's DNS, from
#                               the binary --coredns-binary names (built with Go by
#                               scripts/build-coredns.sh); left out unless that is given
#   echo-basic, echo-advanced   the Gateway API conformance suite's echo apps, under the
#                               references its manifests name (registry.k8s.io/gateway-api/
#                               echo-basic:v1.5.1, …/echo-advanced:v1.5.1), from the binaries in
#                               the directory --conformance-dir names (built with Go by
#                               scripts/build-conformance.sh); left out unless that is given
# Each comes from images/<name>/Dockerfile (test apps: images/test/<name>/Dockerfile).
# controller, init and sidecar build on one common image (images/base): they share its layers,
# the executable's among them. Before anything else the Debian bases are made locally when the
# engine lacks them: docker.io/library/debian:12 and :12-slim with mmdebstrap (minbase,
# bookworm, the machine's apt sources in /etc/apt/sources.list.d/debian.sources; slim leaves
# out documentation, manuals and locales, for later installs too).
#
# Usage: scripts/build-images.sh [--registry R] [--tag T] [--archive-dir D] [--push] [name...]
#   --registry R      default: localhost (images built here, not a registry's)
#   --tag T           default: the version in package.json
#   --archive-dir D   also write each image to D as a docker-archive tar (for
#                     `ctr -n k8s.io images import`) and print `<image>\t<tar path>` lines on
#                     stdout, one per image and nothing else. An archive is reused, without a
#                     build, while the inputs it was built from are unchanged.
#   --push            push each image to the registry (no TLS for localhost:<port>, 127.0.0.1:<port>)
#   --insecure-registry  push over plain HTTP whatever the registry's name
#   --coredns-binary B  the CoreDNS binary the coredns image carries
#   --conformance-dir D  the bin directory of scripts/build-conformance.sh (echo-basic,
#                     echo-server, echo-client), which the conformance echo images carry
#   name...           controller init sidecar nats echo-server client pause coredns echo-basic
#                     echo-advanced (default: all; coredns only with --coredns-binary, the
#                     conformance echo images only with --conformance-dir)
# Progress goes to stderr and ends with each image's size.
# Environment:
#   CONTAINER_ENGINE  docker, podman or buildah (default: docker if `docker info` works, else
#                     podman, else buildah)
#   NGINX_MESH_CACHE  cache root (default: ~/.cache/nginx-meshctl). buildah keeps its images and
#                     layer cache in $NGINX_MESH_CACHE/containers/storage, not in
#                     /var/lib/containers: list them with
#                     `buildah --root "$NGINX_MESH_CACHE/containers/storage" images`.
#   BUILD_CA_BUNDLE   CA bundle npm trusts inside the build (default:
#                     /etc/ssl/certs/ca-certificates.crt), passed as the build secret "ca"
# Build steps run in the host's network namespace (--network host): the engine adds no bridge
# or firewall rules to the host. Exits 2 when no engine works, 1 when a build fails.
set -euo pipefail

# Bump when the way images are built changes in a way that should invalidate old archives.
RECIPE_REVISION=1
ALL_NAMES=(controller init sidecar nats echo-server client pause coredns echo-basic echo-advanced)
CONFORMANCE_NAMES=(echo-basic echo-advanced)
MESH_NAMES=(controller init sidecar)
PAUSE_IMAGE="registry.k8s.io/pause:3.10.1"
# The tag the mesh names NATS by (NATS_IMAGE in src/manifests/constants.ts), which
# `deploy --disable-public-images` looks up in the given registry.
NATS_TAG="2.9"
# The references the Gateway API conformance suite's manifests (embedded in its test binary) give
# its echo apps; the images made here carry them, so that the node never needs to pull.
CONFORMANCE_ECHO_REGISTRY="registry.k8s.io/gateway-api"
CONFORMANCE_ECHO_TAG="v1.5.1"
DEBIAN_IMAGE="docker.io/library/debian:12"
DEBIAN_SLIM_IMAGE="docker.io/library/debian:12-slim"
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources

log() { printf 'build-images: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY="localhost"
TAG=""
ARCHIVE_DIR=""
PUSH=0
INSECURE=0
COREDNS_BINARY=""
CONFORMANCE_DIR=""
NAMES=()
while (($# > 0)); do
  case "$1" in
    --registry) REGISTRY="${2:?--registry needs a value}" && shift 2 ;;
    --tag) TAG="${2:?--tag needs a value}" && shift 2 ;;
    --archive-dir) ARCHIVE_DIR="${2:?--archive-dir needs a value}" && shift 2 ;;
    --push) PUSH=1 && shift ;;
    --insecure-registry) INSECURE=1 && shift ;;
    --coredns-binary) COREDNS_BINARY="${2:?--coredns-binary needs a value}" && shift 2 ;;
    --conformance-dir) CONFORMANCE_DIR="${2:?--conformance-dir needs a value}" && shift 2 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    -*) echo "build-images: unknown option: $1 (try --help)" >&2 && exit 2 ;;
    *) NAMES+=("$1") && shift ;;
  esac
done
if ((${#NAMES[@]} == 0)); then
  for name in "${ALL_NAMES[@]}"; do
    [[ "$name" == coredns && -z "$COREDNS_BINARY" ]] && continue
    [[ " ${CONFORMANCE_NAMES[*]} " == *" $name "* && -z "$CONFORMANCE_DIR" ]] && continue
    NAMES+=("$name")
  done
fi
for name in "${CONFORMANCE_NAMES[@]}"; do
  [[ " ${NAMES[*]} " == *" $name "* ]] || continue
  for binary in echo-basic echo-server echo-client; do
    [[ -x "$CONFORMANCE_DIR/$binary" ]] || {
      echo "build-images: the $name image needs --conformance-dir <the bin directory of scripts/build-conformance.sh>, with an executable $binary" >&2
      exit 2
    }
  done
  CONFORMANCE_DIR="$(cd "$CONFORMANCE_DIR" && pwd)"
  break
done
if [[ " ${NAMES[*]} " == *" coredns "* ]]; then
  [[ -x "$COREDNS_BINARY" ]] || {
    echo "build-images: the coredns image needs --coredns-binary <path to an executable coredns>" >&2
    exit 2
  }
  COREDNS_BINARY="$(cd "$(dirname "$COREDNS_BINARY")" && pwd)/$(basename "$COREDNS_BINARY")"
  COREDNS_VERSION="$("$COREDNS_BINARY" -version | sed -n 's/^CoreDNS-\([0-9.]*\)$/\1/p' | sed -n 1p)"
  [[ -n "$COREDNS_VERSION" ]] || die "$COREDNS_BINARY -version printed no CoreDNS version"
fi
for name in "${NAMES[@]}"; do
  [[ " ${ALL_NAMES[*]} " == *" $name "* ]] || {
    echo "build-images: unknown image $name: expected one of ${ALL_NAMES[*]}" >&2
    exit 2
  }
done

cd "$REPO"
# The executable embeds the Gateway API CRDs, a generated file git ignores but the build context
# carries (.dockerignore lets it through): make sure it is there and current.
bash scripts/build-gateway-api.sh
VERSION="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | sed -n 1p)"
TAG="${TAG:-$VERSION}"
CACHE="${NGINX_MESH_CACHE:-$HOME/.cache/nginx-meshctl}"
CA_BUNDLE="${BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -r "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (set BUILD_CA_BUNDLE)"
if [[ -n "$ARCHIVE_DIR" ]]; then
  mkdir -p "$ARCHIVE_DIR"
  ARCHIVE_DIR="$(cd "$ARCHIVE_DIR" && pwd)"
fi

# --- the engine ---------------------------------------------------------------------------------

ENGINE="${CONTAINER_ENGINE:-}"
if [[ -z "$ENGINE" ]]; then
  # A docker client without a reachable daemon is no engine.
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
  elif command -v podman >/dev/null; then
    ENGINE=podman
  elif command -v buildah >/dev/null; then
    ENGINE=buildah
  fi
fi
if [[ -z "$ENGINE" ]] || ! command -v "$ENGINE" >/dev/null; then
  echo "build-images: no container engine found: install buildah, podman or docker (or set CONTAINER_ENGINE)" >&2
  exit 2
fi
case "$(basename "$ENGINE")" in
  buildah) KIND=buildah ;;
  podman) KIND=podman ;;
  docker) KIND=docker ;;
  *) echo "build-images: CONTAINER_ENGINE=$ENGINE: expected docker, podman or buildah" >&2 && exit 2 ;;
esac
# buildah's images live under the cache; it is a daemonless tool, so nothing else needs them
# in /var/lib/containers. Its run root holds only locks and mount state: /run, gone at reboot.
ENGINE_CMD=("$ENGINE")
if [[ "$KIND" == buildah ]]; then
  RUN_ROOT="${XDG_RUNTIME_DIR:-/run}/nginx-meshctl/containers"
  [[ "$(id -u)" == 0 ]] || RUN_ROOT="${XDG_RUNTIME_DIR:-/tmp}/nginx-meshctl-containers"
  ENGINE_CMD+=(--root "$CACHE/containers/storage" --runroot "$RUN_ROOT")
fi
engine() { "${ENGINE_CMD[@]}" "$@"; }

has_image() {
  case "$KIND" in
    buildah) engine inspect --type image "$1" >/dev/null 2>&1 ;;
    *) engine image inspect "$1" >/dev/null 2>&1 ;;
  esac
}

# engine_build <dockerfile> <image> [build args...]; the context is $BUILD_CONTEXT (default .)
engine_build() {
  local dockerfile="$1" image="$2" context="${BUILD_CONTEXT:-.}"
  shift 2
  local args=(--network host -f "$dockerfile" -t "$image" --secret "id=ca,src=$CA_BUNDLE" "$@")
  case "$KIND" in
    buildah) engine bud --layers --pull=never "${args[@]}" "$context" >&2 ;;
    podman) engine build --layers --pull=never "${args[@]}" "$context" >&2 ;;
    docker) DOCKER_BUILDKIT=1 engine build --pull=false "${args[@]}" "$context" >&2 ;;
  esac
}

# engine_import <rootfs tar> <image>: a one-layer image of a root file system, as Debian's own.
engine_import() {
  local tar="$1" image="$2"
  case "$KIND" in
    buildah)
      local container
      container="$(engine from scratch)"
      engine add "$container" "$tar" / >&2
      engine config --cmd '["bash"]' \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container" >&2
      engine commit --rm "$container" "$image" >&2
      ;;
    *) engine import --change 'CMD ["bash"]' "$tar" "$image" >&2 ;;
  esac
}

# engine_save <image> <tar>
engine_save() {
  case "$KIND" in
    docker) engine save -o "$2" "$1" >&2 ;;
    *) engine push --quiet "$1" "docker-archive:$2:$1" >&2 ;;
  esac
}

engine_push() {
  local image="$1" tls=()
  if [[ ("$INSECURE" == 1 || "$image" =~ ^(localhost|127\.0\.0\.1):[0-9]+/) && "$KIND" != docker ]]; then
    tls=(--tls-verify=false)
  fi
  engine push "${tls[@]}" "$image" >&2
}

image_size() {
  case "$KIND" in
    buildah) engine images --format '{{.Size}}' "$1" 2>/dev/null | sed -n 1p ;;
    *) engine image ls --format '{{.Size}}' "$1" 2>/dev/null | sed -n 1p ;;
  esac
}

# --- the Debian bases and the common mesh base ---------------------------------------------------

# make_debian_base <image> [slim]: mmdebstrap's minbase of bookworm with the machine's apt sources.
make_debian_base() {
  local image="$1" slim="${2:-}" work
  command -v mmdebstrap >/dev/null || die "$image is missing and mmdebstrap is not installed (apt-get install mmdebstrap)"
  [[ -r "$DEBIAN_SOURCES" ]] || die "$image needs the machine's apt sources at $DEBIAN_SOURCES"
  local options=(--variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
  if [[ -n "$slim" ]]; then
    # Written to /etc/dpkg/dpkg.cfg.d, so packages installed later leave the same out.
    options+=(
      --dpkgopt='path-exclude=/usr/share/doc/*'
      --dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-exclude=/usr/share/man/*'
      --dpkgopt='path-exclude=/usr/share/info/*'
      --dpkgopt='path-exclude=/usr/share/locale/*'
      --dpkgopt='path-include=/usr/share/locale/locale.alias'
      --dpkgopt='path-exclude=/usr/share/lintian/*'
      --dpkgopt='path-exclude=/usr/share/linda/*'
      --dpkgopt='path-exclude=/usr/share/groff/*'
    )
  fi
  # apt lists and cache are emptied by mmdebstrap; the sources stay in deb822 form, one file.
  # shellcheck disable=SC2016 # expanded by the hook's shell
  options+=(--customize-hook='rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*')
  options+=(--customize-hook="copy-in $DEBIAN_SOURCES /etc/apt/sources.list.d")
  work="$(mktemp -d "${TMPDIR:-/tmp}/nginx-mesh-base.XXXXXX")"
  log "making $image with mmdebstrap (about a minute)"
  if ! mmdebstrap "${options[@]}" bookworm "$work/rootfs.tar" "$DEBIAN_SOURCES" 2>"$work/log"; then
    tail -n 30 "$work/log" >&2
    rm -rf "$work"
    die "mmdebstrap failed for $image (output above)"
  fi
  engine_import "$work/rootfs.tar" "$image"
  rm -rf "$work"
}

ensure_debian_bases() {
  [[ -n "${BASES_READY:-}" ]] && return 0
  has_image "$DEBIAN_IMAGE" || make_debian_base "$DEBIAN_IMAGE"
  has_image "$DEBIAN_SLIM_IMAGE" || make_debian_base "$DEBIAN_SLIM_IMAGE" slim
  BASES_READY=1
}

# The commit `version` reports: the last one that changed what goes into the executable, so a
# commit elsewhere leaves the images (and their archives) as they are.
BINARY_INPUTS=(package.json package-lock.json tsconfig.json bin src scripts/build-binary.mjs images/base/Dockerfile)
COMMIT="$(git log -1 --format=%h --abbrev=7 -- "${BINARY_INPUTS[@]}" 2>/dev/null || true)"
COMMIT="${COMMIT:-local}"
BASE_IMAGE="localhost/nginx-mesh-base:$TAG"

# Built once per run, and again when what goes into the executable changed since.
ensure_mesh_base() {
  local key
  key="$(find "${BINARY_INPUTS[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)"
  [[ "${MESH_BASE_KEY:-}" == "$key" ]] && return 0
  log "building $BASE_IMAGE (images/base/Dockerfile)"
  engine_build images/base/Dockerfile "$BASE_IMAGE" --build-arg "COMMIT=$COMMIT" ||
    die "building $BASE_IMAGE failed (output above)"
  MESH_BASE_KEY="$key"
}

# --- one image ---------------------------------------------------------------------------------

image_ref() {
  case "$1" in
    controller | init | sidecar) echo "$REGISTRY/nginx-mesh-$1:$TAG" ;;
    nats) echo "$REGISTRY/nats:$NATS_TAG" ;;
    echo-server | client) echo "$REGISTRY/nginx-mesh-test-$1:$TAG" ;;
    pause) echo "$PAUSE_IMAGE" ;;
    coredns) echo "$REGISTRY/coredns:$COREDNS_VERSION" ;;
    echo-basic | echo-advanced) echo "$CONFORMANCE_ECHO_REGISTRY/$1:$CONFORMANCE_ECHO_TAG" ;;
  esac
}

dockerfile_of() {
  case "$1" in
    echo-server | client | echo-basic | echo-advanced) echo "images/test/$1/Dockerfile" ;;
    *) echo "images/$1/Dockerfile" ;;
  esac
}

# The files an image is made from, besides its Dockerfile.
inputs_of() {
  local deps=(package.json package-lock.json)
  case "$1" in
    controller | init) echo "${BINARY_INPUTS[@]}" ;;
    sidecar) echo "${BINARY_INPUTS[@]}" scripts/build-ngx-mesh.sh images/sidecar/ngx_mesh ;;
    echo-server) echo "${deps[@]}" tsconfig.json scripts/run-ts.mjs src test/cluster/apps ;;
    client) echo "${deps[@]}" ;;
    nats) ;;
    pause) echo images/pause ;;
    coredns) echo "$COREDNS_BINARY" ;;
    echo-basic) echo "$CONFORMANCE_DIR/echo-basic" ;;
    echo-advanced) echo "$CONFORMANCE_DIR/echo-server" "$CONFORMANCE_DIR/echo-client" ;;
  esac
}

# A hash of everything the image is built from: file names and contents (build output such as
# images/sidecar/ngx_mesh/build/ is left out, as .dockerignore leaves it out of the context).
inputs_key() {
  local name="$1" paths
  read -r -a paths <<<"$(inputs_of "$name") $(dockerfile_of "$name")"
  {
    echo "recipe=$RECIPE_REVISION ref=$(image_ref "$name")"
    # The mesh images carry the version and the commit (labels, and what `version` prints).
    if [[ " ${MESH_NAMES[*]} " == *" $name "* ]]; then echo "version=$VERSION commit=$COMMIT"; fi
    find "${paths[@]}" -type f -not -path '*/ngx_mesh/build/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

declare -A SIZES=()
OUTPUT_LINES=()

human_size() { numfmt --to=iec --suffix=B "$1" 2>/dev/null || echo "${1}B"; }

build_image() {
  local name="$1" image="$2" dockerfile="$3"
  case "$name" in
    controller | init | sidecar)
      ensure_mesh_base
      engine_build "$dockerfile" "$image" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --build-arg "VERSION=$VERSION" || die "building $image failed (output above)"
      ;;
    coredns | echo-basic | echo-advanced)
      # A context of its own: the binaries alone, from outside the repository.
      local context binary
      context="$(mktemp -d "${TMPDIR:-/tmp}/nginx-mesh-$name.XXXXXX")"
      for binary in $(inputs_of "$name"); do cp "$binary" "$context/"; done
      BUILD_CONTEXT="$context" engine_build "$REPO/$dockerfile" "$image" || {
        rm -rf "$context"
        die "building $image failed (output above)"
      }
      rm -rf "$context"
      ;;
    *) engine_build "$dockerfile" "$image" || die "building $image failed (output above)" ;;
  esac
}

build_one() {
  local name="$1" image dockerfile key archive
  image="$(image_ref "$name")"
  dockerfile="$(dockerfile_of "$name")"
  [[ -f "$dockerfile" ]] || die "no image $name: expected $dockerfile"
  if [[ -n "$ARCHIVE_DIR" ]]; then
    key="$(inputs_key "$name")"
    archive="$ARCHIVE_DIR/$name-$key.tar"
    if [[ -f "$archive" && "$PUSH" == 0 ]]; then
      log "$image: up to date in $archive"
      SIZES[$image]="$(human_size "$(stat -c %s "$archive")") (archive)"
      OUTPUT_LINES+=("$image"$'\t'"$archive")
      return 0
    fi
  fi
  local started=$SECONDS attempt
  ensure_debian_bases
  # Sources edited during a build could end up in an archive named after the older inputs:
  # then it is built again (from the layer cache, so only what changed).
  for attempt in 1 2 3; do
    build_image "$name" "$image" "$dockerfile"
    [[ -z "$ARCHIVE_DIR" || "$(inputs_key "$name")" == "$key" ]] && break
    ((attempt < 3)) || die "the inputs of $image keep changing during its build; try again later"
    log "the inputs of $image changed during its build; building it again"
    key="$(inputs_key "$name")"
    archive="$ARCHIVE_DIR/$name-$key.tar"
  done
  log "built $image in $((SECONDS - started))s"
  SIZES[$image]="$(image_size "$image")"
  if [[ -n "$ARCHIVE_DIR" ]]; then
    # Renamed into place when complete: an archive that exists is whole.
    local temporary="$ARCHIVE_DIR/.$name-$key.tar.$$"
    rm -f "$temporary"
    engine_save "$image" "$temporary" || {
      rm -f "$temporary"
      die "writing $archive failed (output above)"
    }
    mv -f "$temporary" "$archive"
    find "$ARCHIVE_DIR" -maxdepth 1 -name "$name-*.tar" -not -name "$name-$key.tar" -delete
    SIZES[$image]="${SIZES[$image]}, archive $(human_size "$(stat -c %s "$archive")")"
    OUTPUT_LINES+=("$image"$'\t'"$archive")
  fi
  if [[ "$PUSH" == 1 ]]; then
    log "pushing $image"
    engine_push "$image" || die "pushing $image failed (output above)"
  fi
}

STARTED=$SECONDS
log "engine: $KIND${ARCHIVE_DIR:+, archives in $ARCHIVE_DIR}"
for name in "${NAMES[@]}"; do build_one "$name"; done
for name in "${NAMES[@]}"; do
  image="$(image_ref "$name")"
  printf 'build-images: %-60s %s\n' "$image" "${SIZES[$image]:-?}" >&2
done
log "done in $((SECONDS - STARTED))s"
if ((${#OUTPUT_LINES[@]} > 0)); then printf '%s\n' "${OUTPUT_LINES[@]}"; fi
