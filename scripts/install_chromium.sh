#!/usr/bin/env bash
# Headless Chromium and its driver from Debian's packages, for tests/test_site.py (scripts/test.sh calls this).
# Does nothing when both are installed; installing them takes about 25 s (121 MB of packages).
set -euo pipefail
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "error: Chromium is missing; install it as root: apt-get install chromium chromium-driver" >&2
  exit 1
fi
echo "[chromium] installing chromium and chromium-driver (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
