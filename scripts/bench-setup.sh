#!/usr/bin/env bash
# Prepares this machine for `npm run bench` (root, Debian 12), idempotently:
# podman (the peer the benchmark measures Hangar against) and wrk from Debian, and the two
# containers.conf settings without which Debian 12's podman 4.3.1 cannot start a
# container here (this sandbox forbids raising RLIMIT_NOFILE/NPROC; crun refuses the
# hybrid cgroup layout). See ../shared/docs/platform.md.
# The benchmark still runs without podman; it then reports "podman: unavailable".
set -euo pipefail

conf=/etc/containers/containers.conf

if ! command -v podman >/dev/null 2>&1; then
  echo "bench-setup: installing podman"
  # Update the package lists only when apt cannot find podman as they are.
  if ! apt-cache show podman >/dev/null 2>&1; then
    apt-get update -qq
  fi
  # No -t: Debian 12's own podman (4.3.1), even where setup.sh added trixie at a low pin.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null
fi

# wrk: the independent load generator for the GET throughput row.
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench-setup: installing wrk"
  apt-cache show wrk >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

# crun (Debian 13's, through the low-pinned suite scripts/setup.sh added): the benchmark
# tries it beside bare runc as the floor of a cold create. On this host's hybrid cgroup
# layout it refuses to start anything; the benchmark reports its words.
if ! command -v crun >/dev/null 2>&1; then
  echo "bench-setup: installing crun (Debian 13)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie crun >/dev/null \
    || echo "bench-setup: WARNING: crun could not be installed; the benchmark reports it unavailable"
fi

# True when `key = value` is set inside `[section]` of the config file.
has_setting() {
  local section=$1 key=$2 value=$3
  [ -f "$conf" ] || return 1
  awk -v sec="[$section]" -v key="$key" -v val="$value" '
    /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); cur = $0; next }
    cur == sec {
      line = $0; sub(/#.*/, "", line); gsub(/[[:space:]]/, "", line)
      if (line == key "=" val) found = 1
    }
    END { exit found ? 0 : 1 }
  ' "$conf"
}

if has_setting containers default_ulimits '[]' && has_setting engine runtime '"runc"'; then
  echo "bench-setup: $conf already has default_ulimits = [] and runtime = \"runc\""
else
  mkdir -p "$(dirname "$conf")"
  if [ -f "$conf" ]; then
    backup="$conf.bak.$(date +%Y%m%dT%H%M%S)"
    cp -p "$conf" "$backup"
    echo "bench-setup: backed up $conf to $backup"
  fi
  cat >"$conf" <<'CONF'
# Written by Hangar's scripts/bench-setup.sh (any previous file was backed up beside it).
# Debian 12's podman 4.3.1 needs both settings on this host: raising RLIMIT_NOFILE and
# RLIMIT_NPROC is forbidden here, and crun does not support the hybrid cgroup layout.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
  echo "bench-setup: wrote $conf"
fi

podman --version
