#!/usr/bin/env bash
# The slow check of "any N" (minutes per chapter and world size, so not in CI): every distributed chapter on CPU
# ranks at each world size, the labs whose jobs take a world size, and the training entry under both launchers (ddp, deepspeed, fsdp2)
# (torchrun: ddp; the deepspeed launcher: ZeRO-2), one line each: passed or FAILED, seconds, and the failing rank's
# line. Runs go to OUT (default runs/world_sizes/<timestamp>).
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
run() {  # LABEL N COMMAND...: one run at world size N, one line
  local label=$1 n=$2 start=$SECONDS; shift 2
  if TORCH_HANDLE_RUNS="$out/$label-$n" NPROC="$n" "$@" >"$out/$label-$n.log" 2>&1; then
    printf '%-20s N=%-2s passed  %4d s\n' "$label" "$n" $((SECONDS - start))
  else
    printf '%-20s N=%-2s FAILED  %4d s  %s\n' "$label" "$n" $((SECONDS - start)) "$(grep -m1 '^error: rank' "$out/$label-$n.log" || tail -n1 "$out/$label-$n.log")"
    failed=$((failed + 1))
  fi
}
chapter="bash $ROOT/scripts/run_chapter.sh"
few=(--max_steps 20 --n_pairs 2000 --test_pairs 0)
for n in "${sizes[@]}"; do
  for name in 06_ddp 07_zero3 07a_fsdp2 08_checkpointing; do run "$name" "$n" $chapter "$name" --gpus 0 --nproc "$n"; done
  run 08c_kill_and_resume "$n" $chapter 08c_kill_and_resume -p nproc "$n"
  run 09a_profiling_lab "$n" $chapter 09a_profiling_lab -p nproc "$n"
  run 10_roadmap "$n" $chapter 10_roadmap -p world_size "$n"
  run entry-ddp "$n" env CUDA_VISIBLE_DEVICES= bash "$ROOT/scripts/train_ddp_single_node.sh" "${few[@]}" --out "$out/entry-ddp-$n/run"
  run entry-deepspeed "$n" env CUDA_VISIBLE_DEVICES= bash "$ROOT/scripts/train_deepspeed.sh" "${few[@]}" --out "$out/entry-deepspeed-$n/run"
  run entry-fsdp2 "$n" env CUDA_VISIBLE_DEVICES= bash "$ROOT/scripts/train_fsdp2.sh" "${few[@]}" --out "$out/entry-fsdp2-$n/run"
done
echo "$failed run(s) failed; logs in $out"
[[ $failed -eq 0 ]]
