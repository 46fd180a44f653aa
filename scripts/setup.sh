#!/usr/bin/env bash
# Sets up a fresh machine: npm packages, then a Vulkan driver if Dawn finds no working adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
bash scripts/install-vulkan.sh
