#!/usr/bin/env bash
# Runs tlspilot the way ../shared/bench/peer-serve.sh expects its third
# server (THIRD_CMD): HTTPS on $ADDR with $CERT/$KEY (also without SNI),
# static files from $ROOT and /proxy/ routed to http://$UPSTREAM.
#
#   bash bench/peer-serve.sh       # builds tlspilot, then runs the comparison
set -euo pipefail
: "${CERT:?}" "${KEY:?}" "${ROOT:?}" "${UPSTREAM:?}" "${ADDR:?}" "${WORKDIR:?}"
BIN=${TLSPILOT_BIN:-$WORKDIR/tlspilot}
cat >"$WORKDIR/tlspilot.toml" <<CONF
storage = "$WORKDIR/storage"
http_listen = "127.0.0.1:0"
https_listen = "$ADDR"
access_log = "off"
log_level = "warn"

[[site]]
names = ["bench.example.test"]
default = true
root = "$ROOT"
cert_file = "$CERT"
key_file = "$KEY"

[[site.route]]
path = "/proxy/"
proxy = "http://$UPSTREAM"
CONF
exec "$BIN" serve --config "$WORKDIR/tlspilot.toml"
