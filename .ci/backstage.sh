#!/usr/bin/env bash
# The paved:run scaffolder action (deploy/backstage): its TypeScript is
# type-checked, then its jest suite, with the real Backstage packages from
# npm, runs against the real paved between the simulators (test/backstage).
# Installs what is missing; quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
command -v npm >/dev/null 2>&1 || { echo "node is installed without npm: apt-get install npm" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "deploy/backstage needs Node.js 20 or later (Backstage's own floor); this is $(node --version)" >&2
  exit 1
fi

# The Backstage packages, jest and TypeScript as pinned in package-lock.json.
# No install scripts: nothing here needs one, and those in the tree (native
# builds of better-sqlite3, cpu-features, ... for Backstage's own test
# databases) would download or compile for nothing, and fail without a compiler or GitHub.
(cd deploy/backstage && npm ci --no-audit --no-fund --ignore-scripts && npx tsc --noEmit)

export PATH="$PATH:/usr/local/go/bin"
# Fails, rather than skips, when anything above is missing.
PAVED_REQUIRE_BACKSTAGE=1 go test -count=1 -timeout 10m ./test/backstage
