#!/usr/bin/env bash
# Installs everything the build and the tests need: Debian packages (as root) and the npm
# dependencies, including the pinned Node.js runtime (npm package "node"). Idempotent and quick
# when nothing changed, so every entry point can call it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and tests use: the test cluster needs openssl (its PKI), iproute2
# (network namespaces), iptables (service NAT), util-linux (unshare, setpriv for containers) and
# nats-server (what the nats image runs on the test node); the data plane needs nginx with its
# stream module, and nginx-dev, gcc, make, libc6-dev and binutils to build our nginx module;
# the metrics tests query a real prometheus; the end-to-end tests read a pod's interface with a
# python3 raw socket to check that only TLS passes between sidecars; the demo's traffic generator
# runs curl. The test cluster's node runs containerd, runc and the CNI plugins; its images are
# built with buildah (fuse-overlayfs, uidmap) on Debian bases made with mmdebstrap, and one
# test pushes them to a local registry (docker-registry) and pulls them from there.
APT_PACKAGES=(git ca-certificates bash openssl iproute2 iptables util-linux nats-server
  nginx libnginx-mod-stream nginx-dev gcc make libc6-dev binutils prometheus python3 curl
  containerd runc containernetworking-plugins buildah fuse-overlayfs uidmap mmdebstrap
  docker-registry)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install: missing Debian packages: ${missing[*]}; run as root or install them first" >&2
    exit 1
  fi
  echo "install: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  # Packages such as nginx, nats-server and prometheus would start system services on their default ports;
  # the tests start their own, so service starts are refused while installing.
  policy=/usr/sbin/policy-rc.d
  added_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$added_policy" = true ]; then rm -f "$policy"; fi
fi

# Go builds the test cluster's Kubernetes binaries (scripts/build-k8s-binaries.sh); this kind of
# machine ships it in /usr/local/go, and Debian's golang is too old for Kubernetes 1.35.
# The tests need it (`install.sh --tests`); the executable needs it once per Gateway API
# version, to fetch that release's CRDs (below).
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  message="Go 1.25 or newer is needed to build the test cluster's Kubernetes binaries; install it to /usr/local/go"
  if [ "${1:-}" = "--tests" ]; then
    echo "install: $message" >&2
    exit 1
  fi
  echo "install: note: $message" >&2
fi

# npm dependencies, re-installed only when package-lock.json changed since the last install.
stamp=node_modules/.install-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/node ]; then
  echo "install: npm ci" >&2
  # npm itself may run on the machine's older Node; everything it installs runs on the pinned one.
  npm ci --no-audit --no-fund --loglevel=error --engine-strict=false
  echo "$want" >"$stamp"
fi
# The Gateway API CRDs deploy installs (scripts/build-gateway-api.sh): fetched once per version
# through the Go module proxy, then a no-op. The code imports them, so type checks, the binary
# and every test need them.
bash scripts/build-gateway-api.sh
echo "install: ready (Node $(node_modules/.bin/node --version) for builds and tests)" >&2
