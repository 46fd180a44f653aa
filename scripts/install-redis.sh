#!/usr/bin/env bash
# Makes sure redis-server is installed: the queue of `npm run score -- --queue` and its tests
# (test/score-queue.test.ts starts its own server on 127.0.0.1). Idempotent: exits at once when
# redis-server is already on the PATH. Debian/Ubuntu's package; elsewhere, install Redis yourself.
#
#   bash scripts/install-redis.sh        # as root, or with sudo available
set -euo pipefail

if command -v redis-server >/dev/null; then
  echo "install-redis: $(redis-server --version | head -n 1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-redis: run as root (or install sudo)" >&2; exit 1; }
  SUDO=sudo
fi
command -v apt-get >/dev/null || { echo "install-redis: no apt-get here; install Redis (redis-server) yourself" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
# The package starts a system service on 127.0.0.1:6379; dawnet's tests start their own server on a free port.
echo "install-redis: installed $(redis-server --version | head -n 1)"
