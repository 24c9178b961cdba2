#!/usr/bin/env bash
# One command: set up this machine (apt + npm + build) and run Hangar in the foreground.
# Settings: HANGAR_LISTEN (default 127.0.0.1:8080), HANGAR_DATA_DIR (default ./.data),
# HANGAR_BOOTSTRAP_KEY (optional admin key); see docs/configuration.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data=${HANGAR_DATA_DIR:-.data}
listen=${HANGAR_LISTEN:-127.0.0.1:8080}
if [ -f "$data/admin-key" ] && [ -z "${HANGAR_BOOTSTRAP_KEY:-}" ]; then
  echo "Admin API key (from $data/admin-key): $(cat "$data/admin-key")"
fi
echo "Starting Hangar on http://$listen  (Ctrl-C stops the server; machines keep running and are re-adopted next start)"
echo "Web console: http://$listen/console/  (sign in with an API key)"
echo "Try:  curl -s -X POST http://$listen/v1/machines -H \"Authorization: Bearer \$KEY\" -H 'Content-Type: application/json' -d '{}'"
exec npm start --silent
