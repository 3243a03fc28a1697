#!/usr/bin/env bash
# The console's JS/CSS come from the npm registry at setup: make sure node and npm exist (apt-get when root).
set -euo pipefail
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
else
  echo "error: Node.js and npm are needed to install the map assets: run sudo apt-get install nodejs npm" >&2
  exit 1
fi
