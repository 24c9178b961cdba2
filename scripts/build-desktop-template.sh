#!/usr/bin/env bash
# Builds the `desktop` template once per host (root): a Debian rootfs made by mmdebstrap
# with Xvfb, twm and x11vnc, and tini as pid 1 running the supervisor below. It goes into
# the first directory of HANGAR_TEMPLATE_PATH (default /var/lib/hangar/templates), shared
# read-only by every Hangar data dir on the host, test servers included.
# Idempotent: skipped when the template there was built by this very script (its hash
# is the build id), rebuilt when the script changed. Prints the build time.
set -euo pipefail

suite=trixie
packages=xvfb,twm,x11vnc,xfonts-base,tini
dest_root=${HANGAR_TEMPLATE_PATH-/var/lib/hangar/templates}
dest_root=${dest_root%%:*}
dest_root=${dest_root%/}
if [ -z "$dest_root" ]; then
  echo "desktop template: HANGAR_TEMPLATE_PATH is empty (no shared templates); not built"
  exit 0
fi
dest=$dest_root/desktop
build_id=$(sha256sum "$0" | cut -c1-16)

valid() {
  [ -f "$dest/template.json" ] && [ -x "$dest/rootfs/usr/bin/Xvfb" ] && [ -x "$dest/rootfs/usr/bin/x11vnc" ] \
    && [ "$(cat "$dest/.build-id" 2>/dev/null)" = "$build_id" ]
}
if valid; then
  echo "desktop template: up to date in $dest"
  exit 0
fi

mkdir -p "$dest_root"
# One build at a time per host: a second setup waits, then finds the template built.
exec 9>"$dest_root/.desktop.lock"
flock 9
if valid; then
  echo "desktop template: up to date in $dest"
  exit 0
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
if [ -z "$mirror" ]; then
  echo "desktop template: no Debian mirror found in apt's configuration" >&2
  exit 1
fi

started=$(date +%s)
tmp=$(mktemp -d "$dest_root/.desktop-build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "desktop template: building from $mirror $suite ($packages) into $dest"
mmdebstrap --quiet --variant=essential --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  "$suite" "$tmp/rootfs" "$mirror"
rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*_Packages

# The supervisor: tini (pid 1) reaps every orphan and forwards signals to it; it starts
# Xvfb, then twm and x11vnc on display :0, and starts again whichever of them exits.
cat > "$tmp/rootfs/usr/local/sbin/hangar-desktop" <<'SUPERVISOR'
#!/bin/bash
# Keeps Xvfb, twm and x11vnc alive. Hangar sets HANGAR_VNC_PASSWORD (per machine),
# HANGAR_VNC_PORT, HANGAR_DESKTOP_WIDTH and HANGAR_DESKTOP_HEIGHT. Pid 1 is tini.
set -u
: "${HANGAR_VNC_PASSWORD:?set by Hangar}" "${HANGAR_VNC_PORT:=5900}"
: "${HANGAR_DESKTOP_WIDTH:=1280}" "${HANGAR_DESKTOP_HEIGHT:=800}"
export DISPLAY=:0
state=/run/hangar-desktop
store_password() {
  mkdir -p "$state" && chmod 700 "$state"
  # x11vnc reads this file at every authentication, so a new password applies at once.
  x11vnc -storepasswd "$HANGAR_VNC_PASSWORD" "$state/passwd.new" >/dev/null 2>&1 && mv -f "$state/passwd.new" "$state/passwd"
}
# `hangar-desktop --set-password`: Hangar runs it in a fork, whose VNC server is its source's.
if [ "${1:-}" = --set-password ]; then store_password; exit; fi
store_password || exit 1
unset HANGAR_VNC_PASSWORD
# /tmp is on the machine's disk: after a restart the previous X server's lock and socket
# are still there, and its pid may be alive again as another process.
rm -f /tmp/.X0-lock /tmp/.X11-unix/X0

declare -A pid
start() {
  case $1 in
    xvfb)
      rm -f /tmp/.X0-lock /tmp/.X11-unix/X0
      Xvfb :0 -screen 0 "${HANGAR_DESKTOP_WIDTH}x${HANGAR_DESKTOP_HEIGHT}x24" -nolisten tcp >>/var/log/xvfb.log 2>&1 &
      pid[xvfb]=$!
      for _ in $(seq 100); do [ -S /tmp/.X11-unix/X0 ] && break; sleep 0.1; done
      ;;
    wm) twm >>/var/log/twm.log 2>&1 & pid[wm]=$! ;;
    vnc)
      # -noshm: no SysV shared memory between the two, nothing extra for CRIU to carry.
      x11vnc -display :0 -rfbport "$HANGAR_VNC_PORT" -rfbauth "$state/passwd" -forever -shared \
        -noshm -noxdamage -desktop "$HOSTNAME" -quiet >>/var/log/x11vnc.log 2>&1 &
      pid[vnc]=$!
      ;;
  esac
}
start xvfb; start wm; start vnc
while true; do
  wait -n
  for n in xvfb wm vnc; do
    if ! kill -0 "${pid[$n]}" 2>/dev/null; then
      sleep 0.5
      start "$n"
    fi
  done
done
SUPERVISOR
chmod 755 "$tmp/rootfs/usr/local/sbin/hangar-desktop"

cat > "$tmp/template.json" <<MANIFEST
{
  "name": "desktop",
  "description": "Debian $suite with Xvfb, twm and x11vnc: a desktop served over VNC",
  "init": ["/usr/bin/tini", "--", "/usr/local/sbin/hangar-desktop"],
  "env": {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "TERM": "xterm",
    "HOME": "/root",
    "DISPLAY": ":0"
  },
  "cwd": "/root",
  "runtime": "runc",
  "created_at": "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)",
  "desktop": { "vnc_port": 5900, "width": 1280, "height": 800, "set_password": ["/usr/local/sbin/hangar-desktop", "--set-password"] }
}
MANIFEST
echo "$build_id" > "$tmp/.build-id"

# Swap in. A previous build may still be the lower layer of running machines: it is
# moved aside, not deleted under them. /proc/mounts keeps the lowerdir path given at mount
# time (…/desktop/rootfs, whichever build it was), so old builds go only when no overlay
# mentions that path at all.
in_use() { grep -qF "lowerdir=$dest/rootfs" /proc/mounts; }
[ ! -e "$dest" ] || mv "$dest" "$dest_root/.desktop-old-$(date +%s)"
mv "$tmp" "$dest"
trap - EXIT
if in_use; then
  echo "desktop template: machines still run on an earlier build; it is removed by a later build"
else
  rm -rf "$dest_root"/.desktop-old-*
fi
echo "desktop template: built in $(( $(date +%s) - started )) s ($(du -sh "$dest" | cut -f1))"
