#!/usr/bin/env bash
# The test command (CI runs exactly this). Builds or reuses .venv, then:
#   1. the library, README and notebooks are in sync and clean (nbdev_export, make_readme, nbdev_clean)
#   2. every chapter runs under nbdev_test, one thread per process
#   3. pytest tests/ (installing headless Chromium first when it is missing)
# Extra arguments go to pytest (e.g. -k run_chapter).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/env.sh
source scripts/env.sh

snapshot() { find torch_handle nbs README.md -type f \( -name '*.py' -o -name '*.ipynb' -o -name '*.md' \) \
               -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; }
echo "== 1/3 sync: nbdev_export, make_readme, nbdev_clean"
before="$(snapshot)"
nbdev_export
python scripts/make_readme.py
nbdev_clean
after="$(snapshot)"
if [[ "$before" != "$after" ]]; then
  echo "FAIL: the generated files were out of sync with the notebooks; these changed:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  " $3}' | sort -u >&2
  echo "Review and commit them (notebooks are the source of truth)." >&2
  exit 1
fi

echo "== 2/3 chapters: nbdev_test"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nbdev_test --timing

echo "== 3/3 pytest tests/"
bash scripts/install_chromium.sh                  # tests/test_site.py looks at the site in headless Chromium
python -m pytest tests/ -q --durations=15 "$@"             # the slowest tests, for keeping CI short
