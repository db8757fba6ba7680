#!/usr/bin/env bash
# Train with DDP on several machines: run this once on every node, with the same NNODES, ADDR and PORT.
#   bash scripts/train_ddp_multi_node.sh NNODES NODE_RANK ADDR PORT [torch_handle.main options]
# With --checkpoint_dir on storage every node sees, --checkpoint_every N --resume auto makes a relaunch resume.
# ADDR:PORT is the c10d rendezvous (any node reachable by all, usually node 0's). Ranks per node:
# every visible GPU, else NPROC CPU ranks (default 1). RDZV_ID names the job (default torch-handle).
# Append --mode fsdp2 to shard with FSDP2 instead of replicating with DDP (the last --mode given wins).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '3,3p' "${BASH_SOURCE[0]}" | sed 's/^# */usage: /' >&2; exit 2; }
[[ $# -ge 4 ]] || usage
nnodes=$1 node_rank=$2 addr=$3 port=$4; shift 4
for v in "NNODES:$nnodes" "PORT:$port"; do
  [[ "${v#*:}" =~ ^[1-9][0-9]*$ ]] || { echo "error: ${v%%:*} must be a positive integer, got '${v#*:}'" >&2; exit 2; }
done
[[ "$node_rank" =~ ^[0-9]+$ && "$node_rank" -lt "$nnodes" ]] \
  || { echo "error: NODE_RANK must be in [0, $nnodes), got '$node_rank'" >&2; exit 2; }
cpu_ranks=1
# shellcheck source=scripts/node_ranks.sh
source "$ROOT/scripts/node_ranks.sh"
exec torchrun --nnodes "$nnodes" --node-rank "$node_rank" --nproc-per-node "$nproc" --max-restarts 0 \
  --rdzv-backend c10d --rdzv-endpoint "$addr:$port" --rdzv-id "${RDZV_ID:-torch-handle}" \
  -m torch_handle.main --mode ddp "$@"
