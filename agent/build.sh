#!/usr/bin/env bash
# Builds hangar-agent into $1 (default dist/agent/hangar-agent). Linked statically: it runs
# in every machine, and the busybox template has no C library to load.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/agent/hangar-agent}
mkdir -p "$(dirname "$out")"
mapfile -t sources < <(ls agent/src/*.c | grep -v -- '-test\.c$')
cc -static -O2 -Wall -Wextra -D_GNU_SOURCE -o "$out.tmp" "${sources[@]}"
mv -f "$out.tmp" "$out"
