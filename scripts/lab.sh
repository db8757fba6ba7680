#!/usr/bin/env bash
# Open the course in JupyterLab with the project's environment (built on first use).
# Extra arguments go to `jupyter lab`, e.g.: bash scripts/lab.sh --no-browser --port 8888
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
exec jupyter lab --notebook-dir "$ROOT/nbs" "$@"
