#!/usr/bin/env bash
# One command: set up this machine (apt + npm + build) and run every test.
# Integration tests start real runc machines, so this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/src/http/openapi-cli.js --check
# The SDK's types are generated from that document: regenerated, they must not differ.
npx openapi-typescript docs/openapi.json -o /tmp/hangar-sdk-schema.ts >/dev/null
cmp -s /tmp/hangar-sdk-schema.ts sdk/src/schema.ts || { echo 'sdk/src/schema.ts is stale: run npm run build && npm run sdk:types' >&2; exit 1; }
# Type-aware lint: no floating promises, and imports flow one way between the parts.
npm run lint --silent
# Includes the store conformance suite on SQLite and on PostgreSQL: a throwaway server the
# test starts from Debian's binaries (setup.sh installs them; src/testing/postgres-server.ts).
npm test --silent
