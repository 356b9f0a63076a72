#!/usr/bin/env bash
# CI: the Helm chart (deploy/helm/paved). Installs helm when it is missing
# (go install, into $(go env GOPATH)/bin; a few minutes the first time), lints
# the chart with both shipped value sets, renders them, and runs the chart's
# Go test (deploy/helm), which fails instead of skipping without helm.
# Quick when helm is installed already.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.19.0
export PATH="$PATH:/usr/local/go/bin"
gobin="$(go env GOBIN)"
export PATH="$PATH:${gobin:-$(go env GOPATH)/bin}"   # where go install puts helm

if ! command -v helm >/dev/null 2>&1; then
  echo "installing helm $HELM_VERSION (go install)"
  GOFLAGS= go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi
helm version --short

chart=deploy/helm/paved
for values in "$chart/values-sqlite.yaml" "$chart/values-postgres.yaml"; do
  helm lint "$chart" --strict -f "$values"
  helm template paved "$chart" -f "$values" >/dev/null
done

PAVED_REQUIRE_HELM=1 go test -count=1 ./deploy/helm
