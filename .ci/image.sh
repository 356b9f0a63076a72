#!/usr/bin/env bash
# CI: build paved's image (the top-level Dockerfile) with buildah — no
# daemon: vfs storage, chroot isolation — and run it as uid 65532: `paved
# version`, then `paved serve` until /readyz answers. Registries are
# unreachable here, so the base images the Dockerfile names through ARGs
# are local stand-ins: a builder holding this machine's Go toolchain, and a
# runtime made from scratch with a nonroot passwd entry and CA certificates.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y buildah
fi
B=(buildah --storage-driver vfs)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

goroot=$(go env GOROOT)
# The builder: Go at /usr/local/go, a writable /tmp, the module and build
# caches mounted from this machine at build time (no network needed).
ctr=$("${B[@]}" from scratch)
"${B[@]}" copy "$ctr" "$goroot" /usr/local/go >/dev/null
mkdir -p "$work/tmp" && "${B[@]}" copy "$ctr" "$work/tmp" /tmp >/dev/null
"${B[@]}" config --env PATH=/usr/local/go/bin:/usr/bin:/bin --env GOROOT=/usr/local/go \
  --env GOPATH=/go --env GOMODCACHE=/go/pkg/mod --env GOCACHE=/root/.cache/go-build --env GOTOOLCHAIN=local \
  --env GOPROXY=off "$ctr"
"${B[@]}" commit -q "$ctr" localhost/paved-ci-builder >/dev/null
"${B[@]}" rm "$ctr" >/dev/null

# The runtime: nothing but CA certificates and a nonroot user (distroless's uid).
ctr=$("${B[@]}" from scratch)
mkdir -p "$work/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$work/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$work/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$work/etc/group"
"${B[@]}" copy "$ctr" "$work/etc" /etc >/dev/null
"${B[@]}" copy --chown 65532:65532 "$ctr" "$work/tmp" /tmp >/dev/null
"${B[@]}" commit -q "$ctr" localhost/paved-ci-runtime >/dev/null
"${B[@]}" rm "$ctr" >/dev/null

modcache=$(go env GOMODCACHE)
gocache=$(go env GOCACHE)
go mod download
"${B[@]}" bud --isolation chroot --layers=false -q \
  --build-arg BUILDER_IMAGE=localhost/paved-ci-builder --build-arg RUNTIME_IMAGE=localhost/paved-ci-runtime \
  --build-arg VERSION=ci -v "$modcache:/go/pkg/mod" -v "$gocache:/root/.cache/go-build" \
  -t localhost/paved:ci . >/dev/null

user=$("${B[@]}" inspect --format '{{.OCIv1.Config.User}}' localhost/paved:ci)
[ "$user" = "65532:65532" ] || { echo "image runs as '$user', want 65532:65532" >&2; exit 1; }

ctr=$("${B[@]}" from localhost/paved:ci)
out=$("${B[@]}" run --isolation chroot --user 65532:65532 "$ctr" -- /usr/local/bin/paved version)
echo "$out"
case "$out" in "paved ci "*) ;; *) echo "paved version in the image says '$out', want version ci" >&2; exit 1 ;; esac

# paved serve inside the image as uid 65532, with a config mounted in, until /readyz answers.
# A port nobody answers on (bash's /dev/tcp: no other tool needed).
for _ in $(seq 1 20); do
  port=$((20000 + RANDOM % 30000))
  (exec 2>/dev/null; exec 3<>"/dev/tcp/127.0.0.1/$port") || break
done
mkdir -p "$work/conf"
cat > "$work/conf/paved.yaml" <<YAML
server: {listen: "127.0.0.1:$port", publicURL: "http://127.0.0.1:$port"}
store: {driver: sqlite, path: /tmp/paved.db}
actionsDir: /etc/paved/actions
policyDir: /etc/paved/actions/policy
port: {enabled: false}
gitlab: {baseURL: "http://127.0.0.1:9", token: env:CI_GITLAB_TOKEN, webhookToken: env:CI_HOOK_TOKEN}
api: {tokens: [env:CI_API_TOKEN], runTokenKey: env:CI_RUN_KEY}
environments: [{name: dev}]
tenants: [acme]
YAML
chmod -R a+rX "$work/conf"
"${B[@]}" run --isolation chroot --user 65532:65532 -v "$work/conf:/etc/paved/conf:ro" \
  --env CI_GITLAB_TOKEN=glpat-ci --env CI_HOOK_TOKEN=hook-ci-token --env CI_API_TOKEN=api-ci-token-0123456789 \
  --env CI_RUN_KEY=run-key-ci-0123456789abcdef \
  "$ctr" -- /usr/local/bin/paved serve --config /etc/paved/conf/paved.yaml > "$work/serve.log" 2>&1 &
pid=$!
ready=false
for _ in $(seq 1 300); do
  if status=$(exec 2>/dev/null; exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3) 2>/dev/null &&
    [[ "$status" == *" 200 "* ]]; then ready=true; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
"${B[@]}" rm "$ctr" >/dev/null
if ! $ready; then
  echo "paved serve in the image never answered /readyz; its log:" >&2
  cat "$work/serve.log" >&2
  exit 1
fi
echo "image localhost/paved:ci: paved version and serve (uid 65532, /readyz 200) ok"
