#!/usr/bin/env bash
# The Quarto site: nbdev_docs renders nbs/ into _docs/ (extra arguments go to nbdev_docs).
# Only where Quarto is installed: without it nbdev_docs would try to install Quarto with sudo, then
# pip-install this project into whatever pip comes first on PATH. Here it refuses instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v quarto >/dev/null; then
  echo "error: Quarto is not installed, so nbdev_docs cannot run; build the offline site instead: python scripts/build_site.py" >&2
  exit 2
fi
cd "$ROOT"
# shellcheck source=scripts/env.sh
source scripts/env.sh
nbdev_docs "$@"
