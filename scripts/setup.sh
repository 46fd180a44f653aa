#!/usr/bin/env bash
# Sets up a fresh machine: npm packages, then a Vulkan driver if Dawn finds no working adapter,
# then redis-server (the scoring queue and its tests) if it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
bash scripts/install-vulkan.sh
bash scripts/install-redis.sh
