#!/usr/bin/env bash
# Train with DeepSpeed ZeRO on one machine, started by the deepspeed launcher: every visible GPU (NCCL),
# else NPROC CPU ranks (gloo, default 2).
#   bash scripts/train_deepspeed.sh [torch_handle.main options, e.g. --zero_stage 3 --max_steps 1500 --out runs/zero3]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
gpus=$(python -c 'import torch; print(torch.cuda.device_count())')
nproc=${NPROC:-$([[ "$gpus" -gt 0 ]] && echo "$gpus" || echo 2)}
[[ "$nproc" =~ ^[1-9][0-9]*$ ]] || { echo "error: NPROC must be a positive integer, got '$nproc'" >&2; exit 2; }
if [[ "$gpus" -eq 0 ]]; then
  export OMP_NUM_THREADS=$(( $(nproc) / nproc > 0 ? $(nproc) / nproc : 1 )) TORCH_HANDLE_BACKEND=gloo
fi
# --num_gpus is how the launcher counts ranks on one node, CPU ranks included; a free port for a private rendezvous.
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
exec deepspeed --num_gpus "$nproc" --master_port "$port" --no_local_rank --module torch_handle.main --mode deepspeed "$@"
