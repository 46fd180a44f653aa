#!/usr/bin/env bash
# Makes sure Dawn finds a WebGPU adapter. When none works, installs Mesa's lavapipe (a Vulkan
# driver that runs on the CPU) from Debian bookworm-backports: bookworm's own Mesa 22 is too old
# for Dawn. The backports source reuses the machine's own Debian mirror, read from either apt
# sources format. Idempotent: exits at once when an adapter already works.
#
#   bash scripts/install-vulkan.sh        # as root, or with sudo available; after npm ci
set -euo pipefail
cd "$(dirname "$0")/.."

probe() { DAWNET_QUIET=1 timeout 120 npx --no-install tsx scripts/device.ts >/dev/null 2>&1; }

if probe; then
  echo "install-vulkan: a WebGPU adapter already works: $(npx --no-install tsx scripts/device.ts 2>/dev/null | head -n 1)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-vulkan: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi

. /etc/os-release
codename=${VERSION_CODENAME:-}
[ -n "$codename" ] || { echo "install-vulkan: cannot tell the Debian release from /etc/os-release" >&2; exit 1; }
backports=/etc/apt/sources.list.d/dawnet-backports
if [ "$ID" = debian ] && ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822 format: copy the first stanza (the main archive) with the suite changed.
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1' /etc/apt/sources.list.d/debian.sources |
      sed "s/^Suites:.*/Suites: ${codename}-backports/" | $SUDO tee "$backports.sources" >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    # One-line format: the first "deb" line's mirror, with the suite changed.
    mirror=$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/) {print $i; exit}}' /etc/apt/sources.list)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    echo "deb $mirror ${codename}-backports main" | $SUDO tee "$backports.list" >/dev/null
  else
    echo "deb http://deb.debian.org/debian ${codename}-backports main" | $SUDO tee "$backports.list" >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if [ "$ID" = debian ]; then
  $SUDO apt-get install -y -qq -t "${codename}-backports" mesa-vulkan-drivers libvulkan1 >/dev/null
else
  $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if probe; then
  echo "install-vulkan: installed; adapter: $(npx --no-install tsx scripts/device.ts 2>/dev/null | head -n 1)"
else
  echo "install-vulkan: lavapipe installed, but Dawn still finds no working adapter:" >&2
  npx --no-install tsx scripts/device.ts >&2 || true
  exit 1
fi
