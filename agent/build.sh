#!/usr/bin/env bash
# Builds hangar-agent, linked statically: it runs in every machine, and the busybox
# template has no C library to load.
#
#   agent/build.sh [OUT]          the agent (default dist/agent/hangar-agent): every
#                                 agent/src/*.c but the *-test.c stand-ins
#   agent/build.sh --test OUT     agent-fileops-test: the file and watch subcommands with
#                                 main-test.c's main, for the host tests (no server part)
set -euo pipefail
cd "$(dirname "$0")/.."
test_build=0
if [ "${1:-}" = --test ]; then
  test_build=1
  shift
fi
if [ "$test_build" = 1 ]; then
  out=${1:?usage: agent/build.sh --test OUT}
  sources=(agent/src/fileops.c agent/src/fileops-tools.c agent/src/watch.c agent/src/main-test.c)
else
  out=${1:-dist/agent/hangar-agent}
  mapfile -t sources < <(ls agent/src/*.c | grep -v -- '-test\.c$')
fi
mkdir -p "$(dirname "$out")"
cc -static -O2 -Wall -Wextra -D_GNU_SOURCE -o "$out.tmp" "${sources[@]}"
mv -f "$out.tmp" "$out"
