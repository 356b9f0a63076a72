#!/usr/bin/env bash
# The operator page in a real browser: Debian's Chromium driven by
# playwright-core (test/browser) against the real paved between the
# simulators. Installs what is missing; quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Debian's own build: playwright's browser downloads are never used.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}"
fi
command -v npm >/dev/null 2>&1 || { echo "node is installed without npm: apt-get install npm" >&2; exit 1; }

# playwright-core as pinned in package-lock.json; it downloads no browser.
(cd test/browser && npm ci --no-audit --no-fund)

export PATH="$PATH:/usr/local/go/bin"
# Fails, rather than skips, when anything above is missing.
PAVED_REQUIRE_BROWSER=1 go test -count=1 -timeout 10m ./test/browser
