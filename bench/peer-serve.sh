#!/usr/bin/env bash
# Builds tlspilot and runs the shared side-by-side benchmark (nginx, Caddy,
# tlspilot). Needs nginx, wrk and h2load (Debian: nginx wrk nghttp2-client)
# and Caddy v2.11.9 (go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
go build -o "$out/tlspilot" ./cmd/tlspilot
export TLSPILOT_BIN="$out/tlspilot"
export CADDY=${CADDY:-$(go env GOPATH)/bin/caddy}
export THIRD_NAME=tlspilot
export THIRD_CMD="bash $PWD/bench/tlspilot-serve.sh"
exec bash ../shared/bench/peer-serve.sh
