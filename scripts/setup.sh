#!/usr/bin/env bash
# One command on a fresh machine: install everything, build the executable, and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/node_modules/.bin:$PATH"
node scripts/build-binary.mjs
echo
echo "\$ dist/nginx-meshctl --help"
dist/nginx-meshctl --help
echo
echo "\$ dist/nginx-meshctl version"
dist/nginx-meshctl version
