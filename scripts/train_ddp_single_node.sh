#!/usr/bin/env bash
# Train with DDP on one machine: every visible GPU (NCCL), else NPROC CPU ranks (gloo, default 2).
#   bash scripts/train_ddp_single_node.sh [torch_handle.main options, e.g. --max_steps 1500 --out runs/ddp]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
gpus=$(python -c 'import torch; print(torch.cuda.device_count())')
nproc=${NPROC:-$([[ "$gpus" -gt 0 ]] && echo "$gpus" || echo 2)}
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "error: NPROC must be a positive integer, got '$nproc'" >&2; exit 2; }
[[ "$gpus" -gt 0 ]] || export OMP_NUM_THREADS=$(( $(nproc) / nproc > 0 ? $(nproc) / nproc : 1 ))
exec torchrun --standalone --nproc-per-node "$nproc" --max-restarts 0 -m torch_handle.main --mode ddp "$@"
