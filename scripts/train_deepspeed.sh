#!/usr/bin/env bash
# Train with DeepSpeed ZeRO on one machine, started by the deepspeed launcher: every visible GPU (NCCL),
# else NPROC CPU ranks (gloo, default 2).
#   bash scripts/train_deepspeed.sh [torch_handle.main options, e.g. --zero_stage 3 --max_steps 1500 --out runs/zero3]
# Add --checkpoint_dir runs/zero3/ckpt --checkpoint_every 200 --resume auto and the same command, run again
# after a failure, continues from the newest good checkpoint (chapter 08).
set -euo pipefail
# shellcheck source=scripts/node_ranks.sh
source "$(dirname "${BASH_SOURCE[0]}")/node_ranks.sh"
# --num_gpus is how the launcher counts ranks on one node, CPU ranks included; a free port for a private rendezvous.
port=$(python -c 'from torch_handle.utils.launch import free_port; print(free_port())')
exec deepspeed --num_gpus "$nproc" --master_port "$port" --no_local_rank --module torch_handle.main --mode deepspeed "$@"
