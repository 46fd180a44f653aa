#!/usr/bin/env bash
# Installs PyTorch and torchvision from Debian (python3-torch, python3-torchvision: torch 1.13,
# CPU) into Debian's own interpreter, /usr/bin/python3: the oracle of the golden and interop
# tests and the CPU peer of `npm run bench -- --pytorch cpu`. Idempotent.
#
#   bash scripts/install-torch.sh        # as root, or with sudo available
set -euo pipefail

if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "install-torch: $(/usr/bin/python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)') already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-torch: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-torch python3-torchvision
