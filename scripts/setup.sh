#!/usr/bin/env bash
# Installs what Hangar needs on a fresh Debian 12 machine (root), idempotently:
# runc, runsc (gVisor: the gvisor isolation tier), iptables, busybox-static, e2fsprogs, util-linux, iproute2, gcc, mmdebstrap, openssl,
# skopeo and umoci (image templates), chromium (the web console's browser tests),
# tmux (the CLI's `hangar shell` test types into a real terminal)
# (a test checks the VNC client's DES against it), postgresql (its binaries: the PostgreSQL
# store's tests start throwaway servers of their own; no system cluster) from Debian,
# CRIU 4 from Debian 13 at a low pin priority (Debian 12's CRIU 3.17 fails on 6.x kernels),
# the shared `desktop` template (built once per host), then the npm dependencies and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in runc:runc runsc:runsc iptables:iptables busybox:busybox-static mkfs.ext4:e2fsprogs losetup:mount ip:iproute2 cc:gcc mmdebstrap:mmdebstrap openssl:openssl skopeo:skopeo umoci:umoci chromium:chromium tmux:tmux; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# The terminal relay (WebSocket pty) is a small C program that `npm run build` compiles.
[ -f /usr/include/stdio.h ] || need_apt+=(libc6-dev)
# busybox must be the static build: it runs inside machines with no libraries.
if command -v busybox >/dev/null && ! file -L "$(command -v busybox)" 2>/dev/null | grep -q 'statically linked'; then
  need_apt+=(busybox-static)
fi
# PostgreSQL's server binaries (initdb, pg_ctl) for the PostgreSQL store's tests, which start
# a server of their own in a temporary directory. Installed without Debian's `main` cluster,
# so no system server starts and listens: a file in createcluster.d turns it off first.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
  mkdir -p /etc/postgresql-common/createcluster.d
  printf '# Written by Hangar scripts/setup.sh: no system cluster; tests start their own servers.\ncreate_main_cluster = false\n' \
    >/etc/postgresql-common/createcluster.d/hangar-no-main-cluster.conf
fi
apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }; }
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# CRIU >= 4.2 (memory snapshots). Debian 12's 3.17 fails `criu check` on 6.x kernels, and
# 4.1.1 (Debian 13) cannot dump TCP sockets on kernels >= 6.16 (getsockopt SO_PASSCRED now
# fails on them; fixed in 4.2). So: Debian 13 first (it brings the newer libc CRIU needs),
# then CRIU itself from unstable; both suites pinned low so nothing else moves to them.
# A failure is reported, not fatal: Hangar then takes filesystem-only snapshots.
criu_ok() { criu --version 2>/dev/null | awk '/^Version:/ {split($2, v, "."); exit !(v[1] > 4 || (v[1] == 4 && v[2] >= 2))}'; }
if ! criu_ok; then
  echo "setup: installing CRIU 4.2 (Debian 13 libraries, CRIU from unstable; pin priority 100/50)"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  if [ -n "$mirror" ]; then
    printf 'deb %s trixie main\ndeb %s sid main\n' "$mirror" "$mirror" > /etc/apt/sources.list.d/hangar-criu.list
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\nPackage: *\nPin: release n=sid\nPin-Priority: 50\n' > /etc/apt/preferences.d/hangar-criu
    rm -f /etc/apt/sources.list.d/hangar-trixie.list /etc/apt/preferences.d/hangar-trixie
    apt_updated=0; apt_update
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie criu >/dev/null \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t sid criu >/dev/null; } \
      || echo "setup: WARNING: CRIU 4.2 could not be installed; snapshots will be filesystem-only"
  else
    echo "setup: WARNING: no Debian mirror found in apt's configuration; skipping CRIU"
  fi
fi

# The `desktop` template (Debian, Xvfb, twm, x11vnc) is shared by every data dir on the
# host; about 100 s the first time, nothing after (scripts/build-desktop-template.sh).
bash scripts/build-desktop-template.sh

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
# The `hangar` CLI on root's PATH (these machines have no sudo; root installs it).
ln -sf "$(pwd)/dist/cli/src/hangar.js" /usr/local/bin/hangar
