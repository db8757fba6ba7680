#!/usr/bin/env bash
# The prepared GPU check, for one GPU and under 8 minutes: the distributed chapters with --gpus 1 (NCCL), the
# training entry in each mode for a few steps, and bench/model_throughput.py in bf16 with its MFU against this GPU's
# measured matmul ceiling. One line per step, passed or FAILED with its seconds; the logs stay in OUT.
#   bash scripts/gpu_check.sh [OUT]          OUT: a new folder (default runs/gpu_check/<timestamp>)
# Without a CUDA GPU it says so in one line and exits 2. TORCH_HANDLE_ACTIVE_ENV=1 uses the machine's own PyTorch.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh" || exit 1
python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
  || { echo "error: no CUDA GPU is visible (torch.cuda.is_available() is False): scripts/gpu_check.sh needs one" >&2; exit 2; }
out="${1:-$ROOT/runs/gpu_check/$(date +%Y%m%d-%H%M%S)}"
[[ ! -e "$out" ]] || { echo "error: $out exists: choose another folder (nothing is overwritten)" >&2; exit 2; }
mkdir -p "$out"
failed=0
step() {  # NAME COMMAND...: run it into OUT/NAME.log, then one line
  local name=$1 start=$SECONDS; shift
  if "$@" >"$out/$name.log" 2>&1; then echo "passed  $name ($((SECONDS - start)) s)"
  else echo "FAILED  $name ($((SECONDS - start)) s): $out/$name.log"; failed=$((failed + 1)); fi
}
python -c 'import torch; print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}")'
for chapter in 06_ddp 07_zero3 07a_fsdp2 08_checkpointing; do
  step "chapter-$chapter" env TORCH_HANDLE_RUNS="$out/runs" bash "$ROOT/scripts/run_chapter.sh" "$chapter" --gpus 1
done
few=(--max_steps 20 --n_pairs 2000 --test_pairs 50)
step entry-single python -m torch_handle.main --mode single "${few[@]}" --out "$out/single"
step entry-ddp bash "$ROOT/scripts/train_ddp_single_node.sh" "${few[@]}" --out "$out/ddp"
step entry-deepspeed-zero3-bf16 bash "$ROOT/scripts/train_deepspeed.sh" --zero_stage 3 --precision bf16 "${few[@]}" --out "$out/zero3"
step entry-fsdp2-bf16-accum bash "$ROOT/scripts/train_fsdp2.sh" --precision bf16 --grad_accum 2 "${few[@]}" --out "$out/fsdp2"
step throughput-bf16 python "$ROOT/bench/model_throughput.py" --device cuda --dtype bf16 --rounds 5 --steps 5
grep -E "^(torch |matmul ceiling|model|torch_handle.Transformer|torch.nn.Transformer|throughput ratio)" "$out/throughput-bf16.log"
echo "$failed step(s) failed; logs in $out"
[[ $failed -eq 0 ]]
