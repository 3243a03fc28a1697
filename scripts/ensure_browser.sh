#!/usr/bin/env bash
# Browser tests drive Debian's chromium with Playwright (never a downloaded browser): install it when root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null
else
  echo "warning: chromium is missing (sudo apt-get install chromium); the browser tests will fail in make test" >&2
fi
