#!/usr/bin/env bash
# PDF orders (WeasyPrint) need Pango and a CJK font from the system: install them when root (Debian/Ubuntu).
# Without them the service still runs; GET /cases/{id}/documents/{doc}.pdf answers 503 saying what to install.
set -euo pipefail
PATH="$PATH:/sbin:/usr/sbin"  # ldconfig, for a user whose PATH lacks it
libs=$(ldconfig -p 2>/dev/null || true)  # read once: grep -q on a pipe would fail it under pipefail
missing=()
for lib in libpango-1.0-0 libpangoft2-1.0-0; do
  grep -qF "${lib%-0}.so.0" <<<"$libs" || missing+=("$lib")
done
# Any font covering Chinese will do (Noto CJK, WenQuanYi …); else the PDFs print Chinese as empty boxes.
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh family 2>/dev/null)" ]; then
  missing+=(fonts-wqy-microhei)
fi
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" fontconfig >/dev/null
else
  echo "warning: PDF orders need ${missing[*]} (sudo apt-get install ${missing[*]}); the HTML orders work without" >&2
fi
