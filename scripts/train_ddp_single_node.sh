#!/usr/bin/env bash
# Train with DDP on one machine: every visible GPU (NCCL), else NPROC CPU ranks (gloo, default 2).
#   bash scripts/train_ddp_single_node.sh [torch_handle.main options, e.g. --max_steps 1500 --out runs/ddp]
# Add --checkpoint_dir runs/ddp/ckpt --checkpoint_every 200 --resume auto and the same command, run again
# after a failure, continues from the newest good checkpoint (chapter 08).
set -euo pipefail
# shellcheck source=scripts/node_ranks.sh
source "$(dirname "${BASH_SOURCE[0]}")/node_ranks.sh"
exec torchrun --standalone --nproc-per-node "$nproc" --max-restarts 0 -m torch_handle.main --mode ddp "$@"
