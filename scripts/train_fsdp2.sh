#!/usr/bin/env bash
# Train with FSDP2 (chapter 07a) on one machine: every visible GPU (NCCL), else NPROC CPU ranks (gloo, default 2).
#   bash scripts/train_fsdp2.sh [torch_handle.main options, e.g. --precision bf16 --grad_accum 2 --out runs/fsdp2]
# Add --checkpoint_dir runs/fsdp2/ckpt --checkpoint_every 200 --resume auto and the same command, run again
# after a failure (on this or another number of ranks), continues from the newest good checkpoint (chapter 08a).
set -euo pipefail
# shellcheck source=scripts/node_ranks.sh
source "$(dirname "${BASH_SOURCE[0]}")/node_ranks.sh"
exec torchrun --standalone --nproc-per-node "$nproc" --max-restarts 0 -m torch_handle.main --mode fsdp2 "$@"
