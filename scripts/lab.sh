#!/usr/bin/env bash
# Open the course in JupyterLab with the project's environment (built on first use), in lab/: learner copies of the
# chapters, without solutions (made on first use and never overwritten: they hold your work). The full chapters,
# solutions included, stay in nbs/. Extra arguments go to `jupyter lab`, e.g.: bash scripts/lab.sh --no-browser --port 8888
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
python "$ROOT/scripts/make_learner_copies.py"
# A shell inside a launched job (RANK set) would make every kernel think it is a rank and start no ranks of its own
unset RANK LOCAL_RANK WORLD_SIZE MASTER_ADDR MASTER_PORT
exec jupyter lab --notebook-dir "$ROOT" --LabApp.default_url=/lab/tree/lab "$@"
