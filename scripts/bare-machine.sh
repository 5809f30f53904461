#!/usr/bin/env bash
# `bash scripts/bare-machine.sh DIR`: what `npm install vgg-native` gives on a
# machine with no compiler, no Python and no LibTorch. Makes a minimal Debian
# root filesystem (debootstrap --variant=minbase, from the mirror apt already
# uses), copies this machine's Node in, and there, as a non-root user, installs
# the tarballs in DIR (from `npm run pack:all -- DIR`) with npm 12's defaults,
# then runs scripts/check-install.js: no install script, libraries resolved
# inside node_modules, a photo classified, one fine-tuning step.
# Needs root (debootstrap, chroot). Last line: "bare machine: ok" or "bare machine: FAILED".
set -euo pipefail
cd "$(dirname "$0")/.."
PACKS=$(realpath "${1:?usage: scripts/bare-machine.sh DIR-with-tarballs}")
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
MIRROR=$({ grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
  grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } | grep -E '/debian/?$' | head -1 || true)
ROOTFS=$(mktemp -d /tmp/vgg-native-rootfs-XXXXXX)
chmod 755 "$ROOTFS"  # mktemp makes it 0700: the non-root user must reach /
cleanup() {
  for m in proc dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
  rm -rf "$ROOTFS"
}
trap cleanup EXIT
fail() { echo "bare machine: FAILED ($1)"; exit 1; }

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "${MIRROR:-http://deb.debian.org/debian}" >/tmp/vgg-native-debootstrap.log 2>&1 ||
  fail "debootstrap, see /tmp/vgg-native-debootstrap.log"
for tool in g++ gcc cc python3 cmake; do
  chroot "$ROOTFS" sh -c "command -v $tool" >/dev/null 2>&1 && fail "$tool is in the root filesystem"
done

# Node (one static-enough binary; npm 12 comes from the registry through npx).
NODE_PREFIX=$(dirname "$(dirname "$(realpath "$(command -v node)")")")
mkdir -p "$ROOTFS/opt/node"
cp -a "$NODE_PREFIX/bin" "$NODE_PREFIX/lib" "$ROOTFS/opt/node/"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
# The registry as this machine reaches it: the same CA bundle (a proxy may sign on the way).
CA=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$ROOTFS/etc/ssl/certs"
[ -f "$CA" ] && cp "$CA" "$ROOTFS/etc/ssl/certs/host-ca.crt"
mount -t proc proc "$ROOTFS/proc"
mount --bind /dev "$ROOTFS/dev"
mkdir -p "$ROOTFS/work/packs" "$ROOTFS/work/project"
cp "$PACKS"/*.tgz "$ROOTFS/work/packs/"
cp scripts/check-install.js "$ROOTFS/work/"
cp /usr/lib/python3/dist-packages/skimage/data/chelsea.png "$ROOTFS/work/cat.png" 2>/dev/null ||
  node -e "require('sharp')({create:{width:320,height:240,channels:3,background:'#c08040'}}).png().toFile('$ROOTFS/work/cat.png')"
chroot "$ROOTFS" useradd -m user
chroot "$ROOTFS" chown -R user /work
chroot "$ROOTFS" su user -c '
  set -e
  export PATH=/opt/node/bin:$PATH HOME=/home/user
  if [ -f /etc/ssl/certs/host-ca.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt npm_config_cafile=/etc/ssl/certs/host-ca.crt
  fi
  cd /work/project && npm init -y >/dev/null
  npx -y npm@12 install --no-audit --no-fund /work/packs/*.tgz
  node /work/check-install.js /work/project /work/cat.png
' || fail "install or check in the root filesystem"
echo "bare machine: ok"
