#!/usr/bin/env bash
# Every check and every test tier, from a fresh clone: installs what is missing first. Ends
# with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --tests
export PATH="$PWD/node_modules/.bin:$PATH"
exec node scripts/test-all.mjs
