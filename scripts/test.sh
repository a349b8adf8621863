#!/usr/bin/env bash
# Runs every test of tlspilot, with the race detector. This is the README's
# test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Artifacts (the status page's screenshot) are kept in test-output/.
mkdir -p test-output
go test -race -count=1 -timeout 20m -artifacts -outputdir "$PWD/test-output" ./...
