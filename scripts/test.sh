#!/usr/bin/env bash
# One command: set up this machine (apt + npm + build) and run every test.
# Integration tests start real runc machines, so this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/src/http/openapi-cli.js --check
# Type-aware lint: no floating promises, and imports flow one way between the parts.
npm run lint --silent
npm test --silent
