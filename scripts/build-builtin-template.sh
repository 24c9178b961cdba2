#!/usr/bin/env bash
# Builds one of the server-wide Debian templates that Hangar makes the first time a machine
# asks for it (root): `python` (python3, pip, venv, git, curl, ca-certificates) or `node`
# (Node.js, npm, git, ca-certificates), from Debian 13 by mmdebstrap, into
# $HANGAR_TEMPLATE_DIR/<name> (the first directory of HANGAR_TEMPLATE_PATH; shared by every
# Hangar data dir on the host). Machines of these templates run the agent's init as pid 1.
# Idempotent and host-wide single-flight (flock): skipped when already built by this very
# script (its hash is the build id). Prints the build time.
set -euo pipefail

name=${1:?usage: build-builtin-template.sh python|node}
case "$name" in
  python) packages=python3,python3-pip,python3-venv,git,curl,ca-certificates; check=usr/bin/python3
    description='Debian 13 with python3, pip, venv, git, curl and ca-certificates' ;;
  node) packages=nodejs,npm,git,ca-certificates; check=usr/bin/node
    description='Debian 13 with Node.js, npm, git and ca-certificates' ;;
  *) echo "unknown built-in template: $name" >&2; exit 2 ;;
esac
suite=trixie
dest_root=${HANGAR_TEMPLATE_DIR:?set HANGAR_TEMPLATE_DIR}
dest_root=${dest_root%/}
dest=$dest_root/$name
build_id=$(sha256sum "$0" | cut -c1-16)

valid() {
  [ -f "$dest/template.json" ] && [ -x "$dest/rootfs/$check" ] && [ "$(cat "$dest/.build-id" 2>/dev/null)" = "$build_id" ]
}
if valid; then echo "$name template: up to date in $dest"; exit 0; fi
mkdir -p "$dest_root"
exec 9>"$dest_root/.$name.lock"
flock 9
if valid; then echo "$name template: up to date in $dest"; exit 0; fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
if [ -z "$mirror" ]; then echo "$name template: no Debian mirror found in apt's configuration" >&2; exit 1; fi

started=$(date +%s)
tmp=$(mktemp -d "$dest_root/.$name-build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "$name template: building from $mirror $suite ($packages) into $dest"
mmdebstrap --quiet --variant=apt --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  "$suite" "$tmp/rootfs" "$mirror"
rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*_Packages
mkdir -p "$tmp/rootfs/root"
cat > "$tmp/template.json" <<JSON
{
  "name": "$name",
  "description": "$description",
  "init": ["/.hangar/bin/hangar-agent", "init"],
  "env": {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "TERM": "xterm", "LANG": "C.UTF-8"},
  "cwd": "/root",
  "runtime": "runc",
  "created_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
echo "$build_id" > "$tmp/.build-id"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
trap - EXIT
rm -rf "$dest.old"
echo "$name template: built in $(( $(date +%s) - started )) s"
