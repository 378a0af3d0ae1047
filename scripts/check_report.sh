#!/usr/bin/env bash
# Renders vlt's HTML pages in a real browser (headless Chromium from Debian's packages) and
# writes a screenshot of each, after checking that every file a page references exists beside it.
#
#   bash scripts/check_report.sh PAGE.html [PAGE2.html ...]     -> PAGE.png next to each page
#
# Installs chromium with apt-get when it is missing (as root or through sudo). Exit 1 when a page
# references a missing file or the browser fails.
set -euo pipefail
if [ $# -lt 1 ]; then echo "usage: bash scripts/check_report.sh PAGE.html [...]" >&2; exit 2; fi
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get install -y -q chromium >/dev/null
  browser=$(command -v chromium)
fi
rc=0
for page in "$@"; do
  dir=$(cd "$(dirname "$page")" && pwd)
  # every src="..." / href="..." that is not an anchor must be a file beside the page
  while IFS= read -r ref; do
    case "$ref" in \#*|data:*) continue ;; http:*|https:*|//*) echo "$page: remote reference $ref"; rc=1; continue ;; esac
    [ -f "$dir/$ref" ] || { echo "$page: missing $ref"; rc=1; }
  done < <(grep -oE '(src|href)="[^"]*"' "$page" | sed -E 's/^(src|href)="//; s/"$//' | grep -v '^http://www.w3.org/2000/svg$' | sort -u)
  png="${page%.html}.png"
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2200 \
    --screenshot="$png" "file://$dir/$(basename "$page")" >/dev/null 2>&1 || { echo "$page: chromium failed"; rc=1; continue; }
  echo "$page -> $png ($(stat -c %s "$png") bytes)"
done
exit $rc
