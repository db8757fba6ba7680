#!/usr/bin/env bash
# Run one chapter of the course, top to bottom, and keep the executed notebook.
#   bash scripts/run_chapter.sh NAME [-p KEY VALUE ...]
# NAME is a notebook in nbs/, with or without .ipynb (e.g. 04_transformer).
# -p passes a papermill parameter to the notebook's `parameters` cell.
# The executed notebook goes to runs/NAME/<timestamp>/NAME.ipynb (TORCH_HANDLE_RUNS overrides runs/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

chapters() { (cd "$ROOT/nbs" && ls [0-9][0-9]*.ipynb | sed 's/\.ipynb$//'); }
usage() { echo "usage: bash scripts/run_chapter.sh NAME [-p KEY VALUE ...]" >&2; echo "chapters:" >&2; chapters | sed 's/^/  /' >&2; exit 2; }

[[ $# -ge 1 ]] || usage
name="${1%.ipynb}"; shift
if [[ ! -f "$ROOT/nbs/$name.ipynb" || "$name" == */* ]]; then
  echo "error: no chapter named '$name'" >&2; usage
fi
params=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -p) [[ $# -ge 3 ]] || { echo "error: -p needs KEY and VALUE" >&2; exit 2; }
        params+=(-p "$2" "$3"); shift 3 ;;
    *) echo "error: unknown argument '$1'" >&2; usage ;;
  esac
done

# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
base="${TORCH_HANDLE_RUNS:-$ROOT/runs}/$name/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$(dirname "$base")"
out="$base"; n=1
while ! mkdir "$out" 2>/dev/null; do                       # never reuse a run folder
  [[ -e "$out" ]] || { echo "error: cannot create $out" >&2; exit 1; }
  out="$base-$((n++))"
done
echo "[run] $name → $out" >&2
papermill --cwd "$ROOT/nbs" --log-output --no-progress-bar "${params[@]}" \
  "$ROOT/nbs/$name.ipynb" "$out/$name.ipynb" >"$out/$name.log" 2>&1 \
  || { tail -n 30 "$out/$name.log" >&2; echo "error: $name failed; full log: $out/$name.log" >&2; exit 1; }
echo "executed notebook: $out/$name.ipynb"
