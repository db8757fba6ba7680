#!/usr/bin/env bash
# The slow check of "any N" (minutes per chapter and world size, so not in CI): every distributed chapter on CPU
# ranks at each world size, and the labs whose job takes a world size, one line each: passed or FAILED, seconds,
# and the failing rank's line. Runs go to OUT (default runs/world_sizes/<timestamp>).
#   bash scripts/check_world_sizes.sh [-o OUT] [N ...]        (default N: 1 2 3 4 8)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$ROOT/runs/world_sizes/$(date +%Y%m%d-%H%M%S)"
if [[ "${1:-}" == -o ]]; then out=$2; shift 2; fi
sizes=("${@:-1 2 3 4 8}")
read -r -a sizes <<<"${sizes[*]}"
for n in "${sizes[@]}"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: a world size is a positive integer, got '$n'" >&2; exit 2; }; done
[[ ! -e "$out" ]] || { echo "error: $out exists: choose another folder (nothing is overwritten)" >&2; exit 2; }
mkdir -p "$out"
failed=0
run() {  # LABEL N ARGS...: one chapter run, one line
  local label=$1 n=$2 start=$SECONDS; shift 2
  if TORCH_HANDLE_RUNS="$out/$label-$n" bash "$ROOT/scripts/run_chapter.sh" "$@" >"$out/$label-$n.log" 2>&1; then
    printf '%-18s N=%-2s passed  %4d s\n' "$label" "$n" $((SECONDS - start))
  else
    printf '%-18s N=%-2s FAILED  %4d s  %s\n' "$label" "$n" $((SECONDS - start)) "$(grep -m1 '^error: rank' "$out/$label-$n.log" || tail -n1 "$out/$label-$n.log")"
    failed=$((failed + 1))
  fi
}
for n in "${sizes[@]}"; do
  for chapter in 06_ddp 07_zero3 08_checkpointing; do run "$chapter" "$n" "$chapter" --gpus 0 --nproc "$n"; done
  run 08b_kill_and_resume "$n" 08b_kill_and_resume -p nproc "$n"
  run 09a_profiling_lab "$n" 09a_profiling_lab -p nproc "$n"
  run 10_roadmap "$n" 10_roadmap -p world_size "$n"
done
echo "$failed run(s) failed; logs in $out"
[[ $failed -eq 0 ]]
